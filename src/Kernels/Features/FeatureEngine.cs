using System.Buffers;
using System.Runtime.Intrinsics;
using ChunkSeg.Kernels.Eigen;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.Kernels.Features;

/// <summary>Receives one feature image (over the whole block) of entry <paramref name="entry"/>, eigenvalue/component <paramref name="component"/>.</summary>
public delegate void FeatureImageSink(int entry, int component, ReadOnlySpan<float> image);

/// <summary>
/// Computes ilastik's feature images on one float32 block of one input channel, exactly as ilastik's
/// release builds do (fastfilters semantics, ILASTIK_RECIPE §3):
/// <code>
///   I ──G(p, w 3.5)──▶ P ──x pass──▶ X[σ, ox] ──y pass──▶ XY[σ, ox, oy] ──z pass──▶ D[σ, oz, oy, ox]
///        pre-smoothing        (cached per scale: every feature of a scale shares these images)
///
///   GS  = D000          LoG = (D002 + D020) + D200        GGM = sqrt((D001² + D010²) + D100²)
///   DoG = D000(s') − D000(0.66 s')                        HoGE = eig(D002, D011, D101, D020, D110, D200)
///   STE = eig(G_s'(g_a·g_b)), g = (D001, D010, D100) at 0.5 s'
/// </code>
/// Every pass mirrors at the block's own borders (reflect-101). With the halo of
/// <see cref="FeatureSet.RequiredHalo"/> those mirrors never reach the block's core, and at the volume
/// border the block border is the volume border: the core equals the whole-volume result bit for bit.
/// Images are emitted one at a time to a sink, so no consumer needs the whole feature matrix at once.
/// </summary>
public sealed class FeatureEngine
{
    private const double PresmoothWindow = 3.5, FilterWindow = 2.0;

    private readonly FeatureSet _set;
    private readonly long _volumeZ;
    private readonly int _maxThreads;

    /// <param name="volumeZ">z extent of the whole volume (decides 2D fallbacks, as in ilastik), not of the block.</param>
    /// <param name="maxThreads">Threads for each convolution pass (1 when chunks already run in parallel).</param>
    public FeatureEngine(FeatureSet set, long volumeZ, int maxThreads = 1)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(volumeZ);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
        _set = set;
        _volumeZ = volumeZ;
        _maxThreads = maxThreads;
    }

    public FeatureSet Set => _set;

    /// <summary>
    /// Upper bound of <see cref="PeakScratchBuffers"/> for any feature set (36 for ilastik's full table):
    /// what the chunk planner budgets per voxel of a block.
    /// </summary>
    public const int MaxScratchBuffers = 40;

    /// <summary>
    /// Most block-sized float32 buffers the last <see cref="Compute"/> held at once: its peak scratch memory
    /// is this × block voxels × 4 bytes (the feature matrix itself is never materialised here).
    /// </summary>
    public int PeakScratchBuffers { get; private set; }

    /// <summary>Computes every feature image of the set for one block of shape (sz, sy, sx).</summary>
    public void Compute(ReadOnlySpan<float> block, int sz, int sy, int sx, FeatureImageSink sink)
    {
        int n = checked(sz * sy * sx);
        if (block.Length < n) throw new ArgumentException($"block holds {block.Length} values; shape {sz}x{sy}x{sx} needs {n}");
        using var pool = new ScratchPool(n);

        // Entries sharing a pre-smoothing (same scale and same 2D flag) are computed from one P.
        foreach (var group in _set.Entries.Select((e, i) => (Entry: e, Index: i, Plan: _set.PlanOf(e, _volumeZ)))
                     .GroupBy(x => (x.Plan.Presmooth, x.Plan.Presmooth2D)))
        {
            var presmoothed = pool.Rent();
            var p = group.Key.Presmooth;
            bool flat = group.Key.Presmooth2D || sz == 1;
            Separable(block[..n], presmoothed, sz, sy, sx, flat,
                flat ? null : FirKernel.Gaussian(0, p.Z, PresmoothWindow), FirKernel.Gaussian(0, p.Y, PresmoothWindow), FirKernel.Gaussian(0, p.X, PresmoothWindow), pool);
            var cache = new DerivativeCache(presmoothed, sz, sy, sx, pool, _maxThreads);
            foreach (var (entry, index, plan) in group)
                ComputeEntry(entry, index, plan, cache, pool, sink);
            cache.Release();
            pool.Return(presmoothed);
        }
        PeakScratchBuffers = pool.Peak;
    }

    private void ComputeEntry(FeatureEntry entry, int index, FeaturePlan plan, DerivativeCache cache, ScratchPool pool, FeatureImageSink sink)
    {
        var s = plan.Filter;
        bool flat = plan.Filter2D || cache.Sz == 1;
        switch (entry.Kind)
        {
            case FeatureKind.GaussianSmoothing:
                sink(index, 0, cache.Get(s, flat, 0, 0, 0));
                break;

            case FeatureKind.LaplacianOfGaussian:
            {
                var sum = pool.Rent();
                Elementwise.Add(cache.Get(s, flat, 0, 0, 2), cache.Get(s, flat, 0, 2, 0), sum.AsSpan(0, pool.Length));
                if (!flat) Elementwise.Add(sum.AsSpan(0, pool.Length), cache.Get(s, flat, 2, 0, 0), sum.AsSpan(0, pool.Length));
                sink(index, 0, sum.AsSpan(0, pool.Length));
                pool.Return(sum);
                break;
            }

            case FeatureKind.GaussianGradientMagnitude:
            {
                var magnitude = pool.Rent();
                if (flat) Elementwise.Magnitude(cache.Get(s, flat, 0, 0, 1), cache.Get(s, flat, 0, 1, 0), default, magnitude);
                else Elementwise.Magnitude(cache.Get(s, flat, 0, 0, 1), cache.Get(s, flat, 0, 1, 0), cache.Get(s, flat, 1, 0, 0), magnitude);
                sink(index, 0, magnitude.AsSpan(0, pool.Length));
                pool.Return(magnitude);
                break;
            }

            case FeatureKind.DifferenceOfGaussians:
            {
                var difference = pool.Rent();
                Elementwise.Subtract(cache.Get(s, flat, 0, 0, 0), cache.Get(s * 0.66, flat, 0, 0, 0), difference.AsSpan(0, pool.Length));
                sink(index, 0, difference.AsSpan(0, pool.Length));
                pool.Return(difference);
                break;
            }

            case FeatureKind.HessianOfGaussianEigenvalues:
                if (flat)
                    Eigen2(cache.GetArray(s, flat, 0, 0, 2), cache.GetArray(s, flat, 0, 1, 1), cache.GetArray(s, flat, 0, 2, 0), index, pool, sink);
                else
                    Eigen3(cache.GetArray(s, flat, 2, 0, 0), cache.GetArray(s, flat, 1, 1, 0), cache.GetArray(s, flat, 1, 0, 1),
                           cache.GetArray(s, flat, 0, 2, 0), cache.GetArray(s, flat, 0, 1, 1), cache.GetArray(s, flat, 0, 0, 2), index, pool, sink);
                break;

            case FeatureKind.StructureTensorEigenvalues:
                StructureTensor(s, flat, index, cache, pool, sink);
                break;
        }
    }

    /// <summary>
    /// Gradient at 0.5·s', products in float32, each smoothed at s' (fastfilters semantics; swapped with
    /// <see cref="FeatureSet.VigraStructureTensor"/>), eigenvalues.
    /// </summary>
    private void StructureTensor(Sigma3 s, bool flat, int index, DerivativeCache cache, ScratchPool pool, FeatureImageSink sink)
    {
        var (gradientFactor, smoothingFactor) = _set.StructureTensorScales;
        var gradientSigma = s * gradientFactor;
        var smoothing = s * smoothingFactor;
        int n = pool.Length;
        var gx = cache.GetArray(gradientSigma, flat, 0, 0, 1);
        var gy = cache.GetArray(gradientSigma, flat, 0, 1, 0);
        var (smoothZ, smoothY, smoothX) = (flat ? null : FirKernel.Gaussian(0, smoothing.Z, FilterWindow), FirKernel.Gaussian(0, smoothing.Y, FilterWindow), FirKernel.Gaussian(0, smoothing.X, FilterWindow));
        float[] Smoothed(float[] a, float[] b)
        {
            var product = pool.Rent();
            Elementwise.Multiply(a.AsSpan(0, n), b.AsSpan(0, n), product.AsSpan(0, n));
            var result = pool.Rent();
            Separable(product, result, cache.Sz, cache.Sy, cache.Sx, flat, smoothZ, smoothY, smoothX, pool);
            pool.Return(product);
            return result;
        }

        if (flat)
        {
            var xx = Smoothed(gx, gx); var xy = Smoothed(gx, gy); var yy = Smoothed(gy, gy);
            Eigen2(xx, xy, yy, index, pool, sink);
            pool.Return(xx); pool.Return(xy); pool.Return(yy);
            return;
        }
        var gz = cache.GetArray(gradientSigma, flat, 1, 0, 0);
        var tzz = Smoothed(gz, gz); var tyz = Smoothed(gy, gz); var txz = Smoothed(gx, gz);
        var tyy = Smoothed(gy, gy); var txy = Smoothed(gx, gy); var txx = Smoothed(gx, gx);
        Eigen3(tzz, tyz, txz, tyy, txy, txx, index, pool, sink);
        foreach (var t in new[] { tzz, tyz, txz, tyy, txy, txx }) pool.Return(t);
    }

    private void Eigen2(float[] a, float[] b, float[] c, int index, ScratchPool pool, FeatureImageSink sink)
    {
        int n = pool.Length;
        var ev0 = pool.Rent(); var ev1 = pool.Rent();
        ForRanges(n, (start, length) => SymmetricEigen.Eigenvalues2(a.AsSpan(start, length), b.AsSpan(start, length), c.AsSpan(start, length),
            ev0.AsSpan(start, length), ev1.AsSpan(start, length)));
        sink(index, 0, ev0.AsSpan(0, n));
        sink(index, 1, ev1.AsSpan(0, n));
        pool.Return(ev0); pool.Return(ev1);
    }

    /// <summary>Eigenvalues of the tensor passed as fastfilters does: (a00, a01, a02, a11, a12, a22) = (zz, yz, xz, yy, xy, xx).</summary>
    private void Eigen3(float[] zz, float[] yz, float[] xz, float[] yy, float[] xy, float[] xx, int index, ScratchPool pool, FeatureImageSink sink)
    {
        int n = pool.Length;
        var ev0 = pool.Rent(); var ev1 = pool.Rent(); var ev2 = pool.Rent();
        var t = new[] { zz, yz, xz, yy, xy, xx };
        ForRanges(n, (start, length) => SymmetricEigen.Eigenvalues3(t[0].AsSpan(start, length), t[1].AsSpan(start, length), t[2].AsSpan(start, length),
            t[3].AsSpan(start, length), t[4].AsSpan(start, length), t[5].AsSpan(start, length),
            ev0.AsSpan(start, length), ev1.AsSpan(start, length), ev2.AsSpan(start, length)));
        sink(index, 0, ev0.AsSpan(0, n));
        sink(index, 1, ev1.AsSpan(0, n));
        sink(index, 2, ev2.AsSpan(0, n));
        pool.Return(ev0); pool.Return(ev1); pool.Return(ev2);
    }

    /// <summary>
    /// Runs <paramref name="body"/> over [0, n) in contiguous ranges on up to maxThreads threads. Only for
    /// element-wise work (eigenvalues): each element's result is independent of the split, so the bits
    /// are the same for any thread count.
    /// </summary>
    private void ForRanges(int n, Action<int, int> body)
    {
        const int MinRange = 1 << 14;
        int parts = Math.Min(_maxThreads, Math.Max(1, n / MinRange));
        if (parts == 1) { body(0, n); return; }
        int step = (n + parts - 1) / parts;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts },
            p => body(p * step, Math.Min(step, n - p * step)));
    }

    /// <summary>x, then y, then (unless <paramref name="flat"/>) z pass; flat blocks of one slice skip z.</summary>
    private void Separable(ReadOnlySpan<float> src, Span<float> dst, int sz, int sy, int sx, bool flat,
        FirKernel? kz, FirKernel ky, FirKernel kx, ScratchPool pool)
    {
        int n = sz * sy * sx;
        var tmp = pool.Rent();
        SeparableConvolution.Apply(src[..n], tmp.AsSpan(0, n), sz, sy, sx, 2, kx, _maxThreads);
        if (flat || sz == 1 || kz is null)
        {
            SeparableConvolution.Apply(tmp.AsSpan(0, n), dst[..n], sz, sy, sx, 1, ky, _maxThreads);
        }
        else
        {
            var tmp2 = pool.Rent();
            SeparableConvolution.Apply(tmp.AsSpan(0, n), tmp2.AsSpan(0, n), sz, sy, sx, 1, ky, _maxThreads);
            SeparableConvolution.Apply(tmp2.AsSpan(0, n), dst[..n], sz, sy, sx, 0, kz, _maxThreads);
            pool.Return(tmp2);
        }
        pool.Return(tmp);
    }

    /// <summary>
    /// Derivative images of one pre-smoothed block: order ox along x, oy along y, oz along z, all at one
    /// sigma (order-0 kernels of the same sigma on the other axes). The x-pass and xy-pass results are
    /// kept, so e.g. the six Hessian images cost 3 + 6 + 6 passes instead of 18.
    /// </summary>
    private sealed class DerivativeCache(float[] source, int sz, int sy, int sx, ScratchPool pool, int maxThreads)
    {
        private readonly Dictionary<(double SigmaX, int Ox), float[]> _x = new();
        private readonly Dictionary<(double SigmaX, double SigmaY, int Ox, int Oy), float[]> _xy = new();
        private readonly Dictionary<(Sigma3 Sigma, bool Flat, int Oz, int Oy, int Ox), float[]> _full = new();

        public int Sz => sz;
        public int Sy => sy;
        public int Sx => sx;

        public ReadOnlySpan<float> Get(Sigma3 sigma, bool flat, int oz, int oy, int ox) =>
            GetArray(sigma, flat, oz, oy, ox).AsSpan(0, sz * sy * sx);

        /// <summary>The pooled buffer holding the image (its first sz·sy·sx values); owned by the cache.</summary>
        public float[] GetArray(Sigma3 sigma, bool flat, int oz, int oy, int ox)
        {
            int n = sz * sy * sx;
            flat |= sz == 1;
            if (flat) oz = 0;
            if (_full.TryGetValue((sigma, flat, oz, oy, ox), out var done)) return done;

            if (!_x.TryGetValue((sigma.X, ox), out var x))
            {
                x = pool.Rent();
                SeparableConvolution.Apply(source.AsSpan(0, n), x.AsSpan(0, n), sz, sy, sx, 2, FirKernel.Gaussian(ox, sigma.X, FilterWindow), maxThreads);
                _x[(sigma.X, ox)] = x;
            }
            if (!_xy.TryGetValue((sigma.X, sigma.Y, ox, oy), out var xy))
            {
                xy = pool.Rent();
                SeparableConvolution.Apply(x.AsSpan(0, n), xy.AsSpan(0, n), sz, sy, sx, 1, FirKernel.Gaussian(oy, sigma.Y, FilterWindow), maxThreads);
                _xy[(sigma.X, sigma.Y, ox, oy)] = xy;
            }
            if (flat) return xy;

            var full = pool.Rent();
            SeparableConvolution.Apply(xy.AsSpan(0, n), full.AsSpan(0, n), sz, sy, sx, 0, FirKernel.Gaussian(oz, sigma.Z, FilterWindow), maxThreads);
            _full[(sigma, flat, oz, oy, ox)] = full;
            return full;
        }

        public void Release()
        {
            foreach (var b in _x.Values.Concat(_xy.Values).Concat(_full.Values)) pool.Return(b);
            _x.Clear(); _xy.Clear(); _full.Clear();
        }
    }

    /// <summary>Block-sized float buffers from the shared ArrayPool, all returned when the block is done.</summary>
    private sealed class ScratchPool(int length) : IDisposable
    {
        private readonly List<float[]> _rented = new();

        public int Length => length;
        public int Peak { get; private set; }

        public float[] Rent()
        {
            var buffer = ArrayPool<float>.Shared.Rent(length);
            _rented.Add(buffer);
            Peak = Math.Max(Peak, _rented.Count);
            return buffer;
        }

        public void Return(float[] buffer)
        {
            if (_rented.Remove(buffer)) ArrayPool<float>.Shared.Return(buffer);
        }

        public void Dispose()
        {
            foreach (var b in _rented) ArrayPool<float>.Shared.Return(b);
            _rented.Clear();
        }
    }
}

/// <summary>
/// Element-wise float32 arithmetic of the features, each operation rounded separately (no FMA), so the
/// vector body and the scalar tail give the same bits.
/// </summary>
internal static class Elementwise
{
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst)
    {
        int n = Math.Min(Math.Min(a.Length, b.Length), dst.Length), i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            (Vector256.Create(a.Slice(i, 8)) + Vector256.Create(b.Slice(i, 8))).CopyTo(dst.Slice(i, 8));
        for (; i < n; i++) dst[i] = a[i] + b[i];
    }

    public static void Subtract(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst)
    {
        int n = Math.Min(Math.Min(a.Length, b.Length), dst.Length), i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            (Vector256.Create(a.Slice(i, 8)) - Vector256.Create(b.Slice(i, 8))).CopyTo(dst.Slice(i, 8));
        for (; i < n; i++) dst[i] = a[i] - b[i];
    }

    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst)
    {
        int n = Math.Min(Math.Min(a.Length, b.Length), dst.Length), i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            (Vector256.Create(a.Slice(i, 8)) * Vector256.Create(b.Slice(i, 8))).CopyTo(dst.Slice(i, 8));
        for (; i < n; i++) dst[i] = a[i] * b[i];
    }

    /// <summary>sqrt((x² + y²) + z²), or sqrt(x² + y²) when <paramref name="z"/> is empty.</summary>
    public static void Magnitude(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> z, Span<float> dst)
    {
        int n = Math.Min(Math.Min(x.Length, y.Length), dst.Length), i = 0;
        bool has3 = !z.IsEmpty;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
        {
            var vx = Vector256.Create(x.Slice(i, 8));
            var vy = Vector256.Create(y.Slice(i, 8));
            var sum = vx * vx + vy * vy;
            if (has3) { var vz = Vector256.Create(z.Slice(i, 8)); sum += vz * vz; }
            Vector256.Sqrt(sum).CopyTo(dst.Slice(i, 8));
        }
        for (; i < n; i++)
        {
            float sum = x[i] * x[i] + y[i] * y[i];
            if (has3) sum += z[i] * z[i];
            dst[i] = MathF.Sqrt(sum);
        }
    }
}
