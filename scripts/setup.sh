#!/usr/bin/env bash
# One-time set-up shared by run.sh and CI: checks the .NET SDK and installs Fashion-MNIST where it can.
# Safe to run repeatedly; does nothing that is already done.
set -euo pipefail

DATA_DIR="${FEDERATED_DATA:-/usr/share/datasets/fashion-mnist}"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET 10 SDK is required (https://dotnet.microsoft.com/download); 'dotnet' is not on PATH." >&2
  exit 1
fi

if [[ "${1:-}" == "--data" ]]; then
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
