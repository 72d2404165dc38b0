#!/usr/bin/env bash
# The main job on the embedded defaults: the default scenario (simulations/scenarios/default.json) — 4 clients on a
# Dirichlet(0.5) split of Fashion-MNIST, the NIID-Bench simple CNN, FedAvg, 10 rounds — run by the real coordinator
# and client agents in this process over gRPC on loopback. Writes runs/default/ (report.md, metrics, plots).
# Extra arguments go to the simulator, e.g. `bash run.sh --out runs/other`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --data
out=runs/default
if [[ " $* " != *" --out "* ]]; then
  rm -rf "$out"
  set -- --out "$out" "$@"
fi
exec dotnet run -c Release --project simulations/Federated.Simulations -- simulations/scenarios/default.json "$@"
