using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Memory;
using System.Runtime.Intrinsics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Eigen;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.Kernels.Features;

/// <summary>Receives one feature image (over the core box) of entry <paramref name="entry"/>, eigenvalue/component <paramref name="component"/>.</summary>
public delegate void FeatureImageSink(int entry, int component, ReadOnlySpan<float> image);

/// <summary>Where the image of entry <paramref name="entry"/>, eigenvalue/component <paramref name="component"/> is to be written (at least the core's voxel count).</summary>
public delegate Memory<float> FeatureImageDestination(int entry, int component);

/// <summary>
/// Computes ilastik's feature images on one float32 block of one input channel, exactly as ilastik's
/// release builds do (fastfilters semantics, ILASTIK_RECIPE §3):
/// <code>
///   I ──G(p, w 3.5)──▶ P ──x pass──▶ X[σ, ox] ──y pass──▶ XY[σ, ox, oy] ──z pass──▶ D[σ, oz, oy, ox]
///        pre-smoothing        (every feature of a scale shares P and its XY images)
///
///   GS  = D000          LoG = (D002 + D020) + D200        GGM = sqrt((D001² + D010²) + D100²)
///   DoG = D000(s') − D000(0.66 s')                        HoGE = eig(D002, D011, D101, D020, D110, D200)
///   STE = eig(G_s'(g_a·g_b)), g = (D001, D010, D100) at 0.5 s'
/// </code>
/// Every pass mirrors at the block's own borders (reflect-101). With the halo of
/// <see cref="FeatureSet.RequiredHalo"/> those mirrors never reach the block's core, and at the volume
/// border the block border is the volume border: the core equals the whole-volume result bit for bit.
/// <para>
/// The passes are fused plane by plane, because a pass over whole images is bound by memory, not arithmetic
/// (measured: every scale cost the same, σ = 0.7 as σ = 10). Per z-plane, the x pass and the y pass run
/// back to back in a plane-sized scratch that stays in cache; only the XY images are written whole, with their
/// planes a cache line further apart than their length. Then per output plane, the z passes read 2R + 1 XY
/// planes and every feature of the plane is finished at once (sums, magnitudes, eigenvalues) while its
/// derivative planes are still in cache; the D images are never written:
/// <code>
///   stage A, per plane z:  P[z] ──x──▶ X plane ──y──▶ XY[z]          (each X plane feeds every y order)
///   stage B, per plane z:  XY[z−R .. z+R] ──z──▶ D planes ──▶ GS, LoG, GGM, DoG, HoGE planes of the core
///   structure tensor:      gradient planes ──▶ products ──x, y──▶ smoothed XY ──z──▶ tensor planes ──▶ eig
/// </code>
/// Each sample is still the one sequence of <see cref="SeparableConvolution"/>, so the bits are those of the
/// pass-by-pass computation (fingerprints recorded from it are tested at every SIMD width).
/// </para>
/// <para>
/// Only the core's features are emitted, and each pass computes only what the core needs of it: an image is
/// held over the core grown by the radii of the passes still to come (clipped to the block), so a scale's
/// work shrinks with its own support rather than the largest scale's halo. A pass mirrors at the ends of its
/// input's box, which are either the block's ends (where the whole-block passes mirror too) or further from
/// every computed sample than the kernel reaches; so each sample equals the whole-block computation's.
/// </para>
/// Images are emitted one at a time to a sink, a scale's in set order once the scale is done, so no consumer needs
/// the whole feature matrix at once.
/// </summary>
public sealed unsafe class FeatureEngine : IFeatureEngine
{
    private const double PresmoothWindow = FeatureGeometry.PresmoothWindow, FilterWindow = FeatureGeometry.FilterWindow;

    private readonly FeatureSet _set;
    private readonly long _volumeZ;
    private readonly int _maxThreads;

    /// <param name="volumeZ">z extent of the whole volume (decides 2D fallbacks, as in ilastik), not of the block.</param>
    /// <param name="maxThreads">Threads for the planes of each stage (1 when chunks already run in parallel).</param>
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
        Run(block, sz, sy, sx, core, destination: null, sink);
    }

    /// <summary>
    /// Computes every feature image of the set over <paramref name="core"/> straight into the memory
    /// <paramref name="destination"/> gives for it (core.VoxelCount values in C order), a scale's images at a time.
    /// </summary>
    public void Compute(ReadOnlySpan<float> block, int sz, int sy, int sx, Box3 core, FeatureImageDestination destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Run(block, sz, sy, sx, core, destination, sink: null);
    }

    private void Run(ReadOnlySpan<float> block, int sz, int sy, int sx, Box3 core, FeatureImageDestination? destination, FeatureImageSink? sink)
    {
        var blockBox = new Box3(Long3.Zero, new Long3(sz, sy, sx));
        int n = checked(sz * sy * sx);
        if (block.Length < n) throw new ArgumentException($"block holds {block.Length} values; shape {sz}x{sy}x{sx} needs {n}");
        if (core.IsEmpty || core.Intersect(blockBox) != core)
            throw new ArgumentOutOfRangeException(nameof(core), $"core {core} must be a non-empty box inside the block {blockBox}");
        using var pool = new ScratchPool();
        bool singleSlice = sz == 1;
        fixed (float* blockData = block)
        {
            var source = new Planes(blockData, blockBox, sy * sx);
            // Entries sharing a pre-smoothing (same scale and same 2D flag) are computed from one P.
            foreach (var group in FeatureGeometry.Groups(_set, _volumeZ))
            {
                // What this scale's features read of each derivative sigma: the core, grown for the structure tensor's smoothing.
                var margins = FeatureGeometry.Margins(_set, group, singleSlice);
                var p = group.Presmooth;
                bool flat = group.Presmooth2D || singleSlice;
                var presmoothed = Smoothed(source, FeatureGeometry.PresmoothedBox(margins, core, blockBox),
                    flat ? null : FirKernel.Gaussian(0, p.Z, PresmoothWindow), FirKernel.Gaussian(0, p.Y, PresmoothWindow),
                    FirKernel.Gaussian(0, p.X, PresmoothWindow), pool);

                var scale = new Scale(this, presmoothed, core, singleSlice, margins, pool, destination);
                scale.Compute(group.Members);
                if (sink is not null)
                    foreach (var (_, index, _) in group.Members)
                        for (int c = 0; c < scale.Outputs[index].Length; c++)
                            sink(index, c, scale.Outputs[index][c].Span[..scale.CoreLength]);
                scale.Release();
                pool.Return(presmoothed);
            }
        }
        PeakScratchValues = pool.Peak;
    }

    /// <summary>The x, y, then (unless <paramref name="kz"/> is null) z pass of <paramref name="source"/> over <paramref name="target"/>, in C order.</summary>
    private Planes Smoothed(Planes source, Box3 target, FirKernel? kz, FirKernel ky, FirKernel kx, ScratchPool pool)
    {
        var (xyBox, xBox) = FeatureGeometry.PassBoxes(target, source.Box, kz, ky);
        var result = pool.RentPlanes(target, padded: false);
        if (kz is null)
        {
            XyStage(source, [new XySpec(kx, ky, xBox, result)], pool);
            return result;
        }
        var xy = pool.RentPlanes(xyBox, padded: true);
        XyStage(source, [new XySpec(kx, ky, xBox, xy)], pool);
        ForPlanes(target.Start.Z, target.Size.Z, 0, pool, (_, z, _) => new DerivativeSource(xy, kz).PlaneAt(z, result.PlaneData(z)));
        pool.Return(xy);
        return result;
    }

    /// <summary>One XY image to compute: the x pass over <paramref name="XBox"/>, then the y pass over the target's box.</summary>
    private readonly record struct XySpec(FirKernel Kx, FirKernel Ky, Box3 XBox, Planes Target);

    /// <summary>
    /// Stage A: per plane, each distinct x pass into a plane scratch, then every y pass that reads it into its XY image.
    /// The x pass reads <paramref name="source"/>'s plane whole (it mirrors at the source's x ends, as a whole pass does).
    /// </summary>
    private void XyStage(Planes source, IReadOnlyList<XySpec> specs, ScratchPool pool)
    {
        var byX = specs.GroupBy(s => (s.Kx.Sigma, s.Kx.Order, s.XBox)).Select(g => g.ToArray()).ToArray();
        long first = specs.Min(s => s.Target.Box.Start.Z), end = specs.Max(s => s.Target.Box.End.Z);
        int scratch = specs.Max(s => (int)(s.XBox.Size.Y * s.XBox.Size.X));
        ForPlanes(first, end - first, scratch, pool, (buffer, z, threads) =>
        {
            foreach (var group in byX)
            {
                var xBox = group[0].XBox;
                if (z < xBox.Start.Z || z >= xBox.End.Z) continue;
                XPass(source.Plane(z), source.Box, xBox, group[0].Kx, buffer, threads);
                foreach (var spec in group)
                    if (z >= spec.Target.Box.Start.Z && z < spec.Target.Box.End.Z)
                        YPass(buffer, xBox, spec.Target, z, spec.Ky, threads);
            }
        });
    }

    /// <summary>
    /// Runs <paramref name="body"/>(scratch, z, passThreads) for every z in [first, first + count) on up to maxThreads workers,
    /// each a contiguous run of planes with its own scratch of <paramref name="scratchLength"/> floats. A single plane (a 2D
    /// block) gets the threads inside its passes instead. Every sample is computed the same way whatever the split.
    /// </summary>
    private void ForPlanes(long first, long count, int scratchLength, ScratchPool pool, Action<float[], long, int> body)
    {
        int workers = (int)Math.Clamp(count, 1, _maxThreads);
        var scratch = new float[workers][];
        for (int w = 0; w < workers; w++) scratch[w] = pool.Rent(Math.Max(1, scratchLength));
        if (workers == 1)
            for (long z = first; z < first + count; z++) body(scratch[0], z, _maxThreads);
        else
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                for (long z = first + count * w / workers; z < first + count * (w + 1) / workers; z++) body(scratch[w], z, 1);
            });
        foreach (var buffer in scratch) pool.Return(buffer);
    }

    /// <summary>The x pass of one plane over <paramref name="xBox"/>'s rows and columns, into <paramref name="x"/>.</summary>
    private static void XPass(ReadOnlySpan<float> plane, Box3 planeBox, Box3 xBox, FirKernel kx, Span<float> x, int threads) =>
        SeparableConvolution.Apply(plane, 1, (int)planeBox.Size.Y, (int)planeBox.Size.X, x[..(int)(xBox.Size.Y * xBox.Size.X)],
            new Box3(new Long3(0, xBox.Start.Y - planeBox.Start.Y, xBox.Start.X - planeBox.Start.X), new Long3(1, xBox.Size.Y, xBox.Size.X)),
            2, kx, threads, SeparableConvolution.BestWidth);

    /// <summary>The y pass of an x-pass plane held over <paramref name="xBox"/>, into plane <paramref name="z"/> of <paramref name="target"/>.</summary>
    private static void YPass(ReadOnlySpan<float> x, Box3 xBox, Planes target, long z, FirKernel ky, int threads) =>
        SeparableConvolution.Apply(x[..(int)(xBox.Size.Y * xBox.Size.X)], 1, (int)xBox.Size.Y, (int)xBox.Size.X, target.Plane(z),
            new Box3(new Long3(0, target.Box.Start.Y - xBox.Start.Y, 0), new Long3(1, target.Box.Size.Y, xBox.Size.X)),
            1, ky, threads, SeparableConvolution.BestWidth);

    /// <summary>A derivative image: orders along z, y, x at one sigma (order-0 kernels of that sigma on the other axes).</summary>
    private readonly record struct Derivative(Sigma3 Sigma, bool Flat, int Oz, int Oy, int Ox);

    /// <summary>A derivative's XY image and its z kernel (null when the derivative is 2D: then the XY image is the derivative).</summary>
    private readonly record struct DerivativeSource(Planes Xy, FirKernel? Kz)
    {
        /// <summary>Plane <paramref name="z"/> of the derivative, over the XY image's rows and columns.</summary>
        public float* PlaneAt(long z, float* scratch)
        {
            if (Kz is null) return Xy.PlaneData(z);
            SeparableConvolution.ApplyAtPlane(Xy.Data, (int)Xy.Box.Size.Z, Xy.PlaneStride, Xy.PlaneLength, (int)(z - Xy.Box.Start.Z), scratch, Kz,
                SeparableConvolution.BestWidth);
            return scratch;
        }
    }

    /// <summary>
    /// One scale's work, from its pre-smoothed image: per entry, its component images over the core. Features read the
    /// derivatives over the core, except the structure tensor, which reads its gradient over the core grown by its
    /// smoothing (the margin planned for that sigma).
    /// </summary>
    private sealed class Scale(FeatureEngine engine, Planes source, Box3 core, bool singleSlice, Dictionary<(Sigma3 Sigma, bool Flat), Halo> margins,
        ScratchPool pool, FeatureImageDestination? destination)
    {
        private readonly List<float[]> _scratchOutputs = [];   // outputs rented here when there is no destination

        public int CoreLength => (int)core.VoxelCount;
        private int PlaneLength => (int)(core.Size.Y * core.Size.X);

        /// <summary>Per entry index, its component images over the core (the destination's, or scratch), filled by <see cref="Compute"/>.</summary>
        public Dictionary<int, Memory<float>[]> Outputs { get; } = [];

        public void Compute(IReadOnlyList<(FeatureEntry Entry, int Index, FeaturePlan Plan)> members)
        {
            var pointwise = members.Where(m => m.Entry.Kind != FeatureKind.StructureTensorEigenvalues).ToArray();
            if (pointwise.Length > 0) Pointwise(pointwise);
            foreach (var (entry, index, plan) in members)
                if (entry.Kind == FeatureKind.StructureTensorEigenvalues)
                    StructureTensor(index, plan.Filter, plan.Filter2D || singleSlice);
        }

        public void Release()
        {
            foreach (var image in _scratchOutputs) pool.Return(image);
            _scratchOutputs.Clear();
            Outputs.Clear();
        }

        private Memory<float>[] OutputsOf(int index, int components)
        {
            var images = new Memory<float>[components];
            for (int c = 0; c < components; c++)
            {
                if (destination is not null) images[c] = destination(index, c);
                else
                {
                    var scratch = pool.Rent(CoreLength);
                    _scratchOutputs.Add(scratch);
                    images[c] = scratch;
                }
                if (images[c].Length < CoreLength)
                    throw new ArgumentException($"the destination of entry {index}, component {c} holds {images[c].Length} values; the core has {CoreLength}");
            }
            return Outputs[index] = images;
        }

        /// <summary>The derivatives a feature other than the structure tensor reads, in the order it reads them.</summary>
        private static Derivative[] Reads(FeatureKind kind, Sigma3 s, bool flat) => kind switch
        {
            FeatureKind.GaussianSmoothing => [new(s, flat, 0, 0, 0)],
            FeatureKind.DifferenceOfGaussians => [new(s, flat, 0, 0, 0), new(s * 0.66, flat, 0, 0, 0)],
            FeatureKind.LaplacianOfGaussian => flat ? [new(s, flat, 0, 0, 2), new(s, flat, 0, 2, 0)]
                                                    : [new(s, flat, 0, 0, 2), new(s, flat, 0, 2, 0), new(s, flat, 2, 0, 0)],
            FeatureKind.GaussianGradientMagnitude => flat ? [new(s, flat, 0, 0, 1), new(s, flat, 0, 1, 0)]
                                                          : [new(s, flat, 0, 0, 1), new(s, flat, 0, 1, 0), new(s, flat, 1, 0, 0)],
            // fastfilters' tensor order (a00, a01, a02, a11, a12, a22) = (zz, yz, xz, yy, xy, xx); in 2D (xx, xy, yy).
            FeatureKind.HessianOfGaussianEigenvalues => flat ? [new(s, flat, 0, 0, 2), new(s, flat, 0, 1, 1), new(s, flat, 0, 2, 0)]
                : [new(s, flat, 2, 0, 0), new(s, flat, 1, 1, 0), new(s, flat, 1, 0, 1), new(s, flat, 0, 2, 0), new(s, flat, 0, 1, 1), new(s, flat, 0, 0, 2)],
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a pointwise feature"),
        };

        /// <summary>
        /// Stage A for <paramref name="derivatives"/> computed over <paramref name="target"/>: their XY images (one per sigma
        /// and x, y order, each over the target grown by its z pass's reach), all from one pass over the source's planes.
        /// </summary>
        private Dictionary<Derivative, DerivativeSource> Sources(IEnumerable<Derivative> derivatives, Box3 target, List<Planes> held)
        {
            var specs = new Dictionary<(double, double, int, int, Box3), XySpec>();
            var result = new Dictionary<Derivative, DerivativeSource>();
            foreach (var d in derivatives)
            {
                if (result.ContainsKey(d)) continue;
                var kz = d.Flat ? null : FirKernel.Gaussian(d.Oz, d.Sigma.Z, FilterWindow);
                var ky = FirKernel.Gaussian(d.Oy, d.Sigma.Y, FilterWindow);
                var (xyBox, xBox) = FeatureGeometry.PassBoxes(target, source.Box, kz, ky);
                var key = (d.Sigma.X, d.Sigma.Y, d.Ox, d.Oy, xyBox);
                if (!specs.TryGetValue(key, out var spec))
                {
                    var xy = pool.RentPlanes(xyBox, padded: kz is not null);
                    held.Add(xy);
                    specs[key] = spec = new XySpec(FirKernel.Gaussian(d.Ox, d.Sigma.X, FilterWindow), ky, xBox, xy);
                }
                result[d] = new DerivativeSource(spec.Target, kz);
            }
            engine.XyStage(source, specs.Values.ToArray(), pool);
            return result;
        }

        /// <summary>Stage B for every feature but the structure tensor: per core plane, each derivative plane once, then the features.</summary>
        private void Pointwise(IReadOnlyList<(FeatureEntry Entry, int Index, FeaturePlan Plan)> members)
        {
            var flats = members.Select(m => m.Plan.Filter2D || singleSlice).ToArray();
            var reads = members.Select((m, i) => Reads(m.Entry.Kind, m.Plan.Filter, flats[i])).ToArray();
            var held = new List<Planes>();
            var sources = Sources(reads.SelectMany(r => r), core, held);
            var derivatives = sources.Keys.ToArray();
            var slots = reads.Select(r => r.Select(d => Array.IndexOf(derivatives, d)).ToArray()).ToArray();
            var outputs = members.Select((m, i) => OutputsOf(m.Index, m.Entry.Kind == FeatureKind.HessianOfGaussianEigenvalues ? (flats[i] ? 2 : 3) : 1)).ToArray();
            int plane = PlaneLength;
            int zPassed = derivatives.Count(d => sources[d].Kz is not null);   // 2D derivatives are their XY planes: no scratch
            engine.ForPlanes(core.Start.Z, core.Size.Z, zPassed * plane, pool, (scratch, z, threads) =>
            {
                fixed (float* scratchData = scratch)
                {
                    var planes = new nint[derivatives.Length];
                    for (int d = 0, slot = 0; d < derivatives.Length; d++)
                    {
                        var source = sources[derivatives[d]];
                        planes[d] = (nint)source.PlaneAt(z, scratchData + slot * plane);
                        if (source.Kz is not null) slot++;
                    }
                    int offset = (int)(z - core.Start.Z) * plane;
                    for (int m = 0; m < members.Count; m++)
                    {
                        var input = slots[m];
                        ReadOnlySpan<float> In(int i) => new((float*)planes[input[i]], plane);
                        Span<float> Out(int c) => outputs[m][c].Span.Slice(offset, plane);
                        switch (members[m].Entry.Kind)
                        {
                            case FeatureKind.GaussianSmoothing:
                                In(0).CopyTo(Out(0));
                                break;
                            case FeatureKind.DifferenceOfGaussians:
                                Elementwise.Subtract(In(0), In(1), Out(0));
                                break;
                            case FeatureKind.LaplacianOfGaussian:
                                Elementwise.Add(In(0), In(1), Out(0));
                                if (!flats[m]) Elementwise.Add(Out(0), In(2), Out(0));
                                break;
                            case FeatureKind.GaussianGradientMagnitude:
                                Elementwise.Magnitude(In(0), In(1), flats[m] ? default : In(2), Out(0));
                                break;
                            case FeatureKind.HessianOfGaussianEigenvalues:
                                Eigenvalues(planes, input, outputs[m], offset, plane, threads);
                                break;
                        }
                    }
                }
            });
            foreach (var xy in held) pool.Return(xy);
        }

        /// <summary>
        /// Gradient at 0.5·s', products in float32, each smoothed at s' (fastfilters semantics; swapped with
        /// <see cref="FeatureSet.VigraStructureTensor"/>), eigenvalues. Per plane of the smoothing's reach: the gradient's
        /// planes, their products, and the products' x and y passes (stage A); then per core plane the z passes and the
        /// eigenvalues (stage B).
        /// </summary>
        private void StructureTensor(int index, Sigma3 s, bool flat)
        {
            var (gradientFactor, smoothingFactor) = engine._set.StructureTensorScales;
            var gradientSigma = s * gradientFactor;
            var smoothing = s * smoothingFactor;
            var gradientBox = core.Grow(margins[(gradientSigma, flat)], source.Box);
            Derivative G(int oz, int oy, int ox) => new(gradientSigma, flat, oz, oy, ox);
            var gradient = flat ? new[] { G(0, 0, 1), G(0, 1, 0) } : [G(0, 0, 1), G(0, 1, 0), G(1, 0, 0)];
            // (g_a, g_b) per tensor component, in fastfilters' order: 3D (zz, yz, xz, yy, xy, xx), 2D (xx, xy, yy); g = (x, y, z).
            var pairs = flat ? new[] { (0, 0), (0, 1), (1, 1) } : [(2, 2), (1, 2), (0, 2), (1, 1), (0, 1), (0, 0)];

            var heldGradient = new List<Planes>();
            var sources = Sources(gradient, gradientBox, heldGradient);
            var kz = flat ? null : FirKernel.Gaussian(0, smoothing.Z, FilterWindow);
            var ky = FirKernel.Gaussian(0, smoothing.Y, FilterWindow);
            var kx = FirKernel.Gaussian(0, smoothing.X, FilterWindow);
            var (xyBox, xBox) = FeatureGeometry.PassBoxes(core, gradientBox, kz, ky);
            var smoothed = pairs.Select(_ => pool.RentPlanes(xyBox, padded: kz is not null)).ToArray();

            int gradientPlane = (int)(gradientBox.Size.Y * gradientBox.Size.X), xPlane = (int)(xBox.Size.Y * xBox.Size.X);
            int gradientScratch = flat ? 0 : gradient.Length * gradientPlane;   // 2D gradients are their XY planes
            engine.ForPlanes(xyBox.Start.Z, xyBox.Size.Z, gradientScratch + gradientPlane + xPlane, pool, (scratch, z, threads) =>
            {
                fixed (float* scratchData = scratch)
                {
                    var planes = new nint[gradient.Length];
                    for (int g = 0; g < gradient.Length; g++) planes[g] = (nint)sources[gradient[g]].PlaneAt(z, scratchData + g * gradientPlane);
                    var product = scratch.AsSpan(gradientScratch, gradientPlane);
                    var x = scratch.AsSpan(gradientScratch + gradientPlane, xPlane);
                    for (int t = 0; t < pairs.Length; t++)
                    {
                        var (a, b) = pairs[t];
                        Elementwise.Multiply(new ReadOnlySpan<float>((float*)planes[a], gradientPlane), new ReadOnlySpan<float>((float*)planes[b], gradientPlane), product);
                        XPass(product, gradientBox, xBox, kx, x, threads);
                        YPass(x, xBox, smoothed[t], z, ky, threads);
                    }
                }
            });
            foreach (var xy in heldGradient) pool.Return(xy);

            var outputs = OutputsOf(index, flat ? 2 : 3);
            var components = Enumerable.Range(0, pairs.Length).ToArray();
            int plane = PlaneLength;
            engine.ForPlanes(core.Start.Z, core.Size.Z, kz is null ? 0 : pairs.Length * plane, pool, (scratch, z, threads) =>
            {
                fixed (float* scratchData = scratch)
                {
                    var tensor = new nint[pairs.Length];
                    for (int t = 0; t < pairs.Length; t++) tensor[t] = (nint)new DerivativeSource(smoothed[t], kz).PlaneAt(z, scratchData + t * plane);
                    Eigenvalues(tensor, components, outputs, (int)(z - core.Start.Z) * plane, plane, threads);
                }
            });
            foreach (var xy in smoothed) pool.Return(xy);
        }

        /// <summary>
        /// Eigenvalues of the 2x2 (3 components) or 3x3 (6 components) tensor whose component i is the plane at planes[tensor[i]],
        /// into the outputs at <paramref name="offset"/>,
        /// split in element ranges over <paramref name="threads"/> (each element's result is independent of the split).
        /// </summary>
        private static void Eigenvalues(nint[] planes, int[] tensor, Memory<float>[] outputs, int offset, int length, int threads)
        {
            const int MinRange = 1 << 14;
            int parts = Math.Clamp(length / MinRange, 1, threads);
            void Range(int start, int count)
            {
                ReadOnlySpan<float> T(int i) => new((float*)planes[tensor[i]] + start, count);
                Span<float> E(int i) => outputs[i].Span.Slice(offset + start, count);
                if (tensor.Length == 3) SymmetricEigen.Eigenvalues2(T(0), T(1), T(2), E(0), E(1));
                else SymmetricEigen.Eigenvalues3(T(0), T(1), T(2), T(3), T(4), T(5), E(0), E(1), E(2));
            }
            if (parts == 1) { Range(0, length); return; }
            int step = (length + parts - 1) / parts;
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p => Range(p * step, Math.Min(step, length - p * step)));
        }
    }

    /// <summary>
    /// A float image over <see cref="Box"/> (block coordinates), its z-planes <see cref="PlaneStride"/> floats apart (rows
    /// Box.Size.X apart within a plane), at a pinned address.
    /// </summary>
    private readonly struct Planes(float* data, Box3 box, int planeStride, float[]? buffer = null)
    {
        public float* Data => data;
        public Box3 Box => box;
        public int PlaneStride => planeStride;
        public float[]? Buffer => buffer;
        public int PlaneLength => (int)(box.Size.Y * box.Size.X);
        public float* PlaneData(long z) => data + (z - box.Start.Z) * planeStride;
        public Span<float> Plane(long z) => new(PlaneData(z), PlaneLength);
    }

    /// <summary>Scratch float buffers from the chunk buffer pool, all returned when the block is done; counts the values held.</summary>
    private sealed class ScratchPool : IDisposable
    {
        private readonly Dictionary<float[], (int Length, GCHandle Pin)> _rented = new(ReferenceEqualityComparer.Instance);
        private long _held;

        public long Peak { get; private set; }

        public float[] Rent(int length) => Rent(length, pin: false);

        /// <summary>
        /// An image over <paramref name="box"/>; <paramref name="padded"/>: its planes a cache line further apart than their
        /// length (for the z pass, which reads 2R + 1 planes at once).
        /// </summary>
        public Planes RentPlanes(Box3 box, bool padded)
        {
            int plane = checked((int)(box.Size.Y * box.Size.X));
            int stride = padded ? ((plane + 15) & ~15) + 16 : plane;
            var buffer = Rent(checked(stride * (int)box.Size.Z), pin: true);
            return new Planes((float*)_rented[buffer].Pin.AddrOfPinnedObject(), box, stride, buffer);
        }

        private float[] Rent(int length, bool pin)
        {
            var buffer = ChunkBufferPool<float>.Shared.Rent(length);
            _rented.Add(buffer, (length, pin ? GCHandle.Alloc(buffer, GCHandleType.Pinned) : default));
            _held += length;
            Peak = Math.Max(Peak, _held);
            return buffer;
        }

        public void Return(Planes image) => Return(image.Buffer!);

        public void Return(float[] buffer)
        {
            if (!_rented.Remove(buffer, out var rented)) return;
            if (rented.Pin.IsAllocated) rented.Pin.Free();
            _held -= rented.Length;
            ChunkBufferPool<float>.Shared.Return(buffer);
        }

        public void Dispose()
        {
            foreach (var (buffer, rented) in _rented)
            {
                if (rented.Pin.IsAllocated) rented.Pin.Free();
                ChunkBufferPool<float>.Shared.Return(buffer);
            }
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
