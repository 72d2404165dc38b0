#!/usr/bin/env bash
# Issue 13's personalisation comparison: FedAvg, FedPer and Ditto on Fashion-MNIST split over 20 clients by
# Dirichlet(0.1) labels (every scenario in this folder), then the table for docs/results/platform.md.
#
#   simulations/scenarios/personalisation/run.sh [RUNS_DIR]        # default runs/personalisation
#   SIM_DIR=/tmp/persbin simulations/scenarios/personalisation/run.sh   # run a copy of the built simulator (no build)
#   ONLY="fedper ditto" SEEDS="1 2" simulations/scenarios/personalisation/run.sh
#   TABLE_ONLY=1 simulations/scenarios/personalisation/run.sh       # just the table from runs already made
#
# A run folder that already holds summary.json is kept, so an interrupted set resumes. Each client holds out 20 % of
# its partition, stratified by class, as its local test split; "local acc" is the spread over the 20 clients of the
# accuracy, on that split, of the model each uses (FedAvg: the global model; FedPer: the global body under its own
# head; Ditto: its personal model) when the last round's task arrives; "global acc" is the global model on the
# Fashion-MNIST test set after the last round.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-runs/personalisation}
here=simulations/scenarios/personalisation
seeds=${SEEDS:-1}
mkdir -p "$out"

if [[ -n ${SIM_DIR:-} ]]; then
  [[ -f "$SIM_DIR/federated-sim.dll" ]] || { echo "run.sh: SIM_DIR '$SIM_DIR' holds no federated-sim.dll" >&2; exit 2; }
  dll=$SIM_DIR/federated-sim.dll
else
  dll=simulations/Federated.Simulations/bin/Release/net10.0/federated-sim.dll
fi

if [[ -z ${TABLE_ONLY:-} ]]; then
  [[ -n ${SIM_DIR:-} ]] || dotnet build simulations/Federated.Simulations -c Release -v q -nologo
  for name in fedavg fedper ditto; do
    if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
    for seed in $seeds; do
      run=$out/$name-seed$seed
      if [[ -f $run/summary.json ]]; then echo "$name seed $seed: done already ($run)"; continue; fi
      rm -rf "${run:?}"
      echo "$name seed $seed: running"
      dotnet "$dll" "$here/$name.json" --seed "$seed" --out "$run"
    done
  done
fi

# One row per run: the last round's per-agent spread (metrics.csv local_acc_*), the global test accuracy, and the
# difference of the mean local accuracy from FedAvg's with the same seed.
echo "| method | seed | rounds | local acc mean ± std (%) | min / p10 / median / max (%) | Δ mean vs FedAvg (points) | global test acc (%) | wall s |"
echo "|---|---:|---:|---:|---|---:|---:|---:|"
for seed in $seeds; do
  base=""
  for name in fedavg fedper ditto; do
    run=$out/$name-seed$seed
    [[ -f $run/summary.json ]] || continue
    row=$(jq -r '.local_accuracy | "\(.mean) \(.std) \(.min) \(.p10) \(.median) \(.max)"' "$run/summary.json")
    read -r mean std min p10 median max <<< "$row"
    [[ $name == fedavg ]] && base=$mean
    delta=$([[ -n $base ]] && awk -v a="$mean" -v b="$base" 'BEGIN { printf "%+.2f", (a - b) * 100 }' || echo "n/a")
    jq -r --arg name "$name" --arg seed "$seed" --arg delta "$delta" --arg mean "$mean" --arg std "$std" \
      --arg spread "$(awk -v a="$min" -v b="$p10" -v c="$median" -v d="$max" 'BEGIN { printf "%.1f / %.1f / %.1f / %.1f", a * 100, b * 100, c * 100, d * 100 }')" \
      '"| \($name) | \($seed) | \(.rounds) | \(($mean | tonumber) * 10000 | round / 100) ± \(($std | tonumber) * 10000 | round / 100) | \($spread) | \(if $name == "fedavg" then "—" else $delta end) | \(.final_accuracy * 10000 | round / 100) | \(.wall_s | round) |"' "$run/summary.json"
  done
done
