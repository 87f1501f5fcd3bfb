#!/usr/bin/env bash
# Peak memory of ChunkSeg reading a BigTIFF over 4 GiB: tifffile writes a uint16 z-stack (default 1100 x 1400 x 1400,
# 4.31 GB, uncompressed, one strip per page; COMPRESSION=deflate for deflate strips), then `chunkseg info` and
# `chunkseg convert big.tif out.zarr --chunks 64,256,256` run under /usr/bin/time; a few planes of the Zarr output are
# checked against the generator. Not part of the test suite (too big for CI).
# Usage: scripts/measure-bigtiff-memory.sh [WORKDIR]   (needs ~5 GB of disk plus the Zarr output; deletes both at the end
# unless KEEP=1). Shape: SHAPE=z,y,x. Prints peak RSS per step.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
shape="${SHAPE:-1100,1400,1400}"
compression="${COMPRESSION:-none}"
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
"$here/chunkseg" --help >/dev/null                         # build once, outside the measurements
cd "$work"
# Each plane z is (y * 7 + x * 3 + z * 11) % 65521 (cheap to regenerate for the check), written plane by plane.
gen='
import numpy as np
def plane(z, ny, nx):
    y = np.arange(ny, dtype=np.uint32)[:, None]; x = np.arange(nx, dtype=np.uint32)[None, :]
    return ((y * 7 + x * 3 + z * 11) % 65521).astype(np.uint16)
'
if [[ ! -f big.tif ]]; then
  /usr/bin/python3 -c "$gen
import sys, tifffile
nz, ny, nx = map(int, sys.argv[1].split(','))
comp = None if sys.argv[2] == 'none' else sys.argv[2]
tifffile.imwrite('big.tif', (plane(z, ny, nx) for z in range(nz)), shape=(nz, ny, nx), dtype='uint16', bigtiff=True, compression=comp)
" "$shape" "$compression"
fi
ls -l big.tif
run() { /usr/bin/time -f "%M %e" -o "$work/rss" dotnet "$here/.build/cli/chunkseg.dll" "$@" >"$work/out.txt"; read -r kb s <"$work/rss";
        echo "$(( kb / 1024 )) MiB peak RSS, ${s} s: chunkseg $*"; }
run info big.tif; cat "$work/out.txt"
rm -rf out.zarr out.zarr.partial
run convert big.tif out.zarr --chunks 64,256,256
/usr/bin/python3 -c "$gen
import sys, zarr, numpy as np
nz, ny, nx = map(int, sys.argv[1].split(','))
a = zarr.open_group('out.zarr', mode='r')['0']
lead = (0,) * (a.ndim - 3)                                # OME-Zarr may carry leading t/c axes of size 1
for z in (0, 1, nz // 2, nz - 1):
    assert np.array_equal(a[lead + (z,)], plane(z, ny, nx)), z
print('out.zarr planes 0, 1, middle, last equal the written data')
" "$shape"
[[ "${KEEP:-0}" == 1 ]] || rm -rf big.tif out.zarr
