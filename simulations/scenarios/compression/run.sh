#!/usr/bin/env bash
# Issue 5's compression grid: runs every scenario in this folder (the reference scenario with one codec each) and
# prints the table for docs/results/compression.md. Outside CI: each run takes 2-4 minutes on an idle 2-vCPU machine.
#
#   simulations/scenarios/compression/run.sh [RUNS_DIR]        # default runs/compression
#   ONLY="dense topk1-q8" simulations/scenarios/compression/run.sh   # a subset
#   TABLE_ONLY=1 simulations/scenarios/compression/run.sh       # just the table from runs already made
#
# A run folder that already holds summary.json is kept, so an interrupted grid resumes. The table averages, over a
# run's rounds, the coordinator's per-agent byte counters (rounds.csv): payload = serialised payload bytes, wire =
# gRPC messages (chunk fields + 5-byte framing). Round 1's downlink is always the full model (no agent's version is
# known yet). Accuracy loss is against the `dense` run, in percentage points.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-runs/compression}
here=simulations/scenarios/compression
dll=simulations/Federated.Simulations/bin/Release/net10.0/federated-sim.dll
mkdir -p "$out"

if [[ -z ${TABLE_ONLY:-} ]]; then
  dotnet build simulations/Federated.Simulations -c Release -v q -nologo
  for scenario in "$here"/*.json; do
    name=$(basename "$scenario" .json)
    if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
    if [[ -f $out/$name/summary.json ]]; then echo "$name: done already ($out/$name)"; continue; fi
    rm -rf "${out:?}/$name"
    echo "$name: running"
    dotnet "$dll" "$scenario" --out "$out/$name"
  done
fi

# One line per finished run: name, uplink, downlink, rounds, final accuracy, mean per-agent bytes a round.
summarise() {
  local run=$1 name
  name=$(basename "$run")
  local up down
  up=$(jq -r '.compression.uplink' "$run/scenario.json")
  down=$(jq -r '.compression.downlink' "$run/scenario.json")
  awk -F, -v name="$name" -v up="$up" -v down="$down" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
      n++
      acc = $col["test_accuracy"]
      upp += $col["up_payload_bytes_per_agent"]; upw += $col["up_wire_bytes_per_agent"]
      dnp += $col["down_payload_bytes_per_agent"]; dnw += $col["down_wire_bytes_per_agent"]
    }
    END { if (n > 0) printf "%s\t%s\t%s\t%d\t%.5f\t%.0f\t%.0f\t%.0f\t%.0f\n", name, up, down, n, acc, upp / n, upw / n, dnp / n, dnw / n }
  ' "$run/coordinator/rounds.csv"
}

rows=$(for run in "$out"/*/; do run=${run%/}; [[ -f $run/summary.json ]] && summarise "$run"; done)
dense=$(awk -F'\t' '$1 == "dense"' <<<"$rows")
[[ -n $dense ]] || { echo "no finished 'dense' run in $out: it is the baseline of the table" >&2; exit 1; }
read -r _ _ _ _ dense_acc dense_upw _ dense_dnw _ <<<"$(tr '\t' ' ' <<<"$dense")"

echo
echo "| run | uplink | downlink | rounds | up payload B/agent/round | up wire B | up vs dense | down payload B | down wire B | down vs dense | final accuracy | loss vs dense (points) |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' -v da="$dense_acc" -v du="$dense_upw" -v dd="$dense_dnw" '{
  printf "| %s | `%s` | `%s` | %d | %d | %d | %.1fx | %d | %d | %.1fx | %.2f %% | %+.2f |\n",
    $1, $2, $3, $4, $6, $7, du / $7, $8, $9, dd / $9, 100 * $5, 100 * (da - $5)
}' <<<"$rows"
