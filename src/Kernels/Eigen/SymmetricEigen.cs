// Eigenvalues of symmetric 2x2 and 3x3 tensors, bit-identical to ilastik (fastfilters' float32 AVX code).
//
// ilastik's StructureTensorEigenvalues and HessianOfGaussianEigenvalues features are computed by
// fastfilters (ILASTIK_RECIPE §1, §3.6). Its eigenvalues are not those of an accurate solver: they come
// from a closed form evaluated in float32 in one fixed association, with a home-made atan2 and a cephes
// sincos. The random forest downstream compares features against thresholds, so an eigenvalue that is
// "better" by one ulp can flip a vote (§3.6: a double solver changes ≈0.1% of 3D voxels). We therefore
// reproduce the arithmetic operation by operation:
//
//   2x2  t0 = (xx+yy)·½   t1 = ((xx−yy)·½)²   d = √(t1 + xy·xy)   ev0 = t0+d, ev1 = t0−d (swapped on ties)
//
//   3x3  (a00,a01,a02,a11,a12,a22) = (zz,yz,xz,yy,xy,xx)      the order matters for rounding
//        m = max|aij| (1 if 0);  bij = aij / m                   scale: the cubic cannot overflow
//        characteristic cubic  λ³ − c2 λ² + c1 λ − c0
//        c0 = det B, c1 = sum of principal 2x2 minors, c2 = trace B
//        depressed: a3 = min((c1 − c2²/3)/3, 0), mb2 = ½(c0 + c2/3 (2(c2/3)² − c1)), q = min(mb2² + a3³, 0)
//        trigonometric roots: ang = atan2_ff(√−q, mb2)/3
//                r0 = c2/3 + 2√−a3 cos ang
//                r1 = c2/3 − √−a3 (cos ang + √3 sin ang)
//                r2 = c2/3 − √−a3 (cos ang − √3 sin ang)
//        sorted by a min/max network, multiplied back by m
//
// Every lane operation (min/max returning the second operand on NaN and ties, sign-bit negation,
// blendv on sign bits, the cephes octant arithmetic) has fastfilters' x86 meaning; see Lanes.cs.
// No fused multiply-add is used anywhere (RyuJIT never contracts a·b+c on its own).
//
// Faithful includes fastfilters' inaccuracies. Near-repeated eigenvalues lose ~√ε_float of the
// largest one (the cubic's coefficients cancel). And atan2_ff(y > 0, 0) returns 0 rather than π/2, so
// a tensor whose float32 mb2 rounds to exactly 0 (evenly spaced eigenvalues, e.g. diag(4, 2, 0)) gets
// a spurious double eigenvalue: (4.31, 0.845, 0.845). ilastik's features contain the same values.
//
// One deliberate difference: fastfilters sends the last len mod 8 elements of each call through a
// scalar loop in double/libm arithmetic. We run the float32 formula on every element, so a voxel's
// eigenvalues do not depend on where its array, row or chunk happens to end (chunked == whole). Only
// those ≤ 7 trailing voxels of each fastfilters call can differ from ilastik, by about an ulp.
//
//   elements  [0 ........................ 16k) [16k .... 8j) [8j .. n)
//   body       Vector512 (16 lanes, if fast)    Vector256     one lane
//
// All three widths instantiate the same generic formula (EigenEngine over ILanes<T>), so the scalar
// tail, the vector bodies and a run with DOTNET_EnableHWIntrinsic=0 agree bit for bit.

namespace ChunkSeg.Kernels.Eigen;

/// <summary>Eigenvalues of per-element symmetric 2x2 and 3x3 tensors, in ilastik's float32 arithmetic.</summary>
public static class SymmetricEigen
{
    /// <summary>
    /// 2x2: per element i, t0 = (xx+yy)*0.5f; t1 = ((xx-yy)*0.5f)^2; d = sqrt(t1 + xy*xy);
    /// ev0 = t0 + d (max), ev1 = t0 - d (min). float32, no FMA.
    /// </summary>
    /// <param name="xx">Tensor component xx; all three inputs have the same length n.</param>
    /// <param name="xy">Tensor component xy.</param>
    /// <param name="yy">Tensor component yy.</param>
    /// <param name="ev0">Largest eigenvalue (first n elements written); must not overlap an input.</param>
    /// <param name="ev1">Smallest eigenvalue (first n elements written); must not overlap an input.</param>
    public static void Eigenvalues2(ReadOnlySpan<float> xx, ReadOnlySpan<float> xy, ReadOnlySpan<float> yy,
                                    Span<float> ev0, Span<float> ev1)
    {
        Validate2(xx, xy, yy, ev0, ev1);
        EigenEngine.Run2(xx, xy, yy, ev0, ev1, EigenWidth.Auto);
    }

    /// <summary>
    /// 3x3 closed form of ILASTIK_RECIPE 3.6 on (a00,a01,a02,a11,a12,a22) = (zz, yz, xz, yy, xy, xx),
    /// eigenvalues descending ev0 &gt;= ev1 &gt;= ev2.
    /// </summary>
    /// <remarks>All six inputs have the same length n; each output receives its first n elements and
    /// must not overlap any input or another output.</remarks>
    public static void Eigenvalues3(ReadOnlySpan<float> zz, ReadOnlySpan<float> yz, ReadOnlySpan<float> xz,
                                    ReadOnlySpan<float> yy, ReadOnlySpan<float> xy, ReadOnlySpan<float> xx,
                                    Span<float> ev0, Span<float> ev1, Span<float> ev2)
    {
        Validate3(zz, yz, xz, yy, xy, xx, ev0, ev1, ev2);
        EigenEngine.Run3(zz, yz, xz, yy, xy, xx, ev0, ev1, ev2, EigenWidth.Auto);
    }

    /// <summary>Test hook: <see cref="Eigenvalues2"/> restricted to the given lane widths.</summary>
    internal static void Eigenvalues2(ReadOnlySpan<float> xx, ReadOnlySpan<float> xy, ReadOnlySpan<float> yy,
                                      Span<float> ev0, Span<float> ev1, EigenWidth width)
    {
        Validate2(xx, xy, yy, ev0, ev1);
        EigenEngine.Run2(xx, xy, yy, ev0, ev1, width);
    }

    /// <summary>Test hook: <see cref="Eigenvalues3"/> restricted to the given lane widths.</summary>
    internal static void Eigenvalues3(ReadOnlySpan<float> zz, ReadOnlySpan<float> yz, ReadOnlySpan<float> xz,
                                      ReadOnlySpan<float> yy, ReadOnlySpan<float> xy, ReadOnlySpan<float> xx,
                                      Span<float> ev0, Span<float> ev1, Span<float> ev2, EigenWidth width)
    {
        Validate3(zz, yz, xz, yy, xy, xx, ev0, ev1, ev2);
        EigenEngine.Run3(zz, yz, xz, yy, xy, xx, ev0, ev1, ev2, width);
    }

    private static void Validate2(ReadOnlySpan<float> xx, ReadOnlySpan<float> xy, ReadOnlySpan<float> yy,
                                  Span<float> ev0, Span<float> ev1)
    {
        int n = xx.Length;
        if (xy.Length != n || yy.Length != n)
            throw new ArgumentException($"tensor components must have equal lengths; got xx {n}, xy {xy.Length}, yy {yy.Length}");
        RequireOutput(ev0, n, nameof(ev0));
        RequireOutput(ev1, n, nameof(ev1));
        ReadOnlySpan<float> e0 = ev0[..n], e1 = ev1[..n];
        if (e0.Overlaps(e1) || Overlaps(e0, xx, xy, yy) || Overlaps(e1, xx, xy, yy))
            throw new ArgumentException("ev0 and ev1 must not overlap each other or the inputs; compute into separate buffers");
    }

    private static void Validate3(ReadOnlySpan<float> zz, ReadOnlySpan<float> yz, ReadOnlySpan<float> xz,
                                  ReadOnlySpan<float> yy, ReadOnlySpan<float> xy, ReadOnlySpan<float> xx,
                                  Span<float> ev0, Span<float> ev1, Span<float> ev2)
    {
        int n = zz.Length;
        if (yz.Length != n || xz.Length != n || yy.Length != n || xy.Length != n || xx.Length != n)
            throw new ArgumentException("tensor components must have equal lengths; got " +
                $"zz {n}, yz {yz.Length}, xz {xz.Length}, yy {yy.Length}, xy {xy.Length}, xx {xx.Length}");
        RequireOutput(ev0, n, nameof(ev0));
        RequireOutput(ev1, n, nameof(ev1));
        RequireOutput(ev2, n, nameof(ev2));
        ReadOnlySpan<float> e0 = ev0[..n], e1 = ev1[..n], e2 = ev2[..n];
        if (e0.Overlaps(e1) || e0.Overlaps(e2) || e1.Overlaps(e2))
            throw new ArgumentException("ev0, ev1 and ev2 must not overlap each other");
        if (Overlaps(e0, zz, yz, xz) || Overlaps(e0, yy, xy, xx) || Overlaps(e1, zz, yz, xz) ||
            Overlaps(e1, yy, xy, xx) || Overlaps(e2, zz, yz, xz) || Overlaps(e2, yy, xy, xx))
            throw new ArgumentException("an eigenvalue output overlaps a tensor input; compute into separate buffers");
    }

    private static void RequireOutput(Span<float> output, int n, string name)
    {
        if (output.Length < n)
            throw new ArgumentException($"{name} holds {output.Length} elements but the tensor has {n}; pass an output of at least {n}", name);
    }

    private static bool Overlaps(ReadOnlySpan<float> output, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c) =>
        output.Overlaps(a) || output.Overlaps(b) || output.Overlaps(c);
}
