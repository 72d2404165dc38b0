#!/usr/bin/env bash
# Runs the linux-x64 single-file agent (scripts/publish-agent.sh --rid linux-x64) against a local coordinator for a
# few rounds and prints what docs/results/agent.md reports: the file's size, start-up times, rounds.csv, the status.
#
#   bash scripts/agent-publish-smoke.sh [--rounds 3] [--agents 2] [--examples 3000] [--out runs/agent-smoke]
#
# Needs: dotnet build src/Coordinator -c Release, and Fashion-MNIST in $FEDERATED_DATA or /usr/share/datasets/fashion-mnist.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 agents=2 examples=3000 out=runs/agent-smoke port=5077
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --agents) agents="$2"; shift 2 ;;
    --examples) examples="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "agent-publish-smoke: unknown argument '$1'." >&2; exit 2 ;;
  esac
done
exe=artifacts/agent/linux-x64/federated-client
coordinator=src/Coordinator/bin/Release/net10.0/federated-coordinator.dll
[[ -x "$exe" ]] || { echo "agent-publish-smoke: $exe is missing; run scripts/publish-agent.sh --rid linux-x64 first." >&2; exit 1; }
[[ -f "$coordinator" ]] || { echo "agent-publish-smoke: $coordinator is missing; run dotnet build src/Coordinator -c Release first." >&2; exit 1; }
rm -rf "$out"; mkdir -p "$out"
export DOTNET_BUNDLE_EXTRACT_BASE_DIR="$PWD/$out/bundle"
echo "size: $(stat -c %s "$exe") bytes"

# Start-up: the first start unpacks the native libraries, the second reuses them (the --help path exits before libtorch
# loads, so time 'status', which runs the host's configuration but no training, and one agent start to 'Enrolling').
start=$(date +%s.%N); "$exe" status --Client:StateDirectory="$out/none" >/dev/null 2>&1 || true
echo "first start (unpack) to exit of 'status': $(echo "$(date +%s.%N) - $start" | bc) s; unpacked: $(du -sb "$out/bundle" | cut -f1) bytes"
start=$(date +%s.%N); "$exe" status --Client:StateDirectory="$out/none" >/dev/null 2>&1 || true
echo "second start to exit of 'status': $(echo "$(date +%s.%N) - $start" | bc) s"

dotnet "$coordinator" --urls "http://127.0.0.1:$port" --Coordinator:StateDirectory="$out/coordinator" \
  --Coordinator:Rounds="$rounds" --Coordinator:MinFit="$agents" --Coordinator:Model=cnn --Coordinator:ExitWhenDone=true > "$out/coordinator.log" 2>&1 &
coordinator_pid=$!
for i in $(seq 0 $((agents - 1))); do
  "$exe" --Client:CoordinatorAddress="http://127.0.0.1:$port" --Client:StateDirectory="$out/agent-$i" --Client:Threads=1 \
    --Client:Data:Partition=iid --Client:Data:Clients="$agents" --Client:Data:Index="$i" --Client:Data:MaxExamples="$examples" \
    > "$out/agent-$i.log" 2>&1 &
  echo $! > "$out/agent-$i.pid"
done
status=0
wait "$coordinator_pid" || status=$?
for i in $(seq 0 $((agents - 1))); do wait "$(cat "$out/agent-$i.pid")" || true; done
echo "coordinator exit: $status"
cat "$out/coordinator/rounds.csv" 2>/dev/null || find "$out/coordinator" -name 'rounds.csv' -exec cat {} \;
grep -h "Agent .* starting\|Device auto" "$out/agent-0.log" | head -3
"$exe" status --Client:StateDirectory="$out/agent-0"
