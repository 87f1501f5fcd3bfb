// Separable Gaussian-derivative convolution: one 1D pass along one axis of a float32 volume (sz, sy, sx),
// x fastest, index i = x + sx*(y + sy*z). The OpenCL twin of src/Kernels/Filters/SeparableConvolution.cs and
// bit-identical to it (and so to fastfilters/ilastik): per output sample, in exactly this order,
//
//     acc = c[0] * in[i]                           float multiply (order 1: c[0] = -0 or +0, acc = signed 0)
//     for k = 1..R:  d   = in[i+k] +/- in[i-k]     float add (even kernels, orders 0 and 2) or subtract (odd, order 1)
//                    acc = fma(d, c[k], acc)       fused, one rounding: OpenCL's fma() is correctly rounded
//     out[i] = acc
//
// Nothing may contract or reassociate this: FP_CONTRACT is off below, and the host builds without
// -cl-fast-relaxed-math / -cl-mad-enable / -cl-denorms-are-zero (KernelSources.StrictOptions).
//
// Border: reflect-101 at the buffer's own ends along the axis, "dcb|abcd|cba": in[-j] = in[j],
// in[n-1+j] = in[n-1-j]. The host guarantees R <= n-1 (one reflection suffices); a line of n = 1 maps every
// index to 0 (out = c0*v + sum fma(v +/- v, c_k): the kernel sum times v for orders 0/2, signed 0 for order 1).
//
// Two kernels per symmetry (the symmetry is a literal, so each variant compiles to straight-line taps):
//
//   convolve_lines_*   any axis, one work item per output sample, global size (sx, sy, sz). Neighbouring work
//                      items are neighbouring x, so the y and z passes read and write coalesced rows; taps
//                      outside the line's interior go through reflect101.
//
//   convolve_x_tiled_* the x pass with a local-memory tile: a work-group of LX items covers LX outputs of one
//                      row and first stages the LX + 2R inputs they read, mirrored, in local memory:
//
//                          tile:  [ R left | LX centre samples | R right ]      item t reads tile[t .. t+2R]
//                                   ^ x0-R   ^ x0                 ^ x0+LX
//
//                      global size (ceil(sx/LX)*LX, sy*sz), local (LX, 1); items past sx load but do not store.

#pragma OPENCL FP_CONTRACT OFF

inline int reflect101(int j, int n)
{
    if (n == 1) return 0;
    if (j < 0) j = -j;
    if (j > n - 1) j = 2 * (n - 1) - j;
    return j;
}

// One output of a line: `line` is element 0 of the line, `stride` the distance between its elements.
inline float convolve_one(__global const float* line, long stride, int pos, int n,
                          __constant const float* c, int radius, const int odd)
{
    float acc = c[0] * line[pos * stride];
    if (pos >= radius && pos + radius <= n - 1)
    {
        for (int k = 1; k <= radius; k++)
        {
            float p = line[(pos + k) * stride], m = line[(pos - k) * stride];
            float d = odd ? p - m : p + m;
            acc = fma(d, c[k], acc);
        }
    }
    else
    {
        for (int k = 1; k <= radius; k++)
        {
            float p = line[reflect101(pos + k, n) * stride], m = line[reflect101(pos - k, n) * stride];
            float d = odd ? p - m : p + m;
            acc = fma(d, c[k], acc);
        }
    }
    return acc;
}

inline void convolve_lines(__global const float* restrict src, __global float* restrict dst,
                           __constant const float* restrict taps, int radius,
                           int sz, int sy, int sx, int axis, const int odd)
{
    int x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);
    long i = x + (long)sx * (y + (long)sy * z);
    int pos, n;
    long stride;
    if (axis == 2)      { pos = x; n = sx; stride = 1; }
    else if (axis == 1) { pos = y; n = sy; stride = sx; }
    else                { pos = z; n = sz; stride = (long)sx * sy; }
    dst[i] = convolve_one(src + (i - pos * stride), stride, pos, n, taps, radius, odd);
}

__kernel void convolve_lines_even(__global const float* restrict src, __global float* restrict dst,
                                  __constant const float* restrict taps, int radius,
                                  int sz, int sy, int sx, int axis)
{
    convolve_lines(src, dst, taps, radius, sz, sy, sx, axis, 0);
}

__kernel void convolve_lines_odd(__global const float* restrict src, __global float* restrict dst,
                                 __constant const float* restrict taps, int radius,
                                 int sz, int sy, int sx, int axis)
{
    convolve_lines(src, dst, taps, radius, sz, sy, sx, axis, 1);
}

inline void convolve_x_tiled(__global const float* restrict src, __global float* restrict dst,
                             __constant const float* restrict c, int radius, int sx,
                             __local float* tile, const int odd)
{
    int lx = get_local_size(0), t = get_local_id(0);
    int x0 = get_group_id(0) * lx;
    long row = get_global_id(1);
    __global const float* line = src + row * sx;

    // Stage inputs x0-R .. x0+LX+R-1, mirrored; those past sx-1+R feed no stored output (zeros, never read).
    for (int j = t; j < lx + 2 * radius; j += lx)
    {
        int xs = x0 - radius + j;
        tile[j] = xs <= sx - 1 + radius ? line[reflect101(xs, sx)] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    int x = x0 + t;
    if (x >= sx) return;
    __local const float* centre = tile + t + radius;
    float acc = c[0] * centre[0];
    for (int k = 1; k <= radius; k++)
    {
        float p = centre[k], m = centre[-k];
        float d = odd ? p - m : p + m;
        acc = fma(d, c[k], acc);
    }
    dst[row * sx + x] = acc;
}

__kernel void convolve_x_tiled_even(__global const float* restrict src, __global float* restrict dst,
                                    __constant const float* restrict taps, int radius, int sx, __local float* tile)
{
    convolve_x_tiled(src, dst, taps, radius, sx, tile, 0);
}

__kernel void convolve_x_tiled_odd(__global const float* restrict src, __global float* restrict dst,
                                   __constant const float* restrict taps, int radius, int sx, __local float* tile)
{
    convolve_x_tiled(src, dst, taps, radius, sx, tile, 1);
}
