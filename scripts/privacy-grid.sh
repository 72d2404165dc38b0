#!/usr/bin/env bash
# The privacy-utility grid of issue 7: 1,000 virtual clients on Fashion-MNIST, Poisson rate 0.1, 100 rounds, simple
# CNN; epsilon in {1, 2, 4, 8} (delta = 1e-5) with fixed and adaptive clipping, plus the non-private run. Runs each
# scenario of simulations/scenarios/privacy/ (except dp-smoke) into runs/privacy/<name>/ — a run whose summary.json
# exists is skipped, so the script can be restarted — then prints the table for docs/results/privacy.md.
# On the 2-vCPU machine, two runs at a time: 13-32 min a run, about 2 h 40 min for the grid (docs/results/privacy.md).
# Usage: [SIM_DIR=DIR] [NICE=N] bash scripts/privacy-grid.sh [scenario-name ...]   (default: the whole grid, no-dp first)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --data
# SIM_DIR: a folder holding a built federated-sim.dll (a copy of the Release output), so that building the tree while
# the grid runs does not pull the binaries from under it; the grid then builds nothing. NICE: the runs' niceness (0).
if [[ -n "${SIM_DIR:-}" ]]; then
  dll="$SIM_DIR/federated-sim.dll"
  [[ -f "$dll" ]] || { echo "privacy-grid: SIM_DIR '$SIM_DIR' holds no federated-sim.dll" >&2; exit 2; }
else
  dll=simulations/Federated.Simulations/bin/Release/net10.0/federated-sim.dll
  dotnet build simulations/Federated.Simulations -c Release -v q -nologo
fi
names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  names=(no-dp eps8-fixed eps8-adaptive eps4-fixed eps4-adaptive eps2-fixed eps2-adaptive eps1-fixed eps1-adaptive)
fi

for name in "${names[@]}"; do
  out="runs/privacy/$name"
  if [[ -f "$out/summary.json" ]]; then
    echo "privacy-grid: $name already done ($out/summary.json)"
    continue
  fi
  rm -rf "$out"
  echo "privacy-grid: $name"
  nice -n "${NICE:-0}" dotnet "$dll" "simulations/scenarios/privacy/$name.json" --out "$out"
done

# The table: final and best accuracy, epsilon spent, the gap to the non-private run, and the clipping bound the
# coordinator ended with (the adaptive runs move it; coordinator/rounds.csv has it per round).
base=$(jq -r '.final_accuracy' runs/privacy/no-dp/summary.json 2>/dev/null || echo NaN)
echo
echo "| run | clipping | target ε | z | ε spent (δ = 1e-5) | rounds | final accuracy | best accuracy (round) | gap to no-dp (points) | final clip bound |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for name in no-dp eps1-fixed eps1-adaptive eps2-fixed eps2-adaptive eps4-fixed eps4-adaptive eps8-fixed eps8-adaptive; do
  dir="runs/privacy/$name"
  [[ -f $dir/summary.json ]] || continue
  # Best round and last clip bound from the per-round files (columns found by name).
  best_round=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "accuracy") c = i; next }
                        $c > best { best = $c; r = $1 } END { print r }' "$dir/metrics.csv")
  read -r z clip < <(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "agg_dp_update_noise_multiplier") a = i;
                                                                    if ($i == "agg_dp_next_clip_bound") b = i;
                                                                    if ($i == "agg_dp_clip_bound") f = i } next }
                               { z = (a ? $a : ""); c = (b ? $b : (f ? $f : "")) } END { print (z == "" ? "-" : z), (c == "" ? "-" : c) }' \
                        "$dir/coordinator/rounds.csv")
  jq -r --arg name "$name" --argjson base "$base" --arg best_round "$best_round" --arg z "$z" --arg clip "$clip" '
    [ $name,
      (if $name == "no-dp" then "-" else ($name | split("-")[1]) end),
      (if $name == "no-dp" then "-" else ($name | ltrimstr("eps") | split("-")[0]) end),
      $z,
      (if .privacy == null then "∞" else (.privacy.final_epsilon * 1000 | round / 1000 | tostring) end),
      (.rounds | tostring),
      ((.final_accuracy * 10000 | round / 100 | tostring) + " %"),
      ((.best_accuracy * 10000 | round / 100 | tostring) + " % (" + $best_round + ")"),
      (if $name == "no-dp" then "-" else ((($base - .final_accuracy) * 10000 | round / 100) | tostring) end),
      (if $clip == "-" then "-" else ($clip | tonumber * 1000 | round / 1000 | tostring) end)
    ] | "| " + join(" | ") + " |"' "$dir/summary.json"
done
