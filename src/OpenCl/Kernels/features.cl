// The feature stack's device kernels (OpenClFeatureEngine), the OpenCL twins of FeatureEngine's CPU steps and
// bit-identical to them on a device with correctly rounded float division and sqrt (the engine builds with
// -cl-fp32-correctly-rounded-divide-sqrt). Built after separable_convolution.cl in one program, so the box pass
// below reuses its convolve_one and reflect101. Every float operation is written in the CPU code's order:
//
//   convolve_box_*   one 1D pass computed over a box of the input (SeparableConvolution.Apply with an output box):
//                    input shape (ssz, ssy, ssx), output origin (oz, oy, ox) inside it, output shape = global size;
//                    taps mirror (reflect-101) at the INPUT's ends along the axis, never at the output box's.
//   crop             an image held over a box, cut to a sub-box (DerivativeCache.Crop)
//   add / subtract / multiply      a + b, a - b, a * b (Elementwise.Add / Subtract / Multiply)
//   log3             (xx + yy) + zz, the Laplacian's float sum order x, y, z
//   magnitude2/3     sqrt(x*x + y*y) and sqrt((x*x + y*y) + z*z), no FMA (Elementwise.Magnitude)
//   eigen2/eigen3    EigenEngine.Eigen2 / Eigen3 with Lanes' x86 semantics (see src/Kernels/Eigen)
//
// The constants EV_* come from a header the host writes out of EigenEngine's own constants (exact bits), so
// the device and the CPU share one definition.

#pragma OPENCL FP_CONTRACT OFF

inline void convolve_box(__global const float* restrict src, __global float* restrict dst,
                         __constant const float* restrict taps, int radius,
                         int ssz, int ssy, int ssx, int oz, int oy, int ox, int axis, const int odd)
{
    int x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);
    int osx = get_global_size(0), osy = get_global_size(1);
    int px = ox + x, py = oy + y, pz = oz + z;
    long i = px + (long)ssx * (py + (long)ssy * pz);
    int pos, n;
    long stride;
    if (axis == 2)      { pos = px; n = ssx; stride = 1; }
    else if (axis == 1) { pos = py; n = ssy; stride = ssx; }
    else                { pos = pz; n = ssz; stride = (long)ssx * ssy; }
    dst[x + (long)osx * (y + (long)osy * z)] = convolve_one(src + (i - pos * stride), stride, pos, n, taps, radius, odd);
}

__kernel void convolve_box_even(__global const float* restrict src, __global float* restrict dst,
                                __constant const float* restrict taps, int radius,
                                int ssz, int ssy, int ssx, int oz, int oy, int ox, int axis)
{
    convolve_box(src, dst, taps, radius, ssz, ssy, ssx, oz, oy, ox, axis, 0);
}

__kernel void convolve_box_odd(__global const float* restrict src, __global float* restrict dst,
                               __constant const float* restrict taps, int radius,
                               int ssz, int ssy, int ssx, int oz, int oy, int ox, int axis)
{
    convolve_box(src, dst, taps, radius, ssz, ssy, ssx, oz, oy, ox, axis, 1);
}

// dst (shape = global size) = src (shape ssy, ssx rows) from origin (oz, oy, ox).
__kernel void crop(__global const float* restrict src, __global float* restrict dst, int ssy, int ssx, int oz, int oy, int ox)
{
    int x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);
    int osx = get_global_size(0), osy = get_global_size(1);
    dst[x + (long)osx * (y + (long)osy * z)] = src[(ox + x) + (long)ssx * ((oy + y) + (long)ssy * (oz + z))];
}

__kernel void add(__global const float* a, __global const float* b, __global float* dst)
{
    size_t i = get_global_id(0);
    dst[i] = a[i] + b[i];
}

__kernel void subtract(__global const float* a, __global const float* b, __global float* dst)
{
    size_t i = get_global_id(0);
    dst[i] = a[i] - b[i];
}

__kernel void multiply(__global const float* a, __global const float* b, __global float* dst)
{
    size_t i = get_global_id(0);
    dst[i] = a[i] * b[i];
}

__kernel void log3(__global const float* xx, __global const float* yy, __global const float* zz, __global float* dst)
{
    size_t i = get_global_id(0);
    float s = xx[i] + yy[i];
    dst[i] = s + zz[i];
}

__kernel void magnitude2(__global const float* gx, __global const float* gy, __global float* dst)
{
    size_t i = get_global_id(0);
    float x = gx[i], y = gy[i];
    float sum = x * x + y * y;
    dst[i] = sqrt(sum);
}

__kernel void magnitude3(__global const float* gx, __global const float* gy, __global const float* gz, __global float* dst)
{
    size_t i = get_global_id(0);
    float x = gx[i], y = gy[i], z = gz[i];
    float sum = x * x + y * y;
    sum = sum + z * z;
    dst[i] = sqrt(sum);
}

// ---- Lanes (src/Kernels/Eigen/Lanes.cs) with x86 meaning --------------------------------------------------

inline float ev_abs(float a)     { return as_float(as_int(a) & 0x7fffffff); }
inline float ev_negate(float a)  { return as_float(as_int(a) ^ (int)0x80000000); }
inline float ev_signbit(float a) { return as_float(as_int(a) & (int)0x80000000); }
inline float ev_xor(float a, float b) { return as_float(as_int(a) ^ as_int(b)); }
inline float ev_min(float a, float b) { return a < b ? a : b; }      // minps: the second operand on NaN and ties
inline float ev_max(float a, float b) { return a > b ? a : b; }
inline float ev_select(int mask, float ifSet, float ifClear) { return as_float((mask & as_int(ifSet)) | (~mask & as_int(ifClear))); }
inline float ev_select_by_sign(float sign, float ifSet, float ifClear) { return as_int(sign) < 0 ? ifSet : ifClear; }
inline int ev_mask(int condition) { return condition ? -1 : 0; }

// atan2_256_ps, FMA-free (EigenEngine.Atan2): the x == 0 / y == 0 tests see the octant-swapped operands.
inline float ev_atan2(float y, float x)
{
    float signX = ev_signbit(x), signY = ev_signbit(y);
    float x0 = ev_abs(x), y0 = ev_abs(y);
    float q = ev_select_by_sign(signX, -2.0f, 0.0f);
    int swap = ev_mask(y0 > x0);
    float xs = ev_select(swap, y0, x0);
    float ys = ev_select(swap, ev_negate(x0), y0);
    q = q + ev_select(swap, EV_ONE, 0.0f);

    float s = ys / xs;
    float t = s * s;
    float u = EV_ATAN_C0;
    u = t * u + EV_ATAN_C1;
    u = t * u + EV_ATAN_C2;
    u = t * u + EV_ATAN_C3;
    u = t * u + EV_ATAN_C4;
    u = t * u + EV_ATAN_C5;
    u = t * u + EV_ATAN_C6;
    u = t * u + EV_ATAN_C7;
    t = (t * s) * u + s;
    t = q * EV_HALF_PI + t;
    t = ev_xor(t, signX);

    t = ev_select(ev_mask(xs == 0.0f), EV_HALF_PI, t);
    float yZero = ev_select_by_sign(signX, EV_PI, 0.0f);
    t = ev_select(ev_mask(ys == 0.0f), yZero, t);
    return ev_xor(t, signY);
}

// sincos256_ps (cephes), EigenEngine.SinCos with Lanes' CephesOctant (saturating truncation).
inline void ev_sincos(float x, float* sinOut, float* cosOut)
{
    float signSin = ev_signbit(x);
    float ax = ev_abs(x);
    float scaled = ax * EV_FOUR_OVER_PI;
    int j = convert_int_sat_rtz(scaled);
    j = (int)(((uint)j + 1u) & ~1u);
    float y = (float)j;
    int polyMask = ev_mask((j & 2) == 0);
    float sinSwap = as_float((int)(((uint)(j & 4)) << 29));
    float cosSign = as_float((int)(((uint)(~(j - 2) & 4)) << 29));

    float r = ((ax + y * EV_MINUS_DP1) + y * EV_MINUS_DP2) + y * EV_MINUS_DP3;
    signSin = ev_xor(signSin, sinSwap);

    float z = r * r;
    float yc = EV_COS_P0 * z;
    yc = yc + EV_COS_P1;
    yc = yc * z;
    yc = yc + EV_COS_P2;
    yc = yc * z;
    yc = yc * z;
    yc = yc - z * EV_HALF;
    yc = yc + EV_ONE;

    float ys = EV_SIN_P0 * z;
    ys = ys + EV_SIN_P1;
    ys = ys * z;
    ys = ys + EV_SIN_P2;
    ys = ys * z;
    ys = ys * r;
    ys = ys + r;

    float ysin2 = as_float(polyMask & as_int(ys));
    float ysin1 = as_float(~polyMask & as_int(yc));
    ys = ys - ysin2;
    yc = yc - ysin1;
    *sinOut = ev_xor(ysin1 + ysin2, signSin);
    *cosOut = ev_xor(yc + ys, cosSign);
}

// _ev2d_avx (EigenEngine.Eigen2): big = t0 + d, small = t0 - d, swapped when (t0 + d) <= (t0 - d).
__kernel void eigen2(__global const float* pxx, __global const float* pxy, __global const float* pyy,
                     __global float* ev0, __global float* ev1)
{
    size_t i = get_global_id(0);
    float xx = pxx[i], xy = pxy[i], yy = pyy[i];
    float t0 = (xx + yy) * EV_HALF;
    float t1 = (xx - yy) * EV_HALF;
    t1 = t1 * t1;
    float d = sqrt(t1 + xy * xy);
    float plus = t0 + d, minus = t0 - d;
    int swap = ev_mask(plus <= minus);
    ev0[i] = ev_select(swap, minus, plus);
    ev1[i] = ev_select(swap, plus, minus);
}

// _ev3d_avx2 (EigenEngine.Eigen3) on (a00, a01, a02, a11, a12, a22) = (zz, yz, xz, yy, xy, xx); e0 >= e1 >= e2.
__kernel void eigen3(__global const float* p00, __global const float* p01, __global const float* p02,
                     __global const float* p11, __global const float* p12, __global const float* p22,
                     __global float* ev0, __global float* ev1, __global float* ev2)
{
    size_t i = get_global_id(0);
    float a00 = p00[i], a01 = p01[i], a02 = p02[i], a11 = p11[i], a12 = p12[i], a22 = p22[i];
    const float two = EV_TWO, halfc = EV_HALF, inv3 = EV_INV3;   // "half" is an OpenCL C type name

    float max0 = ev_max(ev_abs(a00), ev_abs(a01));
    float max1 = ev_max(ev_abs(a02), ev_abs(a11));
    float max2 = ev_max(ev_abs(a12), ev_abs(a22));
    float m = ev_max(ev_max(max0, max1), max2);
    m = ev_select(ev_mask(m == 0.0f), EV_ONE, m);

    float b00 = a00 / m, b01 = a01 / m, b02 = a02 / m, b11 = a11 / m, b12 = a12 / m, b22 = a22 / m;

    float c0 = ((((b00 * b11) * b22 + ((two * b01) * b02) * b12) - (b00 * b12) * b12) - (b11 * b02) * b02) - (b22 * b01) * b01;
    float c1 = ((((b00 * b11 - b01 * b01) + b00 * b22) - b02 * b02) + b11 * b22) - b12 * b12;
    float c2 = (b00 + b11) + b22;
    float c2d3 = c2 * inv3;
    float a3 = ev_min((c1 - c2 * c2d3) * inv3, 0.0f);
    float mb2 = halfc * (c0 + c2d3 * (((two * c2d3) * c2d3) - c1));
    float q = ev_min(mb2 * mb2 + (a3 * a3) * a3, 0.0f);

    float mag = sqrt(ev_negate(a3));
    float angle = ev_atan2(sqrt(ev_negate(q)), mb2) * inv3;
    float sn, cs;
    ev_sincos(angle, &sn, &cs);

    const float root3 = EV_ROOT3;
    float r0 = c2d3 + (two * mag) * cs;
    float r1 = c2d3 - mag * (cs + root3 * sn);
    float r2 = c2d3 - mag * (cs - root3 * sn);

    float lo = ev_min(r0, r1);
    float hi = ev_max(r0, r1);
    float smallest = ev_min(lo, r2);
    float rest = ev_max(lo, r2);
    float middle = ev_min(hi, rest);
    float largest = ev_max(hi, rest);

    ev0[i] = largest * m;
    ev1[i] = middle * m;
    ev2[i] = smallest * m;
}
