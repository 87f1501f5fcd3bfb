using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ChunkSeg.Kernels.Eigen;

/// <summary>Which lane widths a run may use; <see cref="Auto"/> is what the public API does.</summary>
internal enum EigenWidth
{
    /// <summary>Vector512 body if accelerated, then Vector256, then the scalar tail.</summary>
    Auto,
    /// <summary>Vector256 body (if accelerated) and the scalar tail; never Vector512.</summary>
    Vector256Only,
    /// <summary>Every element through the one-lane path.</summary>
    ScalarOnly,
}

/// <summary>
/// The formulas of ILASTIK_RECIPE §3.6, written once over <see cref="ILanes{TSelf}"/> (see the essay in
/// <see cref="SymmetricEigen"/>). Every line mirrors one fastfilters AVX statement; the parenthesisation is
/// the evaluation order and must not be "simplified".
/// </summary>
internal static class EigenEngine
{
    // Constants as the C source produces them: double literals rounded once to float.
    internal const float Inv3 = (float)(1.0 / 3.0);
    internal const float Half = 0.5f;
    internal const float Two = 2.0f;
    internal const float One = 1.0f;

    // atan2_256_ps
    internal const float AtanC0 = 0.00282363896258175373077393f;
    internal const float AtanC1 = -0.0159569028764963150024414f;
    internal const float AtanC2 = 0.0425049886107444763183594f;
    internal const float AtanC3 = -0.0748900920152664184570312f;
    internal const float AtanC4 = 0.106347933411598205566406f;
    internal const float AtanC5 = -0.142027363181114196777344f;
    internal const float AtanC6 = 0.199926957488059997558594f;
    internal const float AtanC7 = -0.333331018686294555664062f;
    internal const float Pi = (float)Math.PI;
    internal const float HalfPi = (float)(Math.PI / 2.0);

    // sincos256_ps (cephes sinf/cosf)
    internal const float FourOverPi = (float)1.27323954473516;
    internal const float MinusDp1 = (float)-0.78515625;
    internal const float MinusDp2 = (float)-2.4187564849853515625e-4;
    internal const float MinusDp3 = (float)-3.77489497744594108e-8;
    internal const float SinP0 = (float)-1.9515295891E-4;
    internal const float SinP1 = (float)8.3321608736E-3;
    internal const float SinP2 = (float)-1.6666654611E-1;
    internal const float CosP0 = (float)2.443315711809948E-005;
    internal const float CosP1 = (float)-1.388731625493765E-003;
    internal const float CosP2 = (float)4.166664568298827E-002;

    /// <summary>_mm256_sqrt_ps(3.0f): sqrt of the float 3, correctly rounded.</summary>
    internal static readonly float Root3 = MathF.Sqrt(3.0f);

    // ---------------------------------------------------------------- drivers

    internal static void Run2(ReadOnlySpan<float> xx, ReadOnlySpan<float> xy, ReadOnlySpan<float> yy,
                              Span<float> ev0, Span<float> ev1, EigenWidth width)
    {
        Debug.Assert(xy.Length == xx.Length && yy.Length == xx.Length && ev0.Length >= xx.Length && ev1.Length >= xx.Length);
        ref float pxx = ref MemoryMarshal.GetReference(xx);
        ref float pxy = ref MemoryMarshal.GetReference(xy);
        ref float pyy = ref MemoryMarshal.GetReference(yy);
        ref float pe0 = ref MemoryMarshal.GetReference(ev0);
        ref float pe1 = ref MemoryMarshal.GetReference(ev1);
        nuint n = (nuint)xx.Length, i = 0;

        // Lanes are independent voxels; each width stops before it would run past n, and the next
        // narrower one (finally the one-lane path) finishes the rest with the same operations.
        if (width == EigenWidth.Auto && Vector512.IsHardwareAccelerated)
            i = Loop2<Lane16>(ref pxx, ref pxy, ref pyy, ref pe0, ref pe1, i, n);
        if (width != EigenWidth.ScalarOnly && Vector256.IsHardwareAccelerated)
            i = Loop2<Lane8>(ref pxx, ref pxy, ref pyy, ref pe0, ref pe1, i, n);
        Loop2<Lane1>(ref pxx, ref pxy, ref pyy, ref pe0, ref pe1, i, n);
    }

    internal static void Run3(ReadOnlySpan<float> a00, ReadOnlySpan<float> a01, ReadOnlySpan<float> a02,
                              ReadOnlySpan<float> a11, ReadOnlySpan<float> a12, ReadOnlySpan<float> a22,
                              Span<float> ev0, Span<float> ev1, Span<float> ev2, EigenWidth width)
    {
        int len = a00.Length;
        Debug.Assert(a01.Length == len && a02.Length == len && a11.Length == len && a12.Length == len && a22.Length == len);
        Debug.Assert(ev0.Length >= len && ev1.Length >= len && ev2.Length >= len);
        ref float p00 = ref MemoryMarshal.GetReference(a00);
        ref float p01 = ref MemoryMarshal.GetReference(a01);
        ref float p02 = ref MemoryMarshal.GetReference(a02);
        ref float p11 = ref MemoryMarshal.GetReference(a11);
        ref float p12 = ref MemoryMarshal.GetReference(a12);
        ref float p22 = ref MemoryMarshal.GetReference(a22);
        ref float pe0 = ref MemoryMarshal.GetReference(ev0);
        ref float pe1 = ref MemoryMarshal.GetReference(ev1);
        ref float pe2 = ref MemoryMarshal.GetReference(ev2);
        nuint n = (nuint)len, i = 0;

        if (width == EigenWidth.Auto && Vector512.IsHardwareAccelerated)
            i = Loop3<Lane16>(ref p00, ref p01, ref p02, ref p11, ref p12, ref p22, ref pe0, ref pe1, ref pe2, i, n);
        if (width != EigenWidth.ScalarOnly && Vector256.IsHardwareAccelerated)
            i = Loop3<Lane8>(ref p00, ref p01, ref p02, ref p11, ref p12, ref p22, ref pe0, ref pe1, ref pe2, i, n);
        Loop3<Lane1>(ref p00, ref p01, ref p02, ref p11, ref p12, ref p22, ref pe0, ref pe1, ref pe2, i, n);
    }

    // One loop per width, never inlined into the driver: the formula is large, and each width needs the
    // JIT's whole inlining budget to itself for the lane operations to become plain instructions.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nuint Loop2<V>(ref float xx, ref float xy, ref float yy, ref float ev0, ref float ev1, nuint i, nuint n)
        where V : struct, ILanes<V>
    {
        for (nuint w = (nuint)V.Count; i + w <= n; i += w)
            Step2<V>(ref xx, ref xy, ref yy, ref ev0, ref ev1, i);
        return i;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nuint Loop3<V>(ref float a00, ref float a01, ref float a02, ref float a11, ref float a12, ref float a22,
                                  ref float ev0, ref float ev1, ref float ev2, nuint i, nuint n)
        where V : struct, ILanes<V>
    {
        for (nuint w = (nuint)V.Count; i + w <= n; i += w)
            Step3<V>(ref a00, ref a01, ref a02, ref a11, ref a12, ref a22, ref ev0, ref ev1, ref ev2, i);
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step2<V>(ref float xx, ref float xy, ref float yy, ref float ev0, ref float ev1, nuint i)
        where V : struct, ILanes<V>
    {
        Eigen2(V.Load(ref xx, i), V.Load(ref xy, i), V.Load(ref yy, i), out V big, out V small);
        V.Store(big, ref ev0, i);
        V.Store(small, ref ev1, i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step3<V>(ref float a00, ref float a01, ref float a02, ref float a11, ref float a12, ref float a22,
                                 ref float ev0, ref float ev1, ref float ev2, nuint i)
        where V : struct, ILanes<V>
    {
        Eigen3(V.Load(ref a00, i), V.Load(ref a01, i), V.Load(ref a02, i), V.Load(ref a11, i), V.Load(ref a12, i),
               V.Load(ref a22, i), out V e0, out V e1, out V e2);
        V.Store(e0, ref ev0, i);
        V.Store(e1, ref ev1, i);
        V.Store(e2, ref ev2, i);
    }

    // ---------------------------------------------------------------- formulas

    /// <summary>_ev2d_avx: big = t0 + d, small = t0 − d, swapped when (t0 + d) &lt;= (t0 − d) (only ties, e.g. −0/+0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Eigen2<V>(V xx, V xy, V yy, out V big, out V small) where V : struct, ILanes<V>
    {
        V half = V.Splat(Half);
        V t0 = (xx + yy) * half;
        V t1 = (xx - yy) * half;
        t1 = t1 * t1;
        V d = V.Sqrt(t1 + xy * xy);
        V plus = t0 + d;
        V minus = t0 - d;
        V swap = V.LessThanOrEqual(plus, minus);                // _CMP_LE_OQ: false on NaN → no swap
        big = V.Select(swap, minus, plus);
        small = V.Select(swap, plus, minus);
    }

    /// <summary>_ev3d_avx2 vector body on (a00,a01,a02,a11,a12,a22); e0 ≥ e1 ≥ e2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Eigen3<V>(V a00, V a01, V a02, V a11, V a12, V a22, out V e0, out V e1, out V e2)
        where V : struct, ILanes<V>
    {
        V zero = V.Splat(0f), one = V.Splat(One), two = V.Splat(Two), half = V.Splat(Half), inv3 = V.Splat(Inv3);

        // Scale by the largest magnitude so the cubic's coefficients cannot overflow.
        V max0 = V.MaxX86(V.Abs(a00), V.Abs(a01));
        V max1 = V.MaxX86(V.Abs(a02), V.Abs(a11));
        V max2 = V.MaxX86(V.Abs(a12), V.Abs(a22));
        V m = V.MaxX86(V.MaxX86(max0, max1), max2);
        // C: m |= (1.0f & (m ==unordered 0)). OR-ing 1.0f's bits into a NaN leaves it unchanged, so this
        // is "+0 → 1" and nothing else.
        m = V.Select(V.EqualTo(m, zero), one, m);

        V b00 = a00 / m, b01 = a01 / m, b02 = a02 / m, b11 = a11 / m, b12 = a12 / m, b22 = a22 / m;

        V c0 = ((((b00 * b11) * b22 + ((two * b01) * b02) * b12) - (b00 * b12) * b12) - (b11 * b02) * b02) - (b22 * b01) * b01;
        V c1 = ((((b00 * b11 - b01 * b01) + b00 * b22) - b02 * b02) + b11 * b22) - b12 * b12;
        V c2 = (b00 + b11) + b22;
        V c2d3 = c2 * inv3;
        V a3 = V.MinX86((c1 - c2 * c2d3) * inv3, zero);
        V mb2 = half * (c0 + c2d3 * (((two * c2d3) * c2d3) - c1));
        V q = V.MinX86(mb2 * mb2 + (a3 * a3) * a3, zero);

        // a3 and q are negative or +0 here; the sign-flip negation turns +0 into −0 and sqrt(−0) = −0.
        V mag = V.Sqrt(V.Negate(a3));
        V angle = Atan2(V.Sqrt(V.Negate(q)), mb2) * inv3;
        SinCos(angle, out V sn, out V cs);

        V root3 = V.Splat(Root3);
        V r0 = c2d3 + (two * mag) * cs;
        V r1 = c2d3 - mag * (cs + root3 * sn);
        V r2 = c2d3 - mag * (cs - root3 * sn);

        // The min/max network of the C source, with x86 tie/NaN semantics.
        V lo = V.MinX86(r0, r1);
        V hi = V.MaxX86(r0, r1);
        V smallest = V.MinX86(lo, r2);
        V rest = V.MaxX86(lo, r2);
        V middle = V.MinX86(hi, rest);
        V largest = V.MaxX86(hi, rest);

        e0 = largest * m;
        e1 = middle * m;
        e2 = smallest * m;
    }

    /// <summary>
    /// atan2_256_ps, FMA-free. Not a correct atan2 at every corner: the x == 0 and y == 0 tests look at the
    /// octant-swapped operands, so atan2_ff(y &gt; 0, 0) = 0. Copied on purpose.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static V Atan2<V>(V y, V x) where V : struct, ILanes<V>
    {
        V zero = V.Splat(0f);
        V signX = V.SignBit(x);
        V signY = V.SignBit(y);
        V x0 = V.Abs(x);
        V y0 = V.Abs(y);

        V q = V.SelectBySign(signX, V.Splat(-2.0f), zero);
        V swap = V.GreaterThan(y0, x0);
        V xs = V.Select(swap, y0, x0);
        V ys = V.Select(swap, V.Negate(x0), y0);
        q = q + V.Select(swap, V.Splat(One), zero);

        V s = ys / xs;
        V t = s * s;
        V u = V.Splat(AtanC0);
        u = t * u + V.Splat(AtanC1);
        u = t * u + V.Splat(AtanC2);
        u = t * u + V.Splat(AtanC3);
        u = t * u + V.Splat(AtanC4);
        u = t * u + V.Splat(AtanC5);
        u = t * u + V.Splat(AtanC6);
        u = t * u + V.Splat(AtanC7);
        t = (t * s) * u + s;
        t = q * V.Splat(HalfPi) + t;
        t = V.Xor(t, signX);

        t = V.Select(V.EqualTo(xs, zero), V.Splat(HalfPi), t);
        V yZero = V.SelectBySign(signX, V.Splat(Pi), zero);
        t = V.Select(V.EqualTo(ys, zero), yZero, t);
        return V.Xor(t, signY);
    }

    /// <summary>
    /// sincos256_ps (cephes): both polynomials are evaluated and combined by masks with a subtraction and
    /// an addition. That differs from simply picking one only for −0 or infinite polynomial values, which the
    /// bounded, sign-stripped argument here never produces; it is reproduced literally all the same.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SinCos<V>(V x, out V sin, out V cos) where V : struct, ILanes<V>
    {
        V signSin = V.SignBit(x);
        V ax = V.Abs(x);
        V.CephesOctant(ax * V.Splat(FourOverPi), out V y, out V polyMask, out V sinSwap, out V cosSign);

        // Extended-precision reduction: ((|x| − y·DP1) − y·DP2) − y·DP3 with negated constants.
        V r = ((ax + y * V.Splat(MinusDp1)) + y * V.Splat(MinusDp2)) + y * V.Splat(MinusDp3);
        signSin = V.Xor(signSin, sinSwap);

        V z = r * r;
        V yc = V.Splat(CosP0) * z;
        yc = yc + V.Splat(CosP1);
        yc = yc * z;
        yc = yc + V.Splat(CosP2);
        yc = yc * z;
        yc = yc * z;
        yc = yc - z * V.Splat(Half);
        yc = yc + V.Splat(One);

        V ys = V.Splat(SinP0) * z;
        ys = ys + V.Splat(SinP1);
        ys = ys * z;
        ys = ys + V.Splat(SinP2);
        ys = ys * z;
        ys = ys * r;
        ys = ys + r;

        V ysin2 = V.And(polyMask, ys);
        V ysin1 = V.AndNot(polyMask, yc);
        ys = ys - ysin2;
        yc = yc - ysin1;
        sin = V.Xor(ysin1 + ysin2, signSin);
        cos = V.Xor(yc + ys, cosSign);
    }
}
