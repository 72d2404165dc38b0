#!/usr/bin/env bash
# Issue 9's federated continual-learning runs: every scenario in this folder (Split Fashion-MNIST class-incremental,
# 10 agents, FedAvg, 25 rounds) for seeds 1-3, then the table for docs/results/continual.md. Outside CI: about a
# minute a run on an idle 2-vCPU machine.
#
#   simulations/scenarios/continual/run.sh [RUNS_DIR]          # default runs/continual-fed
#   SEEDS="1" ONLY="split-class-fedavg-finetune" simulations/scenarios/continual/run.sh
#   TABLE_ONLY=1 simulations/scenarios/continual/run.sh         # just the table from runs already made
#
# A run folder that already holds summary.json is kept, so an interrupted grid resumes. Average accuracy and forgetting
# are the simulator's continual summary (summary.json): the accuracy matrix R[i][j] is read off the global model at the
# last round of each experience.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-runs/continual-fed}
here=simulations/scenarios/continual
dll=simulations/Federated.Simulations/bin/Release/net10.0/federated-sim.dll
seeds=${SEEDS:-1 2 3}
mkdir -p "$out"

if [[ -z ${TABLE_ONLY:-} ]]; then
  dotnet build simulations/Federated.Simulations -c Release -v q -nologo
  for scenario in "$here"/*.json; do
    name=$(basename "$scenario" .json)
    if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
    for seed in $seeds; do
      run=$out/$name-seed$seed
      if [[ -f $run/summary.json ]]; then echo "$name seed $seed: done already ($run)"; continue; fi
      rm -rf "${run:?}"
      echo "$name seed $seed: running"
      dotnet "$dll" "$scenario" --seed "$seed" --out "$run"
    done
  done
fi

echo "| scenario | seed | average accuracy % | forgetting (points) | final R row (%) |"
echo "|---|---:|---:|---:|---|"
for summary in "$out"/*-seed*/summary.json; do
  run=$(dirname "$summary")
  name=$(basename "$run")
  jq -r --arg name "${name%-seed*}" --arg seed "${name##*-seed}" \
    '"| \($name) | \($seed) | \(.continual.average_accuracy * 100 * 100 | round / 100) | \(.continual.forgetting * 100 * 100 | round / 100) | \(.continual.matrix[-1] | map(. * 1000 | round / 10 | tostring) | join(" / ")) |"' "$summary"
done
