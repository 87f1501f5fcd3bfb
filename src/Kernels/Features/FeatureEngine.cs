using ChunkSeg.Contracts.Memory;
using System.Runtime.Intrinsics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Eigen;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.Kernels.Features;

/// <summary>Receives one feature image (over the core box) of entry <paramref name="entry"/>, eigenvalue/component <paramref name="component"/>.</summary>
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
/// <para>
/// Only the core's features are emitted, and each pass computes only what the core needs of it: an image is
/// held over the core grown by the radii of the passes still to come (clipped to the block), so a scale's
/// work shrinks with its own support rather than the largest scale's halo. A pass mirrors at the ends of its
/// input's box, which are either the block's ends (where the whole-block passes mirror too) or further from
/// every computed sample than the kernel reaches; so each sample equals the whole-block computation's.
/// </para>
/// Images are emitted one at a time to a sink, so no consumer needs the whole feature matrix at once.
/// </summary>
public sealed class FeatureEngine : IFeatureEngine
{
    private const double PresmoothWindow = FeatureGeometry.PresmoothWindow, FilterWindow = FeatureGeometry.FilterWindow;

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
    /// Upper bound, per voxel of the block, of the float32 scratch values any feature set holds at once
    /// (<see cref="PeakScratchValues"/> ≤ this × block voxels): what the chunk planner budgets per block voxel.
    /// </summary>
    public const int MaxScratchBuffers = 40;

    /// <summary>
    /// Most float32 scratch values the last <see cref="Compute(ReadOnlySpan{float}, int, int, int, Box3, FeatureImageSink)"/>
    /// held at once: its peak scratch memory is 4 bytes × this (the feature matrix itself is never materialised here).
    /// </summary>
    public long PeakScratchValues { get; private set; }

    /// <summary>Computes every feature image of the set over a whole block of shape (sz, sy, sx).</summary>
    public void Compute(ReadOnlySpan<float> block, int sz, int sy, int sx, FeatureImageSink sink) =>
        Compute(block, sz, sy, sx, new Box3(Long3.Zero, new Long3(sz, sy, sx)), sink);

    /// <summary>
    /// Computes every feature image of the set over <paramref name="core"/>, a box of the block of shape (sz, sy, sx)
    /// in block coordinates; the sink receives images of core.VoxelCount values in C order.
    /// </summary>
    public void Compute(ReadOnlySpan<float> block, int sz, int sy, int sx, Box3 core, FeatureImageSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var blockBox = new Box3(Long3.Zero, new Long3(sz, sy, sx));
        int n = checked(sz * sy * sx);
        if (block.Length < n) throw new ArgumentException($"block holds {block.Length} values; shape {sz}x{sy}x{sx} needs {n}");
        if (core.IsEmpty || core.Intersect(blockBox) != core)
            throw new ArgumentOutOfRangeException(nameof(core), $"core {core} must be a non-empty box inside the block {blockBox}");
        using var pool = new ScratchPool();

        // Entries sharing a pre-smoothing (same scale and same 2D flag) are computed from one P.
        foreach (var group in FeatureGeometry.Groups(_set, _volumeZ))
        {
            // What this scale's features read of each derivative sigma: the core, grown for the structure tensor's smoothing.
            var margins = FeatureGeometry.Margins(_set, group, sz == 1);
            var p = group.Presmooth;
            bool flat = group.Presmooth2D || sz == 1;
            var (kz, ky, kx) = (flat ? null : FirKernel.Gaussian(0, p.Z, PresmoothWindow), FirKernel.Gaussian(0, p.Y, PresmoothWindow), FirKernel.Gaussian(0, p.X, PresmoothWindow));
            var presmoothed = Separable(block[..n], blockBox, FeatureGeometry.PresmoothedBox(margins, core, blockBox), flat, kz, ky, kx, pool);
            var cache = new DerivativeCache(this, presmoothed, core, sz == 1, margins, pool);
            foreach (var (entry, index, plan) in group.Members)
                ComputeEntry(entry, index, plan, cache, pool, sink);
            cache.Release();
            pool.Return(presmoothed);
        }
        PeakScratchValues = pool.Peak;
    }

    private void ComputeEntry(FeatureEntry entry, int index, FeaturePlan plan, DerivativeCache cache, ScratchPool pool, FeatureImageSink sink)
    {
        var s = plan.Filter;
        bool flat = plan.Filter2D || cache.SingleSlice;
        int n = cache.CoreLength;
        switch (entry.Kind)
        {
            case FeatureKind.GaussianSmoothing:
                sink(index, 0, cache.AtCore(s, flat, 0, 0, 0));
                break;

            case FeatureKind.LaplacianOfGaussian:
            {
                var sum = pool.Rent(n);
                Elementwise.Add(cache.AtCore(s, flat, 0, 0, 2), cache.AtCore(s, flat, 0, 2, 0), sum.AsSpan(0, n));
                if (!flat) Elementwise.Add(sum.AsSpan(0, n), cache.AtCore(s, flat, 2, 0, 0), sum.AsSpan(0, n));
                sink(index, 0, sum.AsSpan(0, n));
                pool.Return(sum);
                break;
            }

            case FeatureKind.GaussianGradientMagnitude:
            {
                var magnitude = pool.Rent(n);
                if (flat) Elementwise.Magnitude(cache.AtCore(s, flat, 0, 0, 1), cache.AtCore(s, flat, 0, 1, 0), default, magnitude.AsSpan(0, n));
                else Elementwise.Magnitude(cache.AtCore(s, flat, 0, 0, 1), cache.AtCore(s, flat, 0, 1, 0), cache.AtCore(s, flat, 1, 0, 0), magnitude.AsSpan(0, n));
                sink(index, 0, magnitude.AsSpan(0, n));
                pool.Return(magnitude);
                break;
            }

            case FeatureKind.DifferenceOfGaussians:
            {
                var difference = pool.Rent(n);
                Elementwise.Subtract(cache.AtCore(s, flat, 0, 0, 0), cache.AtCore(s * 0.66, flat, 0, 0, 0), difference.AsSpan(0, n));
                sink(index, 0, difference.AsSpan(0, n));
                pool.Return(difference);
                break;
            }

            case FeatureKind.HessianOfGaussianEigenvalues:
                if (flat)
                    Eigen2(cache.AtCoreArray(s, flat, 0, 0, 2), cache.AtCoreArray(s, flat, 0, 1, 1), cache.AtCoreArray(s, flat, 0, 2, 0), n, index, pool, sink);
                else
                    Eigen3(cache.AtCoreArray(s, flat, 2, 0, 0), cache.AtCoreArray(s, flat, 1, 1, 0), cache.AtCoreArray(s, flat, 1, 0, 1),
                           cache.AtCoreArray(s, flat, 0, 2, 0), cache.AtCoreArray(s, flat, 0, 1, 1), cache.AtCoreArray(s, flat, 0, 0, 2), n, index, pool, sink);
                break;

            case FeatureKind.StructureTensorEigenvalues:
                StructureTensor(s, flat, index, cache, pool, sink);
                break;
        }
    }

    /// <summary>
    /// Gradient at 0.5·s', products in float32, each smoothed at s' (fastfilters semantics; swapped with
    /// <see cref="FeatureSet.VigraStructureTensor"/>), eigenvalues. The gradient and the products are held over the
    /// core grown by the smoothing's radius; the smoothing shrinks them to the core.
    /// </summary>
    private void StructureTensor(Sigma3 s, bool flat, int index, DerivativeCache cache, ScratchPool pool, FeatureImageSink sink)
    {
        var (gradientFactor, smoothingFactor) = _set.StructureTensorScales;
        var gradientSigma = s * gradientFactor;
        var smoothing = s * smoothingFactor;
        var gx = cache.Get(gradientSigma, flat, 0, 0, 1);
        var gy = cache.Get(gradientSigma, flat, 0, 1, 0);
        var (smoothZ, smoothY, smoothX) = (flat ? null : FirKernel.Gaussian(0, smoothing.Z, FilterWindow), FirKernel.Gaussian(0, smoothing.Y, FilterWindow), FirKernel.Gaussian(0, smoothing.X, FilterWindow));
        int n = cache.CoreLength;
        float[] Smoothed(Image a, Image b)
        {
            var product = new Image(pool.Rent(a.Length), a.Box);
            Elementwise.Multiply(a.Span, b.Span, product.Span);
            var result = Separable(product.Span, product.Box, cache.Core, flat, smoothZ, smoothY, smoothX, pool);
            pool.Return(product);
            return result.Buffer;
        }

        if (flat)
        {
            var xx = Smoothed(gx, gx); var xy = Smoothed(gx, gy); var yy = Smoothed(gy, gy);
            Eigen2(xx, xy, yy, n, index, pool, sink);
            pool.Return(xx); pool.Return(xy); pool.Return(yy);
            return;
        }
        var gz = cache.Get(gradientSigma, flat, 1, 0, 0);
        var tzz = Smoothed(gz, gz); var tyz = Smoothed(gy, gz); var txz = Smoothed(gx, gz);
        var tyy = Smoothed(gy, gy); var txy = Smoothed(gx, gy); var txx = Smoothed(gx, gx);
        Eigen3(tzz, tyz, txz, tyy, txy, txx, n, index, pool, sink);
        foreach (var t in new[] { tzz, tyz, txz, tyy, txy, txx }) pool.Return(t);
    }

    private void Eigen2(float[] a, float[] b, float[] c, int n, int index, ScratchPool pool, FeatureImageSink sink)
    {
        var ev0 = pool.Rent(n); var ev1 = pool.Rent(n);
        ForRanges(n, (start, length) => SymmetricEigen.Eigenvalues2(a.AsSpan(start, length), b.AsSpan(start, length), c.AsSpan(start, length),
            ev0.AsSpan(start, length), ev1.AsSpan(start, length)));
        sink(index, 0, ev0.AsSpan(0, n));
        sink(index, 1, ev1.AsSpan(0, n));
        pool.Return(ev0); pool.Return(ev1);
    }

    /// <summary>Eigenvalues of the tensor passed as fastfilters does: (a00, a01, a02, a11, a12, a22) = (zz, yz, xz, yy, xy, xx).</summary>
    private void Eigen3(float[] zz, float[] yz, float[] xz, float[] yy, float[] xy, float[] xx, int n, int index, ScratchPool pool, FeatureImageSink sink)
    {
        var ev0 = pool.Rent(n); var ev1 = pool.Rent(n); var ev2 = pool.Rent(n);
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

    /// <summary>
    /// The x, y, then (unless <paramref name="flat"/>: a 2D filter or a one-slice block) z pass of <paramref name="src"/> (held over
    /// <paramref name="srcBox"/>), computed over <paramref name="target"/> only: the x pass over the target grown by
    /// the y and z radii, the y pass over it grown by the z radius, the z pass over the target.
    /// </summary>
    private Image Separable(ReadOnlySpan<float> src, Box3 srcBox, Box3 target, bool flat, FirKernel? kz, FirKernel ky, FirKernel kx, ScratchPool pool)
    {
        flat |= kz is null;
        var (xyBox, xBox) = FeatureGeometry.PassBoxes(target, srcBox, flat ? null : kz, ky);
        var x = Pass(src, srcBox, xBox, 2, kx, pool);
        var xy = Pass(x.Span, x.Box, xyBox, 1, ky, pool);
        pool.Return(x);
        if (flat) return xy;
        var full = Pass(xy.Span, xy.Box, target, 0, kz!, pool);
        pool.Return(xy);
        return full;
    }

    /// <summary>One pass along <paramref name="axis"/> of an image held over <paramref name="srcBox"/>, computed over <paramref name="box"/>.</summary>
    private Image Pass(ReadOnlySpan<float> src, Box3 srcBox, Box3 box, int axis, FirKernel kernel, ScratchPool pool)
    {
        var result = new Image(pool.Rent(checked((int)box.VoxelCount)), box);
        SeparableConvolution.Apply(src[..checked((int)srcBox.VoxelCount)], (int)srcBox.Size.Z, (int)srcBox.Size.Y, (int)srcBox.Size.X, result.Span,
            new Box3(box.Start - srcBox.Start, box.Size), axis, kernel, _maxThreads, SeparableConvolution.BestWidth);
        return result;
    }

    /// <summary>A scratch image: its values over <see cref="Box"/> (block coordinates) in C order.</summary>
    private readonly record struct Image(float[] Buffer, Box3 Box)
    {
        public int Length => (int)Box.VoxelCount;
        public Span<float> Span => Buffer.AsSpan(0, Length);
    }

    /// <summary>
    /// Derivative images of one pre-smoothed image: order ox along x, oy along y, oz along z, all at one sigma
    /// (order-0 kernels of the same sigma on the other axes), each over the core grown by the margin its readers
    /// planned for that sigma. The x-pass and xy-pass results are kept, so e.g. the six Hessian images cost
    /// 3 + 6 + 6 passes instead of 18.
    /// </summary>
    private sealed class DerivativeCache(FeatureEngine engine, Image source, Box3 core, bool singleSlice, Dictionary<(Sigma3 Sigma, bool Flat), Halo> margins, ScratchPool pool)
    {
        private readonly Dictionary<(double SigmaX, int Ox, Box3 Box), Image> _x = new();
        private readonly Dictionary<(double SigmaX, double SigmaY, int Ox, int Oy, Box3 Box), Image> _xy = new();
        private readonly Dictionary<(Sigma3 Sigma, bool Flat, int Oz, int Oy, int Ox), Image> _full = new();
        private readonly Dictionary<(Sigma3 Sigma, bool Flat, int Oz, int Oy, int Ox), float[]> _cropped = new();

        public Box3 Core => core;
        public int CoreLength => (int)core.VoxelCount;

        /// <summary>The block is one slice: every filter is 2D.</summary>
        public bool SingleSlice => singleSlice;

        /// <summary>The image over the core (cropped from the cached image when a reader needed it over more).</summary>
        public ReadOnlySpan<float> AtCore(Sigma3 sigma, bool flat, int oz, int oy, int ox) => AtCoreArray(sigma, flat, oz, oy, ox).AsSpan(0, CoreLength);

        public float[] AtCoreArray(Sigma3 sigma, bool flat, int oz, int oy, int ox)
        {
            var image = Get(sigma, flat, oz, oy, ox);
            if (image.Box == core) return image.Buffer;
            var key = (sigma, flat || singleSlice, flat || singleSlice ? 0 : oz, oy, ox);
            if (_cropped.TryGetValue(key, out var done)) return done;
            var crop = pool.Rent(CoreLength);
            Crop(image, core, crop);
            _cropped[key] = crop;
            return crop;
        }

        public Image Get(Sigma3 sigma, bool flat, int oz, int oy, int ox)
        {
            flat |= singleSlice;
            if (flat) oz = 0;
            if (_full.TryGetValue((sigma, flat, oz, oy, ox), out var done)) return done;
            if (!margins.TryGetValue((sigma, flat), out var margin))
                throw new InvalidOperationException($"derivative sigma {sigma} (flat {flat}) was not planned for this scale");

            var box = core.Grow(margin, source.Box);
            var kz = flat ? null : FirKernel.Gaussian(oz, sigma.Z, FilterWindow);
            var ky = FirKernel.Gaussian(oy, sigma.Y, FilterWindow);
            var (xyBox, xBox) = FeatureGeometry.PassBoxes(box, source.Box, kz, ky);
            if (!_x.TryGetValue((sigma.X, ox, xBox), out var x))
                _x[(sigma.X, ox, xBox)] = x = engine.Pass(source.Span, source.Box, xBox, 2, FirKernel.Gaussian(ox, sigma.X, FilterWindow), pool);
            if (!_xy.TryGetValue((sigma.X, sigma.Y, ox, oy, xyBox), out var xy))
                _xy[(sigma.X, sigma.Y, ox, oy, xyBox)] = xy = engine.Pass(x.Span, x.Box, xyBox, 1, ky, pool);
            if (flat) return _full[(sigma, flat, oz, oy, ox)] = xy;

            var full = engine.Pass(xy.Span, xy.Box, box, 0, kz!, pool);
            _full[(sigma, flat, oz, oy, ox)] = full;
            return full;
        }

        public void Release()
        {
            foreach (var image in _x.Values.Concat(_xy.Values).Concat(_full.Values)) pool.Return(image);
            foreach (var crop in _cropped.Values) pool.Return(crop);
            _x.Clear(); _xy.Clear(); _full.Clear(); _cropped.Clear();
        }

        private static void Crop(Image image, Box3 box, float[] destination)
        {
            var offset = box.Start - image.Box.Start;
            int rowLength = (int)box.Size.X, target = 0;
            for (long z = 0; z < box.Size.Z; z++)
            for (long y = 0; y < box.Size.Y; y++, target += rowLength)
                image.Span.Slice((int)(((offset.Z + z) * image.Box.Size.Y + offset.Y + y) * image.Box.Size.X + offset.X), rowLength)
                    .CopyTo(destination.AsSpan(target, rowLength));
        }
    }

    /// <summary>Scratch float buffers from the chunk buffer pool, all returned when the block is done; counts the values held.</summary>
    private sealed class ScratchPool : IDisposable
    {
        private readonly Dictionary<float[], int> _rented = new(ReferenceEqualityComparer.Instance);
        private long _held;

        public long Peak { get; private set; }

        public float[] Rent(int length)
        {
            var buffer = ChunkBufferPool<float>.Shared.Rent(length);
            _rented.Add(buffer, length);
            _held += length;
            Peak = Math.Max(Peak, _held);
            return buffer;
        }

        public void Return(Image image) => Return(image.Buffer);

        public void Return(float[] buffer)
        {
            if (!_rented.Remove(buffer, out int length)) return;
            _held -= length;
            ChunkBufferPool<float>.Shared.Return(buffer);
        }

        public void Dispose()
        {
            foreach (var b in _rented.Keys) ChunkBufferPool<float>.Shared.Return(b);
            _rented.Clear();
            _held = 0;
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
