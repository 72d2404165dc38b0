#!/usr/bin/env bash
# The robustness grid of issue 6 (docs/results/robustness.md): Fashion-MNIST, 20 clients x 1,000 samples, the
# NIID-Bench simple CNN, SGD lr 0.01 momentum 0.9, batch 64, 1 local epoch, 20 rounds, seed 1; IID and Dirichlet(0.5);
# 20 % and 30 % attackers; each attack x {FedAvg, median, trimmed mean, Multi-Krum, geometric median, centred clipping,
# bucketing + centred clipping}, beside the clean FedAvg run. 198 runs, one after the other; hours on a small machine,
# so it runs outside CI. It resumes: a run whose summary.json exists is skipped (delete the folder to redo it).
#
# Usage: simulations/grids/robustness.sh [--out DIR] [--only REGEX] [--dry-run]
#   --out DIR     run folders, scenarios/ and table.md go here (default runs/robustness)
#   --only REGEX  run only the scenarios whose name matches (e.g. 'iid-signflip' or 'clean')
#   --dry-run     write the scenarios and list them; run nothing
# Environment: SIM_DIR (a folder holding a built federated-sim.dll, e.g. a copy of the Release output, so that building
# the tree while the grid runs does not pull the binaries from under it; the grid then builds nothing), NICE (niceness
# of the runs, default 0), FEDERATED_DATA (the Fashion-MNIST IDX folder), ROUNDS (20) and
# SAMPLES (examples per client, 1000) for shorter checks.
#
# Attack settings (override with the variables): sign flip sends -SIGNFLIP_SCALE x delta, scaling SCALING_SCALE x delta,
# noise N(0, NOISE_SIGMA^2) per coordinate instead of the delta, ALIE mu - z sigma with the paper's z for n = 20 and
# f = 4 or 6, IPM -IPM_EPSILON x mu; ALIE and IPM are omniscient (the round's honest updates). The robust rules run
# without the norm-ratio validation (max_norm_ratio=off, VALIDATION=off), so that the table shows the rules alone;
# VALIDATION=on keeps the coordinator's default check (norm above 10 x the median norm rejected).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="runs/robustness"
only=""
dry=0
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "robustness.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

SIGNFLIP_SCALE="${SIGNFLIP_SCALE:-4}"
SCALING_SCALE="${SCALING_SCALE:-10}"
NOISE_SIGMA="${NOISE_SIGMA:-0.1}"
IPM_EPSILON="${IPM_EPSILON:-0.1}"
CCLIP_TAU="${CCLIP_TAU:-0.1}"
VALIDATION="${VALIDATION:-off}"
clients=20
rounds="${ROUNDS:-20}"
samples="${SAMPLES:-1000}"

mkdir -p "$out/scenarios"
if [[ -n "${SIM_DIR:-}" ]]; then
  [[ -f "$SIM_DIR/federated-sim.dll" ]] || { echo "robustness.sh: SIM_DIR '$SIM_DIR' holds no federated-sim.dll" >&2; exit 2; }
  sim=(dotnet "$SIM_DIR/federated-sim.dll")
else
  sim=(dotnet "$root/simulations/Federated.Simulations/bin/Release/net10.0/federated-sim.dll")
fi
if ((dry == 0)) && [[ -z "${SIM_DIR:-}" ]]; then
  nice -n "${NICE:-0}" dotnet build -c Release "$root/simulations/Federated.Simulations" -v q -nologo
fi

# attack_json KIND FRACTION: the scenario's attack section.
attack_json() {
  case "$1" in
    signflip) echo "{ \"kind\": \"signflip\", \"fraction\": $2, \"scale\": $SIGNFLIP_SCALE }" ;;
    scaling) echo "{ \"kind\": \"scaling\", \"fraction\": $2, \"scale\": $SCALING_SCALE }" ;;
    noise) echo "{ \"kind\": \"noise\", \"fraction\": $2, \"sigma\": $NOISE_SIGMA }" ;;
    ipm) echo "{ \"kind\": \"ipm\", \"fraction\": $2, \"epsilon\": $IPM_EPSILON, \"variant\": \"omniscient\" }" ;;
    alie) echo "{ \"kind\": \"alie\", \"fraction\": $2, \"variant\": \"omniscient\" }" ;;
    *) echo "{ \"kind\": \"$1\", \"fraction\": $2 }" ;;
  esac
}

# options_json AGGREGATOR FRACTION: the strategy options (FedAvg's server step on the robust aggregate).
options_json() {
  local f
  f=$(awk -v p="$2" -v n="$clients" 'BEGIN { printf "%d", p * n + 0.5 }')
  local spec
  case "$1" in
    fedavg) echo "{}"; return ;;
    median) spec="median" ;;
    trimmed) spec="trimmed_mean:beta=$2" ;;
    multikrum) spec="multikrum:f=$f" ;;
    gm) spec="geometric_median" ;;
    cclip) spec="centered_clipping:tau=$CCLIP_TAU" ;;
    bucketing) spec="bucketing:s=2 > centered_clipping:tau=$CCLIP_TAU" ;;
  esac
  if [[ "$VALIDATION" == "off" ]]; then
    echo "{ \"aggregator\": \"$spec\", \"max_norm_ratio\": \"off\" }"
  else
    echo "{ \"aggregator\": \"$spec\" }"
  fi
}

# scenario NAME PARTITION OPTIONS ATTACK: writes $out/scenarios/NAME.json.
scenario() {
  cat > "$out/scenarios/$1.json" <<JSON
{
  "name": "$1",
  "data": { "source": "idx", "partition": "$2", "normalization": "fashion-mnist", "maxExamplesPerClient": $samples },
  "clients": $clients,
  "sampledPerRound": $clients,
  "model": "simple-cnn",
  "strategy": { "name": "fedavg", "options": $3 },
  "training": { "epochs": 1, "batchSize": 64, "optimizer": "sgd", "learningRate": 0.01, "momentum": 0.9 },
  "attack": $4,
  "rounds": $rounds,
  "roundDeadlineSeconds": 600,
  "seed": 1,
  "mode": "in-process"
}
JSON
}

names=()
for partition in iid dirichlet:0.5; do
  tag="${partition/:/}"
  scenario "$tag-clean-fedavg" "$partition" "{}" '{ "kind": "none" }'
  names+=("$tag-clean-fedavg")
  for fraction in 0.2 0.3; do
    for attack in signflip scaling noise labelflip zero alie ipm; do
      for aggregator in fedavg median trimmed multikrum gm cclip bucketing; do
        name="$tag-$attack-${fraction/./}-$aggregator"
        scenario "$name" "$partition" "$(options_json "$aggregator" "$fraction")" "$(attack_json "$attack" "$fraction")"
        names+=("$name")
      done
    done
  done
done

failed=0
for name in "${names[@]}"; do
  [[ -n "$only" && ! "$name" =~ $only ]] && continue
  if ((dry)); then echo "$out/scenarios/$name.json"; continue; fi
  if [[ -f "$out/$name/summary.json" ]]; then echo "skip $name (done)"; continue; fi
  rm -rf "${out:?}/$name"
  echo "run $name"
  if ! nice -n "${NICE:-0}" "${sim[@]}" "$out/scenarios/$name.json" --out "$out/$name" > "$out/$name.out" 2>&1; then
    echo "  failed: see $out/$name.out" >&2
    failed=$((failed + 1))
  fi
done

if ((dry == 0)); then
  "${sim[@]}" collect "$out" --out "$out/table.md"
  echo "table: $out/table.md ($failed failed runs)"
fi
