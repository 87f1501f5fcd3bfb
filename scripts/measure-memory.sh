#!/usr/bin/env bash
# Peak memory of `chunkseg convert` on a 2 GiB uint16 volume (256 x 2048 x 2048), both directions.
# Usage: scripts/measure-memory.sh [WORKDIR]   (needs ~3 GB of disk; prints peak RSS per step)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
"$here/chunkseg" --help >/dev/null                         # build once, outside the measurements
run() { /usr/bin/time -f "%M" -o "$work/rss" dotnet "$here/.build/cli/chunkseg.dll" "$@" >/dev/null; echo "$(( $(cat "$work/rss") / 1024 )) MiB peak RSS: chunkseg $*"; }
cd "$work"
[[ -d big/nuclei.zarr ]] || dotnet "$here/.build/cli/chunkseg.dll" demo --data-only --out big --shape 256,2048,2048 --nuclei 4000 >/dev/null 2>&1 || true
dotnet "$here/.build/cli/chunkseg.dll" info big/nuclei.zarr
rm -rf out.h5 out.h5.* out.zarr out.zarr.partial
run convert big/nuclei.zarr out.h5/data --codec gzip:1
run convert out.h5/data out.zarr
