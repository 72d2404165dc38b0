#!/usr/bin/env bash
# Regenerates the public-API baselines (src/*/PublicAPI.Unshipped.txt) of the packable libraries after an intended
# change of their public surface: empties PublicAPI.Unshipped.txt and lets the analyzer's own code fix for RS0016 write
# back every public symbol that PublicAPI.Shipped.txt does not list. A symbol removed from PublicAPI.Shipped.txt's
# list (a released API) still fails the build with RS0017 until that file is edited by hand, on purpose. Review the diff
# of PublicAPI.*.txt before committing it: every line is a promise to package users.
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
  printf '#nullable enable\n' > "src/$name/PublicAPI.Unshipped.txt"
  dotnet format analyzers "$project" --diagnostics RS0016 --severity warn
done
git --no-pager diff --stat -- 'src/*/PublicAPI.*.txt' || true
