#!/usr/bin/env python3
"""Sample (e): a non-.NET agent. It speaks the wire contract in protos/ with grpcio alone: it enrols with an Ed25519 key
and a one-time enrolment token, opens its session, answers train tasks with an update and watches the round complete.

Stubs are generated at run time from protos/federated.proto into a temporary folder (python3 -m grpc_tools.protoc).
Debian packages: python3-grpcio python3-grpc-tools python3-protobuf python3-nacl (bash scripts/setup.sh --python).

    /usr/bin/python3 samples/PythonClient/client.py --address 127.0.0.1:5000 --token <enrolment token>

Local "training" is a stand-in (the update shrinks every weight by 1%, as weight decay would): the point is the
protocol. Exit code 0 once every train task was answered and the coordinator reported the run finished.
"""
import argparse, hashlib, os, queue, struct, subprocess, sys, tempfile, threading, time

PROTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "protos")
PROTOCOL_VERSION = 1


def load_stubs():
    out = tempfile.mkdtemp(prefix="federated-py-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out}", f"--grpc_python_out={out}",
                    os.path.join(PROTOS, "federated.proto")], check=True)
    sys.path.insert(0, out)
    import federated_pb2, federated_pb2_grpc  # noqa: E402 (generated just now)
    return federated_pb2, federated_pb2_grpc


def challenge_payload(purpose, challenge, agent_id, public_key):
    """The bytes ChallengeSigning.Payload (src/Protocol/Identity) builds: length-prefixed fields, big-endian."""
    field = lambda b: struct.pack(">i", len(b)) + b
    return (b"federated.v1 challenge\0" + field(purpose.encode()) + field(challenge.coordinator_id.encode()) + field(agent_id.encode())
            + field(challenge.nonce) + struct.pack(">q", challenge.expires_unix_ms) + field(public_key))


CRC_TABLE = [0] * 256
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC_TABLE[n] = c


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--address", required=True, help="host:port of the coordinator's gRPC endpoint (plaintext, loopback)")
    args.add_argument("--token", default="", help="a one-time enrolment token (federated-coordinator agents token issue)")
    args.add_argument("--agent-id", default="python-agent")
    args.add_argument("--examples", type=int, default=100)
    args.add_argument("--timeout", type=float, default=120)
    a = args.parse_args()
    pb, rpc = load_stubs()
    import grpc
    from nacl.signing import SigningKey

    stub = rpc.CoordinatorStub(grpc.insecure_channel(a.address))
    key = SigningKey.generate()
    public = bytes(key.verify_key)
    challenge = stub.GetChallenge(pb.ChallengeRequest(protocol_version=PROTOCOL_VERSION, agent_id=a.agent_id))
    enrol = stub.Enroll(pb.EnrollRequest(
        protocol_version=PROTOCOL_VERSION, agent_id=a.agent_id, enrolment_token=a.token, public_key=public,
        capabilities=pb.Capabilities(device="cpu", num_examples=a.examples, labels={"language": "python"}),
        challenge_nonce=challenge.nonce, signature=key.sign(challenge_payload("enrol", challenge, a.agent_id, public)).signature))
    auth = [("authorization", f"Bearer {enrol.session_token}")]
    print(f"enrolled as {enrol.agent_id} in run {enrol.run_id}", flush=True)

    outbox = queue.Queue()
    hello = pb.Hello(agent_id=enrol.agent_id, protocol_version=PROTOCOL_VERSION, capabilities=pb.Capabilities(device="cpu", num_examples=a.examples))
    if enrol.HasField("session_challenge"):
        hello.challenge_nonce = enrol.session_challenge.nonce
        hello.signature = key.sign(challenge_payload("session", enrol.session_challenge, enrol.agent_id, public)).signature
    outbox.put(pb.AgentMessage(hello=hello))
    stop = threading.Event()

    def heartbeat():
        while not stop.wait(max(0.2, enrol.heartbeat_seconds or 1.0)):
            outbox.put(pb.AgentMessage(heartbeat=pb.Heartbeat()))

    threading.Thread(target=heartbeat, daemon=True).start()
    session = stub.Session(iter(outbox.get, None), metadata=auth)
    answered = []

    def serve():
        """Answers the coordinator's tasks until the session ends."""
        try:
            for message in session:
                kind = message.WhichOneof("kind")
                if kind == "train":
                    answered.append(train(pb, stub, auth, enrol, message.train, a.examples, outbox))
                elif kind == "evaluate":
                    outbox.put(pb.AgentMessage(result=pb.TaskResult(task_id=message.evaluate.task_id, round=message.evaluate.round,
                                                                    ok=False, error="this sample agent does not evaluate")))
                elif kind == "shutdown":
                    print(f"coordinator ended the session: {message.shutdown.reason}", flush=True)
                    return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                print(f"session ended: {e.code()} {e.details()}", file=sys.stderr, flush=True)

    reader = threading.Thread(target=serve, daemon=True)
    reader.start()
    deadline = time.time() + a.timeout
    while True:
        status = stub.GetStatus(pb.StatusRequest(protocol_version=PROTOCOL_VERSION))
        if (answered and status.finished) or time.time() > deadline or not reader.is_alive():
            break
        time.sleep(0.2)
    print(f"run {status.run_id}: round {status.current_round} of {status.total_rounds}, finished={status.finished}", flush=True)
    stop.set()
    outbox.put(None)
    session.cancel()
    return 0 if answered and status.finished else 1


def train(pb, stub, auth, enrol, task, examples, outbox):
    """Downloads the global model, makes an update, uploads it in CRC-checked chunks and reports the result."""
    data = b"".join(chunk.data for chunk in stub.Download(pb.DownloadRequest(transfer_id=task.model.transfer_id), metadata=auth))
    assert hashlib.sha256(data).digest() == task.model.sha256, "model payload corrupted"
    model = next(t for t in pb.Payload.FromString(data).tensors if t.name == "model")
    weights = struct.unpack(f"<{len(model.data) // 4}f", model.data)
    update = pb.Payload(layout_fingerprint=task.layout_fingerprint)
    update.tensors.add(name="model", encoding=pb.TENSOR_ENCODING_DENSE_F32, shape=[len(weights)],
                       data=struct.pack(f"<{len(weights)}f", *(-0.01 * w for w in weights)))
    body = update.SerializeToString()
    size, transfer = enrol.chunk_bytes or 1 << 20, f"{enrol.agent_id}-{task.task_id}"
    pieces = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    header = pb.UploadHeader(task_id=task.task_id, round=task.round, total_bytes=len(body), chunk_count=len(pieces),
                             sha256=hashlib.sha256(body).digest(), num_examples=examples)
    chunks = (pb.Chunk(transfer_id=transfer, sequence=i, data=p, crc32c=crc32c(p), header=header if i == 0 else None)
              for i, p in enumerate(pieces))
    reply = stub.Upload(chunks, metadata=auth)
    assert reply.complete, f"upload incomplete: {reply}"
    outbox.put(pb.AgentMessage(result=pb.TaskResult(
        task_id=task.task_id, round=task.round, ok=True, upload_transfer_id=transfer, num_examples=examples,
        local_steps=1, metrics={"train_loss": 0.0, "train_seconds": 0.0})))
    print(f"round {task.round}: sent an update of {len(weights)} weights ({len(body)} bytes, {len(pieces)} chunks)", flush=True)
    return task.round


if __name__ == "__main__":
    sys.exit(main())
