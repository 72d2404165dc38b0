#!/usr/bin/env bash
# The machine's raw training speed for the 4-agent round workload, without any federation: four processes, one
# libtorch thread each, each training the 225k CNN for one epoch on 15,000 Fashion-MNIST images (Adam 1e-3, batch 64)
# at the same time. Prints each process's epoch seconds. Compare with the agents' training time in rounds.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
dll=simulations/Federated.Simulations/bin/Release/net10.0/federated-sim.dll
[[ -f $dll ]] || dotnet build simulations/Federated.Simulations -c Release -v q
for i in 1 2 3 4; do
  dotnet "$dll" baseline --epochs 1 --limit 15000 --threads 1 --seed "$i" > "${TMPDIR:-/tmp}/compute-ref-$i.log" 2>&1 &
done
wait
for i in 1 2 3 4; do
  tail -1 "${TMPDIR:-/tmp}/compute-ref-$i.log" | awk -v i="$i" '{print "process " i ": " $9 " s for 15000 samples (" $8 " samples/s)"}'
done
