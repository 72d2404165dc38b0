#!/usr/bin/env bash
# Run management on one coordinator with real agents (docs/results/platform.md, "Run management"): the shipped
# coordinator with Coordinator:Runs:RunOnStart=false and four shipped agents on Fashion-MNIST, two labelled site=a and
# two site=b. Two runs are submitted with the admin CLI — A: the MLP with FedAvg over site=a; B: the simple CNN with
# FedProx over site=b — and proceed at once; A is aborted once it has completed a round (B still running); B runs its rounds to the end. Prints
# `runs list` and `runs show` of both and writes them, with every process's log, to the output folder.
#
# Usage: simulations/scenarios/run-management/demo.sh [--out DIR]   (default runs/runs-demo; a few minutes here)
# Environment: FEDERATED_DATA (the Fashion-MNIST IDX folder, default /usr/share/datasets/fashion-mnist), ROUNDS (B's
# rounds, default 10), EXAMPLES (per agent, default 3000), PORT (default 50123), WITH_A (1; 0 runs B alone, the
# control: B's rounds.csv should not depend on A).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="runs/runs-demo"
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
data="${FEDERATED_DATA:-/usr/share/datasets/fashion-mnist}"
[[ -f "$data/train-images-idx3-ubyte.gz" || -f "$data/train-images-idx3-ubyte" ]] || { echo "demo.sh: no Fashion-MNIST in '$data' (bash scripts/setup.sh --data)" >&2; exit 2; }
rounds="${ROUNDS:-10}"
examples="${EXAMPLES:-3000}"
port="${PORT:-50123}"
address="http://127.0.0.1:$port"

dotnet build -c Release "$root/src/Coordinator" -v q -nologo >/dev/null
dotnet build -c Release "$root/src/Client" -v q -nologo >/dev/null
coordinator=(dotnet "$root/src/Coordinator/bin/Release/net10.0/federated-coordinator.dll")
agent=(dotnet "$root/src/Client/bin/Release/net10.0/federated-client.dll")
rm -rf "$out"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"${coordinator[@]}" --urls "$address" \
  --Coordinator:StateDirectory "$out/coordinator" --Coordinator:Runs:RunOnStart false \
  --Coordinator:Security:Mode open --Coordinator:Security:Plaintext loopback --Coordinator:Prometheus:Enabled false \
  --Coordinator:Evaluation:Source idx --Coordinator:Evaluation:Directory "$data" --Coordinator:Evaluation:Threads 1 \
  --Coordinator:MinAvailable 2 --Coordinator:MinFit 2 --Coordinator:RoundDeadlineSeconds 300 \
  --Coordinator:Training:Optimizer sgd --Coordinator:Training:LearningRate 0.01 --Coordinator:Training:Momentum 0.9 \
  --Coordinator:Training:BatchSize 64 >"$out/coordinator.log" 2>&1 &
pids+=($!)

for i in 0 1 2 3; do
  site=$([[ $i -lt 2 ]] && echo a || echo b)
  "${agent[@]}" --Client:CoordinatorAddress "$address" --Client:AgentId "agent-$i" --Client:Labels:site "$site" \
    --Client:StateDirectory "$out/agent-$i" --Client:Device cpu --Client:Threads 1 \
    --Client:Data:Source idx --Client:Data:Directory "$data" --Client:Data:Partition iid --Client:Data:Clients 4 \
    --Client:Data:Index "$i" --Client:Data:MaxExamples "$examples" >"$out/agent-$i.log" 2>&1 &
  pids+=($!)
done

cli() { "${coordinator[@]}" runs "$@" --address "$address"; }
for _ in $(seq 1 120); do cli list >/dev/null 2>&1 && break; sleep 1; done

with_a="${WITH_A:-1}"
a=""
if [[ "$with_a" == 1 ]]; then
  a=$(cli submit --name "A: mlp + fedavg" --label site=a --set Model=mlp --set Strategy=fedavg --set Rounds=20 --json | jq -r .runId)
fi
b=$(cli submit --name "B: simple-cnn + fedprox" --label site=b --set Model=simple-cnn --set Strategy=fedprox \
  --set StrategyOptions:mu=0.01 --set Rounds="$rounds" --json | jq -r .runId)
echo "submitted A = $a, B = $b"

completed() { cli show "$1" --json | jq -r '.completedRounds // 0'; }
state() { cli show "$1" --json | jq -r .state; }
if [[ -n "$a" ]]; then
  until [[ "$(completed "$a")" -ge 1 ]]; do sleep 1; done
  cli abort "$a" --reason "demo: aborted while B runs"
fi
until [[ "$(state "$b")" != running ]]; do sleep 2; done

{
  echo '$ federated-coordinator runs list'
  cli list
  if [[ -n "$a" ]]; then
    echo
    echo "\$ federated-coordinator runs show $a"
    cli show "$a"
  fi
  echo
  echo "\$ federated-coordinator runs show $b"
  cli show "$b"
} | tee "$out/runs.txt"
[[ ( -z "$a" || "$(state "$a")" == aborted ) && "$(state "$b")" == finished ]] || { echo "demo.sh: expected A aborted and B finished" >&2; exit 1; }
cp "$out/coordinator/runs/$b/rounds.csv" "$out/b-rounds.csv"
