"""Independent float32 reference for ChunkSeg.Kernels.Eigen (ILASTIK_RECIPE section 3.6).

Written from the recipe with numpy float32 arrays: every elementwise numpy operation on float32 is a
correctly rounded IEEE-754 single-precision operation, and no two of them are fused, so the C# code must
agree bit for bit. Selections use np.where with the x86 meaning spelled out (min/max return the second
operand on NaN and ties, blendv looks at the sign bit).

usage:
  eigen_reference.py ev2  IN OUT    IN: float32 (3, n) xx, xy, yy          OUT: float32 (2, n) ev0, ev1
  eigen_reference.py ev3  IN OUT    IN: float32 (6, n) a00..a22             OUT: float32 (3, n) ev0, ev1, ev2
  eigen_reference.py true2 IN OUT   numpy.linalg.eigvalsh in float64, descending, OUT: float64 (2, n)
  eigen_reference.py true3 IN OUT   the same for 3x3, OUT: float64 (3, n)
Files are raw little-endian arrays, row-major.
"""
import sys

import numpy as np

F = np.float32
I = np.int32


def bits(a):
    return a.view(np.uint32)


def from_bits(u):
    return u.astype(np.uint32).view(np.float32)


SIGN = np.uint32(0x80000000)


def fabs(a):
    return from_bits(bits(a) & ~SIGN)


def fneg(a):
    return from_bits(bits(a) ^ SIGN)


def sign_of(a):
    return from_bits(bits(a) & SIGN)


def fxor(a, b):
    return from_bits(bits(a) ^ bits(b))


def min_x86(a, b):
    return np.where(a < b, a, b).astype(F)


def max_x86(a, b):
    return np.where(a > b, a, b).astype(F)


def full(n, v):
    return np.full(n, F(v), dtype=F)


def atan2_ff(y, x):
    n = y.shape[0]
    sx = sign_of(x)
    sy = sign_of(y)
    x0 = fabs(x)
    y0 = fabs(y)
    sx_set = (bits(sx) != 0)
    q = np.where(sx_set, F(-2.0), F(0.0)).astype(F)
    swap = y0 > x0
    xs = np.where(swap, y0, x0).astype(F)
    ys = np.where(swap, fneg(x0), y0).astype(F)
    q = (q + np.where(swap, F(1.0), F(0.0)).astype(F)).astype(F)
    s = ys / xs
    t = s * s
    u = full(n, 0.00282363896258175373077393)
    for c in (-0.0159569028764963150024414, 0.0425049886107444763183594, -0.0748900920152664184570312,
              0.106347933411598205566406, -0.142027363181114196777344, 0.199926957488059997558594,
              -0.333331018686294555664062):
        u = t * u + F(c)
    t = (t * s) * u + s
    t = q * F(np.pi / 2.0) + t
    t = fxor(t, sx)
    t = np.where(xs == F(0.0), F(np.pi / 2.0), t).astype(F)
    yzero = np.where(sx_set, F(np.pi), F(0.0)).astype(F)
    t = np.where(ys == F(0.0), yzero, t).astype(F)
    return fxor(t, sy)


def sincos_ff(x):
    sign_sin = sign_of(x)
    ax = fabs(x)
    scaled = ax * F(1.27323954473516)
    # .NET 9+ truncation saturates (NaN -> 0); only NaN can reach here out of range, and then the
    # flags agree with cvttps2dq's 0x80000000 while r is NaN anyway.
    with np.errstate(invalid="ignore"):
        j = np.where(np.isnan(scaled), 0, np.trunc(np.nan_to_num(scaled))).astype(np.int64)
    j = np.clip(j, -2**31, 2**31 - 1).astype(I)
    j = (j + I(1)) & I(~1)
    y = j.astype(F)
    poly = (j & I(2)) == 0
    sin_swap = from_bits(((j & I(4)).astype(np.uint32) << np.uint32(29)))
    cos_sign = from_bits(((~(j - I(2)) & I(4)).astype(np.uint32) << np.uint32(29)))
    r = ((ax + y * F(-0.78515625)) + y * F(-2.4187564849853515625e-4)) + y * F(-3.77489497744594108e-8)
    sign_sin = fxor(sign_sin, sin_swap)
    z = r * r
    yc = F(2.443315711809948e-5) * z
    yc = yc + F(-1.388731625493765e-3)
    yc = yc * z
    yc = yc + F(4.166664568298827e-2)
    yc = yc * z
    yc = yc * z
    yc = yc - z * F(0.5)
    yc = yc + F(1.0)
    ys = F(-1.9515295891e-4) * z
    ys = ys + F(8.3321608736e-3)
    ys = ys * z
    ys = ys + F(-1.6666654611e-1)
    ys = ys * z
    ys = ys * r
    ys = ys + r
    # Both polynomials are combined through masks: sin = (masked yc) + (masked ys), cos = the remainders.
    zero = np.zeros_like(ys)
    ysin2 = np.where(poly, ys, zero).astype(F)
    ysin1 = np.where(poly, zero, yc).astype(F)
    ys = ys - ysin2
    yc = yc - ysin1
    return fxor(ysin1 + ysin2, sign_sin), fxor(yc + ys, cos_sign)


def ev2(xx, xy, yy):
    half = F(0.5)
    t0 = (xx + yy) * half
    t1 = (xx - yy) * half
    t1 = t1 * t1
    d = np.sqrt(t1 + xy * xy)
    plus = t0 + d
    minus = t0 - d
    swap = plus <= minus
    return np.where(swap, minus, plus).astype(F), np.where(swap, plus, minus).astype(F)


def ev3(a00, a01, a02, a11, a12, a22):
    n = a00.shape[0]
    zero = full(n, 0.0)
    two, half, inv3 = F(2.0), F(0.5), F(1.0 / 3.0)
    m = max_x86(max_x86(max_x86(fabs(a00), fabs(a01)), max_x86(fabs(a02), fabs(a11))), max_x86(fabs(a12), fabs(a22)))
    m = np.where(m == F(0.0), F(1.0), m).astype(F)
    b00, b01, b02, b11, b12, b22 = (a / m for a in (a00, a01, a02, a11, a12, a22))
    c0 = ((((b00 * b11) * b22 + ((two * b01) * b02) * b12) - (b00 * b12) * b12) - (b11 * b02) * b02) - (b22 * b01) * b01
    c1 = ((((b00 * b11 - b01 * b01) + b00 * b22) - b02 * b02) + b11 * b22) - b12 * b12
    c2 = (b00 + b11) + b22
    c2d3 = c2 * inv3
    a3 = min_x86((c1 - c2 * c2d3) * inv3, zero)
    mb2 = half * (c0 + c2d3 * (((two * c2d3) * c2d3) - c1))
    q = min_x86(mb2 * mb2 + (a3 * a3) * a3, zero)
    mag = np.sqrt(fneg(a3))
    ang = atan2_ff(np.sqrt(fneg(q)), mb2) * inv3
    sn, cs = sincos_ff(ang)
    root3 = np.sqrt(F(3.0))
    r0 = c2d3 + (two * mag) * cs
    r1 = c2d3 - mag * (cs + root3 * sn)
    r2 = c2d3 - mag * (cs - root3 * sn)
    lo, hi = min_x86(r0, r1), max_x86(r0, r1)
    smallest, rest = min_x86(lo, r2), max_x86(lo, r2)
    middle, largest = min_x86(hi, rest), max_x86(hi, rest)
    return largest * m, middle * m, smallest * m


def main():
    mode, src, dst = sys.argv[1:4]
    rows = {"ev2": 3, "true2": 3, "ev3": 6, "true3": 6}[mode]
    data = np.fromfile(src, dtype="<f4").reshape(rows, -1)
    with np.errstate(all="ignore"):
        if mode == "ev2":
            out = np.stack(ev2(*data))
        elif mode == "ev3":
            out = np.stack(ev3(*data))
        elif mode == "true2":
            xx, xy, yy = data.astype(np.float64)
            mats = np.stack([np.stack([xx, xy], -1), np.stack([xy, yy], -1)], -2)
            out = np.linalg.eigvalsh(mats)[:, ::-1].T
        else:
            a00, a01, a02, a11, a12, a22 = data.astype(np.float64)
            mats = np.stack([np.stack([a00, a01, a02], -1), np.stack([a01, a11, a12], -1),
                             np.stack([a02, a12, a22], -1)], -2)
            out = np.linalg.eigvalsh(mats)[:, ::-1].T
    if mode.startswith("ev"):
        assert out.dtype == np.float32, out.dtype
        out.astype("<f4").tofile(dst)
    else:
        np.ascontiguousarray(out).astype("<f8").tofile(dst)


if __name__ == "__main__":
    main()
