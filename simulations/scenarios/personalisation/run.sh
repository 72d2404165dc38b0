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

# One row per run: the last round's per-agent spread (summary.json local_accuracy), the difference of its mean from
# FedAvg's with the same seed, the mean of local_acc_mean over the last five rounds (metrics.csv: less noisy than one
# round), the global test accuracy after the last round and the run's wall time.
echo "| method | seed | rounds | local acc mean ± std (%) | min / p10 / median / max (%) | Δ mean vs FedAvg (points) | local acc mean, last 5 rounds (%) | global test acc (%) | wall s |"
echo "|---|---:|---:|---:|---|---:|---:|---:|---:|"
declare -A sum count
for seed in $seeds; do
  base=""
  for name in fedavg fedper ditto; do
    run=$out/$name-seed$seed
    [[ -f $run/summary.json ]] || continue
    row=$(jq -r '.local_accuracy | "\(.mean) \(.std) \(.min) \(.p10) \(.median) \(.max)"' "$run/summary.json")
    read -r mean std min p10 median max <<< "$row"
    [[ $name == fedavg ]] && base=$mean
    sum[$name]=$(awk -v a="${sum[$name]:-0}" -v b="$mean" 'BEGIN { print a + b }'); count[$name]=$(( ${count[$name]:-0} + 1 ))
    delta=$([[ -n $base ]] && awk -v a="$mean" -v b="$base" 'BEGIN { printf "%+.2f", (a - b) * 100 }' || echo "n/a")
    last5=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "local_acc_mean") c = i; next } { v[NR] = $c } END { n = 0; s = 0; for (i = NR; i > NR - 5 && i > 1; i--) { s += v[i]; n++ } printf "%.2f", s / n * 100 }' "$run/metrics.csv")
    read -r rounds global wall <<< "$(jq -r '"\(.rounds) \(.final_accuracy) \(.wall_s)"' "$run/summary.json")"
    awk -v name="$name" -v seed="$seed" -v rounds="$rounds" -v mean="$mean" -v std="$std" -v min="$min" -v p10="$p10" \
        -v median="$median" -v max="$max" -v delta="$delta" -v last5="$last5" -v global="$global" -v wall="$wall" 'BEGIN {
      printf "| %s | %s | %s | %.2f ± %.2f | %.1f / %.1f / %.1f / %.1f | %s | %s | %.2f | %.0f |\n", name, seed, rounds,
        mean * 100, std * 100, min * 100, p10 * 100, median * 100, max * 100, (name == "fedavg" ? "—" : delta), last5, global * 100, wall
    }'
  done
done

# With more than one seed: the mean over the seeds of the last round's mean local accuracy, and its difference from FedAvg's.
if [[ ${count[fedavg]:-0} -gt 1 ]]; then
  echo
  echo "| method | seeds | mean over seeds of the local acc mean (%) | Δ vs FedAvg (points) |"
  echo "|---|---:|---:|---:|"
  for name in fedavg fedper ditto; do
    [[ ${count[$name]:-0} -gt 0 ]] || continue
    awk -v name="$name" -v n="${count[$name]}" -v s="${sum[$name]}" -v b="${sum[fedavg]}" -v nb="${count[fedavg]}" 'BEGIN {
      printf "| %s | %d | %.2f | %s |\n", name, n, s / n * 100, (name == "fedavg" ? "—" : sprintf("%+.2f", (s / n - b / nb) * 100))
    }'
  done
fi
