#!/usr/bin/env bash
# The main job on the embedded defaults. Today: the centralised baseline (225k CNN on Fashion-MNIST, Adam 1e-3,
# batch 64, 5 epochs), writing runs/baseline/{metrics.csv,summary.json,model.safetensors}.
# Extra arguments go to the baseline command, e.g. `bash run.sh --epochs 1`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --data
exec dotnet run -c Release --project simulations/Federated.Simulations -- baseline --out runs/baseline "$@"
