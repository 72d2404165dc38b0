#!/usr/bin/env bash
# One-time set-up shared by run.sh and CI: checks the .NET SDK, installs Fashion-MNIST (--data), Chromium for the
# dashboard's browser test (--browser) and Debian's Python gRPC packages for the Python client sample's test (--python)
# where it can. Safe to run repeatedly; does nothing that is already done.
#
#   bash scripts/setup.sh [--data] [--browser] [--python]
set -euo pipefail

DATA_DIR="${FEDERATED_DATA:-/usr/share/datasets/fashion-mnist}"
CHROMIUM="${FEDERATED_CHROMIUM:-/usr/bin/chromium}"
want_data=false
want_browser=false
want_python=false
PYTHON="${FEDERATED_PYTHON:-/usr/bin/python3}"
PYTHON_PACKAGES=(python3-grpcio python3-grpc-tools python3-protobuf python3-nacl)
for arg in "$@"; do
  case "$arg" in
    --data) want_data=true ;;
    --browser) want_browser=true ;;
    --python) want_python=true ;;
    *) echo "setup: unknown argument '$arg' (use --data, --browser and/or --python)." >&2; exit 2 ;;
  esac
done

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET 10 SDK is required (https://dotnet.microsoft.com/download); 'dotnet' is not on PATH." >&2
  exit 1
fi

# The dashboard test (tests/Federated.Coordinator.Tests, DashboardTests) drives Debian's chromium through Playwright for
# .NET with its executable path set; 'playwright install' is never run (it downloads a browser).
if [[ "$want_browser" == true && "${FEDERATED_SKIP_BROWSER_TESTS:-}" != 1 && ! -x "$CHROMIUM" ]]; then
  if [[ "$CHROMIUM" == /usr/bin/chromium && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Chromium (Debian package chromium) for the dashboard's browser test..."
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
  fi
  if [[ ! -x "$CHROMIUM" ]]; then
    echo "setup: no Chromium at $CHROMIUM: the dashboard's browser test needs it." >&2
    echo "       Install it with 'sudo apt-get install chromium' (Debian/Ubuntu), set FEDERATED_CHROMIUM to a Chromium" >&2
    echo "       executable, or set FEDERATED_SKIP_BROWSER_TESTS=1 to skip the browser test." >&2
    exit 1
  fi
fi

# The Python client sample (samples/PythonClient, run by tests/Federated.Samples.Tests) needs grpcio, grpc_tools (protoc),
# protobuf and PyNaCl (Ed25519) in Debian's /usr/bin/python3; never pip: only Debian's packages are used.
python_ready() { [[ -x "$PYTHON" ]] && "$PYTHON" -c 'import grpc, grpc_tools.protoc, google.protobuf, nacl.signing' >/dev/null 2>&1; }
if [[ "$want_python" == true && "${FEDERATED_SKIP_PYTHON_TESTS:-}" != 1 ]] && ! python_ready; then
  if [[ "$PYTHON" == /usr/bin/python3 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${PYTHON_PACKAGES[*]} for the Python client sample..."
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PYTHON_PACKAGES[@]}" >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PYTHON_PACKAGES[@]}" >/dev/null
    fi
  fi
  if ! python_ready; then
    echo "setup: $PYTHON cannot import grpc, grpc_tools, google.protobuf and nacl: the Python client sample's test needs them." >&2
    echo "       Install them with 'sudo apt-get install ${PYTHON_PACKAGES[*]}' (Debian/Ubuntu), set FEDERATED_PYTHON to" >&2
    echo "       an interpreter that has them, or set FEDERATED_SKIP_PYTHON_TESTS=1 to skip that test." >&2
    exit 1
  fi
fi

if [[ "$want_data" == true ]]; then
  if [[ -f "$DATA_DIR/train-images-idx3-ubyte.gz" || -f "$DATA_DIR/train-images-idx3-ubyte" ]]; then
    exit 0
  fi
  if [[ "$DATA_DIR" == /usr/share/datasets/fashion-mnist && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."
    if ! apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get install -y -qq dataset-fashion-mnist >/dev/null
    fi
  fi
  if [[ ! -f "$DATA_DIR/train-images-idx3-ubyte.gz" && ! -f "$DATA_DIR/train-images-idx3-ubyte" ]]; then
    echo "setup: no Fashion-MNIST IDX files in $DATA_DIR." >&2
    echo "       Install them with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or download the four" >&2
    echo "       IDX files (train-/t10k- images and labels, raw or .gz) and set FEDERATED_DATA to their directory." >&2
    exit 1
  fi
fi
