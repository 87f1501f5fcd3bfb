// Segmentation of a chunk's probabilities: the foreground mask of the chunk's core, the OpenCL twin of the loop in
// src/GpuNode/Stages/ChunkSegmenter.cs (BlockSegmenter). The smoothing before it is separable_convolution.cl's passes
// (x, then y, then z over the whole read box), so these kernels only read a smoothed read-box image and write the
// core, one work item per core voxel, global size (cx, cy, cz):
//
//     read box (sx, sy, sz)                     image index  r = (ox + x) + sx*((oy + y) + sy*(oz + z))
//     ┌───────────────────────┐                 core index   i = x + cx*(y + cy*z)
//     │  halo   ┌─────────┐   │
//     │         │  core   │   │  offset (ox, oy, oz) = core start in the read box
//     │         └─────────┘   │
//     └───────────────────────┘
//
// threshold:     mask[i] = image[r] >= t                        (NaN >= t is false: background, as on the CPU)
// argmax_update: channel c of C, in order c = 0 .. C-1; best[] holds the largest value so far. Channel 0 takes every
//                voxel; a later channel takes it only when strictly larger (numpy's first-maximum rule):
//                    c == 0:            best = v, mask = (foreground == 0)
//                    v > best (c > 0):  best = v, mask = (c == foreground)
// Only comparisons and copies: no arithmetic to round, so the result equals the CPU's whenever the images do.

#pragma OPENCL FP_CONTRACT OFF

inline long read_index(int x, int y, int z, int ox, int oy, int oz, int sx, int sy)
{
    return (ox + x) + (long)sx * ((oy + y) + (long)sy * (oz + z));
}

__kernel void threshold(__global const float* restrict image, __global uchar* restrict mask, float t,
                        int sx, int sy, int ox, int oy, int oz)
{
    int x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);
    long i = x + (long)get_global_size(0) * (y + (long)get_global_size(1) * z);
    mask[i] = image[read_index(x, y, z, ox, oy, oz, sx, sy)] >= t ? 1 : 0;
}

__kernel void argmax_update(__global const float* restrict image, __global float* restrict best, __global uchar* restrict mask,
                            int c, int foreground, int sx, int sy, int ox, int oy, int oz)
{
    int x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);
    long i = x + (long)get_global_size(0) * (y + (long)get_global_size(1) * z);
    float v = image[read_index(x, y, z, ox, oy, oz, sx, sy)];
    if (c == 0)
    {
        best[i] = v;
        mask[i] = foreground == 0 ? 1 : 0;
    }
    else if (v > best[i])
    {
        best[i] = v;
        mask[i] = c == foreground ? 1 : 0;
    }
}
