#!/usr/bin/env bash
# Regenerates the public-API baselines (src/*/PublicAPI.Unshipped.txt) of the packable libraries after an intended
# change of their public surface: adds what RS0016 reports (a public symbol not in the files) and removes what RS0017
# reports (a listed symbol that is gone), with the analyzer's own code fixes. Review the diff of PublicAPI.*.txt before
# committing it: every line is a promise to package users.
#
#   bash scripts/public-api.sh            # all four: Protocol, Learning, Client, Coordinator
#   bash scripts/public-api.sh Learning   # one of them
set -euo pipefail
cd "$(dirname "$0")/.."
projects=("$@")
[[ ${#projects[@]} -eq 0 ]] && projects=(Protocol Learning Client Coordinator)
for name in "${projects[@]}"; do
  project="src/$name/Federated.$name.csproj"
  [[ -f "$project" ]] || { echo "public-api: no project $project (use Protocol, Learning, Client or Coordinator)." >&2; exit 2; }
  echo "public-api: $project"
  dotnet format analyzers "$project" --diagnostics RS0016 RS0017 --severity warn
done
git --no-pager diff --stat -- 'src/*/PublicAPI.*.txt' || true
