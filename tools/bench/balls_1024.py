#!/usr/bin/python3
"""A 1024³ uint8 Zarr v2 volume of balls (value 1 on 0) for the output file-count and pyramid figures in
docs/performance.md: balls of radius 10 on a 24-voxel lattice, written slab by slab (memory: one 64-slice slab).

    /usr/bin/python3 tools/bench/balls_1024.py OUT.zarr [EDGE]
"""
import sys

import numpy as np
import zarr

out = sys.argv[1]
edge = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
spacing, radius, slab = 24, 10, 64
array = zarr.open(out, mode="w", shape=(edge, edge, edge), chunks=(64, 64, 64), dtype="uint8")
# Squared distance to the cell's centre along each axis; a voxel is in a ball when their sum is within radius².
d = (np.arange(edge) % spacing - spacing // 2) ** 2
for z0 in range(0, edge, slab):
    z = d[z0:z0 + slab][:, None, None]
    array[z0:z0 + slab] = ((z + d[None, :, None] + d[None, None, :]) <= radius * radius).astype(np.uint8)
