#!/usr/bin/env bash
# The centralised continual-learning tables of issue 9 (docs/results/continual.md): Split Fashion-MNIST in task-,
# domain- and class-incremental form x {finetune, ewc, online-ewc, lwf, replay, replay+ewc, joint}, then Permuted
# Fashion-MNIST (10 experiences) x {finetune, ewc, replay}. MLP 2x400, Adam 1e-3, batch 128, ITERATIONS per experience.
# EWC's lambda is chosen on the validation split first (--tune, shorter TUNE_ITERATIONS runs), never on the test set.
# Each column goes to runs/continual/<scenario>/ (grid.md, grid.json, one result.json per method); a column whose
# grid.json lists every method is skipped, so the script can be restarted.
# Roughly 3-4 minutes per split run and 7 per permuted run on one free core (each run pins libtorch to one thread);
# hours on a loaded machine.
# Usage: ITERATIONS=2000 SEED=1 bash scripts/continual-grid.sh [scenario ...]   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${ITERATIONS:-2000}
tune_iterations=${TUNE_ITERATIONS:-500}
seed=${SEED:-1}
bash scripts/setup.sh --data
mkdir -p runs/continual
dotnet build benchmarks/Federated.Benchmarks -c Release -v q -nologo
dll=benchmarks/Federated.Benchmarks/bin/Release/net10.0/federated-bench.dll
scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 ]]; then
  scenarios=(split-class split-task split-domain permuted)
fi

for scenario in "${scenarios[@]}"; do
  out="runs/continual/$scenario"
  methods=finetune,replay,joint,ewc,online-ewc,lwf,replay+ewc
  [[ $scenario == permuted ]] && methods=finetune,ewc,replay
  if [[ -f "$out/grid.json" ]] && [[ $(jq '.results | length' "$out/grid.json") -eq $(tr ',' '\n' <<<"$methods" | wc -l) ]]; then
    echo "continual-grid: $scenario already done ($out/grid.json)"
    continue
  fi
  # lambda from the validation split of this scenario (EWC with separate penalties), reused by every EWC variant.
  dotnet "$dll" continual --scenario "$scenario" --method ewc --tune --grid-values 10,100,1000,10000,100000 \
    --tune-iterations "$tune_iterations" --iterations "$tune_iterations" --seed "$seed" --threads 1 --out "$out/tune" | tee "$out.tune.log"
  lambda=$(jq -r '.Tuning | max_by(.ValidationAccuracy) | .Value' "$out/tune/result.json")
  dotnet "$dll" continual --grid --scenarios "$scenario" --methods "$methods" --lambda "$lambda" \
    --iterations "$iterations" --seed "$seed" --threads 1 --out "$out"
done
