#!/usr/bin/env bash
# Issue 8's accuracy comparison: the reference scenario with plain FedAvg (simulations/scenarios/reference.json) and
# with SecAgg+ (secagg.json here), seeds 1-3, one run at a time; then the table of final accuracies.
#
#   simulations/scenarios/secure-aggregation/run.sh [RUNS_DIR]     # default runs/secure-aggregation
#   TABLE_ONLY=1 simulations/scenarios/secure-aggregation/run.sh   # just the table from runs already made
#
# A run folder that already holds summary.json is kept, so an interrupted comparison resumes. SIM may name a copy of
# the simulator's build (default: build it and use simulations/Federated.Simulations/bin/Release/net10.0).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-runs/secure-aggregation}
sim=${SIM:-simulations/Federated.Simulations/bin/Release/net10.0}
mkdir -p "$out"

if [[ -z ${TABLE_ONLY:-} ]]; then
  if [[ -z ${SIM:-} ]]; then dotnet build simulations/Federated.Simulations -c Release -v q -nologo; fi
  for seed in 1 2 3; do
    for kind in secagg fedavg; do
      name=$kind-s$seed
      scenario=simulations/scenarios/secure-aggregation/secagg.json
      if [[ $kind == fedavg ]]; then scenario=simulations/scenarios/reference.json; fi
      if [[ -f $out/$name/summary.json ]]; then echo "$name: done already ($out/$name)"; continue; fi
      rm -rf "${out:?}/$name"
      echo "$name: running"
      dotnet "$sim/federated-sim.dll" "$scenario" --seed "$seed" --out "$out/$name" > "$out/$name.console.txt" 2>&1
    done
  done
fi

python3 - "$out" <<'PY'
import csv, json, os, sys
out = sys.argv[1]
print("| seed | FedAvg final accuracy | SecAgg+ final accuracy | difference (points) | SecAgg+ up wire B/agent/round | FedAvg up wire B/agent/round |")
print("|---:|---:|---:|---:|---:|---:|")
acc = {"fedavg": [], "secagg": []}
for seed in (1, 2, 3):
    row = {}
    for kind in ("fedavg", "secagg"):
        path = os.path.join(out, f"{kind}-s{seed}", "coordinator", "rounds.csv")
        if not os.path.exists(os.path.join(out, f"{kind}-s{seed}", "summary.json")):  # not run, or unfinished
            row[kind] = None
            continue
        rows = list(csv.DictReader(open(path)))
        a = float(rows[-1]["test_accuracy"]) * 100
        up = sum(float(r["up_wire_bytes_per_agent"]) for r in rows) / len(rows)
        row[kind] = (a, up, len(rows))
        acc[kind].append(a)
    f, s = row["fedavg"], row["secagg"]
    fmt = lambda v: "not run" if v is None else f"{v[0]:.2f} % ({v[2]} rounds)"
    diff = f"{s[0] - f[0]:+.2f}" if f and s else "-"
    print(f"| {seed} | {fmt(f)} | {fmt(s)} | {diff} | {s[1]:.0f} |" if s else f"| {seed} | {fmt(f)} | {fmt(s)} | {diff} | - |", end="")
    print(f" {f[1]:.0f} |" if f else " - |")
if acc["fedavg"] and acc["secagg"]:
    mf, ms = sum(acc["fedavg"]) / len(acc["fedavg"]), sum(acc["secagg"]) / len(acc["secagg"])
    print(f"| mean | {mf:.2f} % ({len(acc['fedavg'])} seeds) | {ms:.2f} % ({len(acc['secagg'])} seeds) | {ms - mf:+.2f} | | |")
PY
