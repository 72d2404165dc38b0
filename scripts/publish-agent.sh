#!/usr/bin/env bash
# Makes self-contained single-file publishes of the client agent (federated-client) for devices.
#
#   bash scripts/publish-agent.sh [--rid linux-x64|win-x64]... [--backend cpu|cuda] [--out DIR] [--no-compress]
#
# Default: linux-x64 and win-x64, CPU backend, into artifacts/agent/<rid>/ (ignored by git; never commit it).
# Each folder holds the one executable (managed code, the .NET runtime, TorchSharp and libtorch's native libraries,
# which are extracted once on first start, see docs/results/agent.md) and appsettings.json, the configuration file.
# On Linux the GLIBCXX_3.4.32 fix (build/Federated.Native.targets) is applied to libLibTorchSharp.so before it is
# bundled. linux-arm64 is not possible: no libtorch for linux-arm64 is published for TorchSharp 0.107.
set -euo pipefail
cd "$(dirname "$0")/.."

rids=()
backend=cpu
out=artifacts/agent
compress=true
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rid) rids+=("${2:?--rid needs a runtime identifier}"); shift 2 ;;
    --backend) backend="${2:?--backend needs cpu or cuda}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-compress) compress=false; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "publish-agent: unknown argument '$1' (see --help)." >&2; exit 2 ;;
  esac
done
[[ ${#rids[@]} -gt 0 ]] || rids=(linux-x64 win-x64)
case "$backend" in cpu|cuda) ;; *) echo "publish-agent: --backend must be cpu or cuda, not '$backend'." >&2; exit 2 ;; esac

for rid in "${rids[@]}"; do
  case "$rid" in
    linux-x64|win-x64) ;;
    linux-arm64) echo "publish-agent: linux-arm64 is not possible yet: no libtorch for linux-arm64 is published for TorchSharp 0.107." >&2; exit 2 ;;
    *) echo "publish-agent: --rid must be linux-x64 or win-x64, not '$rid'." >&2; exit 2 ;;
  esac
  dir="$out/$rid"
  rm -rf "$dir"
  echo "publish-agent: $rid ($backend) -> $dir"
  dotnet publish src/Client/Federated.Client.csproj -c Release -r "$rid" --self-contained true \
    -p:FederatedTorchBackend="$backend" \
    -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
    -p:EnableCompressionInSingleFile="$compress" -p:DebugType=none -p:GenerateDocumentationFile=false \
    -p:CreateHardLinksForPublishFilesIfPossible=false \
    -o "$dir"
  exe="$dir/federated-client"; [[ "$rid" == win-* ]] && exe="$exe.exe"
  size=$(stat -c %s "$exe")
  echo "publish-agent: $exe: $size bytes ($(( size / 1024 / 1024 )) MiB); folder: $(du -sb "$dir" | cut -f1) bytes"
done
