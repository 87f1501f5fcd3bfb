using System.Buffers;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.IlgpuKernels.Forest;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;
using ILGPU;
using ILGPU.Runtime;

namespace ChunkSeg.IlgpuKernels.Features;

/// <summary>
/// ilastik's feature stack on an ILGPU accelerator: the same images as <see cref="FeatureEngine"/>, in the same order,
/// bit for bit.
/// <code>
///   host block ──upload once──▶ B ──x,y,z passes──▶ P (pre-smoothed) ──passes──▶ D[σ, oz, oy, ox] ──elementwise──▶ F
///                               └─────────────── every image stays in device buffers ──────────────┘   │
///                                                                                  download the core ◀┘ → sink
/// </code>
/// The work plan (groups by pre-smoothing, the derivative images each entry reads, the margins, the boxes each pass
/// computes) is <see cref="FeatureGeometry"/>'s, the one <see cref="FeatureEngine"/> follows, so both engines compute
/// every sample from the same inputs with the same float operations (the kernels in <c>Kernels/FeatureKernels.cs</c>;
/// the eigenvalues are <see cref="ChunkSeg.Kernels.Eigen.EigenEngine"/>'s own methods).
/// <para>
/// <b>Device memory.</b> A call first sizes its working set by running the plan without the device (a dry run that
/// only counts buffers). When that exceeds <see cref="DeviceBudgetBytes"/>, the core is split into tiles (z-slabs first,
/// then y bands, then x bands), each computed from its sub-block: the tile grown by <see cref="FeatureSet.RequiredHalo"/>
/// and clipped to the block. Every pass mirrors at the ends of its input's box; a sub-block end that is not a block end
/// lies a halo away from the tile, further than any chain of passes reaches, so a tiled call gives the untiled images
/// bit for bit. Buffers come from the device's pool (<see cref="DeviceBufferPool"/>), so chunk after chunk allocates nothing.
/// </para>
/// <para>
/// <b>Threads.</b> Each call runs on a stream of its own (<see cref="DeviceCall"/>), so calls from several threads run
/// concurrently with no lock; each call's working set is bounded by the budget, so N concurrent calls use at most N budgets.
/// </para>
/// </summary>
public sealed class GpuFeatureEngine : IFeatureEngine
{
    /// <summary>Default budget: this fraction of the device's memory per call.</summary>
    public const double DefaultBudgetFraction = 0.25;

    private readonly FeatureSet _set;
    private readonly long _volumeZ;

    /// <param name="device">The accelerator to compute on.</param>
    /// <param name="set">The features.</param>
    /// <param name="volumeZ">z extent of the whole volume (decides 2D fallbacks, as in ilastik), not of the block.</param>
    /// <param name="deviceBudgetBytes">Most device memory one call may hold; null: <see cref="DefaultBudgetFraction"/> of
    /// the device's memory. Larger working sets are tiled.</param>
    public GpuFeatureEngine(GpuDevice device, FeatureSet set, long volumeZ, long? deviceBudgetBytes = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(set);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(volumeZ);
        if (deviceBudgetBytes is <= 0)
            throw new ArgumentOutOfRangeException(nameof(deviceBudgetBytes), deviceBudgetBytes, "the device memory budget must be positive bytes (null for the default).");
        Device = device;
        _set = set;
        _volumeZ = volumeZ;
        DeviceBudgetBytes = deviceBudgetBytes ?? (long)(device.MemoryBytes * DefaultBudgetFraction);
    }

    public FeatureSet Set => _set;

    public GpuDevice Device { get; }

    /// <summary>Most device memory one <see cref="Compute"/> call holds at once; larger working sets are tiled.</summary>
    public long DeviceBudgetBytes { get; }

    /// <summary>
    /// Every feature image of the set over <paramref name="core"/> (block coordinates) of the C-ordered block of shape
    /// (sz, sy, sx), emitted to <paramref name="sink"/> in <see cref="FeatureEngine"/>'s order with its values.
    /// </summary>
    public void Compute(ReadOnlySpan<float> block, int sz, int sy, int sx, Box3 core, FeatureImageSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var blockBox = Validate(block.Length, sz, sy, sx, core);
        var tiles = Tiles(blockBox, core);
        var halo = _set.RequiredHalo(_volumeZ);
        bool singleSlice = sz == 1;
        var groups = FeatureGeometry.Groups(_set, _volumeZ);

        using var call = new DeviceCall(Device);
        var run = new DeviceRun(call);
        int coreLength = checked((int)core.VoxelCount);
        var hostImage = ArrayPool<float>.Shared.Rent(coreLength);
        try
        {
            if (tiles.Count == 1)
            {
                // One upload; every group reads it; each image goes to the sink as soon as it is downloaded.
                var input = run.Upload(block[..checked((int)blockBox.VoxelCount)], blockBox);
                foreach (var group in groups)
                    ComputeGroup(run, group, input, core, singleSlice, (index, component, image) =>
                    {
                        run.Download(image, hostImage.AsSpan(0, coreLength));
                        sink(index, component, hostImage.AsSpan(0, coreLength));
                    });
                run.Return(input);
                return;
            }

            // Tiled: per group, every tile's images land in core-sized host images, emitted when the group is done.
            var tileImage = ArrayPool<float>.Shared.Rent(tiles.Max(t => checked((int)t.VoxelCount)));
            var gathered = ArrayPool<float>.Shared.Rent(tiles.Max(t => checked((int)t.Grow(halo, blockBox).VoxelCount)));
            try
            {
                foreach (var group in groups)
                {
                    var images = new List<(int Index, int Component, float[] Values)>();
                    foreach (var tile in tiles)
                    {
                        var sub = tile.Grow(halo, blockBox);
                        int subLength = checked((int)sub.VoxelCount);
                        Gather(block, blockBox, sub, gathered.AsSpan(0, subLength));
                        var input = run.Upload(gathered.AsSpan(0, subLength), new Box3(Long3.Zero, sub.Size));
                        int produced = 0;
                        ComputeGroup(run, group, input, new Box3(tile.Start - sub.Start, tile.Size), singleSlice, (index, component, image) =>
                        {
                            if (produced == images.Count) images.Add((index, component, new float[coreLength]));
                            var target = images[produced++];
                            if (target.Index != index || target.Component != component)
                                throw new InvalidOperationException($"tiles emitted images in different orders ({target.Index}/{target.Component} vs {index}/{component})");
                            int n = checked((int)tile.VoxelCount);
                            run.Download(image, tileImage.AsSpan(0, n));
                            Scatter(tileImage.AsSpan(0, n), tile, core, target.Values);
                        });
                        run.Return(input);
                    }
                    foreach (var (index, component, values) in images) sink(index, component, values);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(tileImage);
                ArrayPool<float>.Shared.Return(gathered);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(hostImage);
        }
    }

    /// <summary>
    /// Features, then <paramref name="forest"/>, with the features never leaving the device: the probabilities of the
    /// voxels of <paramref name="core"/> (block coordinates), [v · forest.OutputChannels + c] in the core's C order —
    /// what <see cref="Compute"/> on every input channel, the matrix assembled on the host and
    /// <see cref="GpuForestPredictor.PredictProbabilities"/> give, bit for bit, without moving the feature matrix
    /// (61 floats per voxel for ilastik's full set) across the bus twice.
    /// <code>
    ///   transfer stream:  upload tile 0 │ upload tile 1 │ read probabilities 0 │ upload tile 2 │ read probabilities 1 …
    ///   compute stream:                 │ features 0 → matrix → forest 0       │ features 1 → matrix → forest 1   …
    /// </code>
    /// Per tile (as <see cref="Compute"/> tiles, the budget also holding the matrix and two outputs), each input
    /// channel's feature images are copied on the device into their planes of a tile-sized matrix
    /// (<paramref name="layout"/>), the forest reads it there, and only the tile's probabilities come back. The sub-blocks
    /// go up from page-locked staging on a second stream while the current tile computes, and the last tile's
    /// probabilities come back on it (double-buffered: two uploads and two outputs in flight). ILGPU has no cross-stream
    /// event, so the host joins the streams: before a tile computes, its upload is waited for; before its read is
    /// queued, its compute.
    /// </summary>
    /// <param name="blocks">Every input channel's C-ordered block of shape (sz, sy, sx), channel after channel.</param>
    /// <param name="layout">The column of each (entry, input channel, component) image in the forest's feature matrix.</param>
    public void Classify(ReadOnlySpan<float> blocks, FeatureMatrixLayout layout, int sz, int sy, int sx, Box3 core, GpuForestPredictor forest,
        Span<float> probabilities)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(forest);
        if (forest.Device != Device) throw new ArgumentException("the forest must live on this engine's device", nameof(forest));
        if (forest.FeatureCount != layout.Channels)
            throw new ArgumentException($"the forest reads {forest.FeatureCount} features; the feature selection gives {layout.Channels} " +
                $"for {layout.InputChannels} input channel(s)", nameof(forest));
        int channels = layout.InputChannels, classes = forest.OutputChannels;
        var blockBox = Validate(blocks.Length / channels, sz, sy, sx, core);
        int blockLength = checked((int)blockBox.VoxelCount);
        if (probabilities.Length < core.VoxelCount * classes)
            throw new ArgumentException($"the output holds {probabilities.Length} values; {classes} per voxel for {core.VoxelCount} voxels need {core.VoxelCount * classes}",
                nameof(probabilities));

        var halo = _set.RequiredHalo(_volumeZ);
        bool singleSlice = sz == 1;
        var groups = FeatureGeometry.Groups(_set, _volumeZ);
        var tiles = ClassifyTiles(blockBox, core, layout, classes);
        int maxTile = tiles.Max(t => checked((int)t.VoxelCount));
        int maxSub = tiles.Max(t => checked((int)t.Grow(halo, blockBox).VoxelCount));

        using var call = new DeviceCall(Device);
        using var transfer = Device.Accelerator.CreateStream();
        var run = new DeviceRun(call);
        var compute = call.Stream;
        var matrix = call.Rent((long)maxTile * layout.Channels);
        var scratch = forest.RentScratch(call, maxTile);
        var outputs = new DeviceArray[2];
        var staging = new PageLockedArray1D<float>[2];
        var results = new PageLockedArray1D<float>[2];
        var uploads = new DeviceArray[2][];
        try
        {
            for (int slot = 0; slot < 2; slot++)
            {
                outputs[slot] = call.Rent((long)maxTile * classes);
                staging[slot] = Device.Accelerator.AllocatePageLocked1D<float>((long)maxSub * channels);
                results[slot] = Device.Accelerator.AllocatePageLocked1D<float>((long)maxTile * classes);
                uploads[slot] = new DeviceArray[channels];
                for (int c = 0; c < channels; c++) uploads[slot][c] = call.Rent(maxSub);
            }

            // Every channel's sub-block of tile i: gathered into the slot's page-locked staging, copied on the transfer stream.
            void StartUpload(int i, ReadOnlySpan<float> source)
            {
                int slot = i % 2;
                var sub = tiles[i].Grow(halo, blockBox);
                int subLength = checked((int)sub.VoxelCount);
                for (int c = 0; c < channels; c++)
                {
                    var host = staging[slot].Span.Slice(c * subLength, subLength);
                    Gather(source.Slice(c * blockLength, blockLength), blockBox, sub, host);
                    uploads[slot][c].View.SubView(0, subLength).CopyFromCPUUnsafeAsync(transfer, ref host[0], subLength);
                }
            }

            StartUpload(0, blocks);
            for (int i = 0; i < tiles.Count; i++)
            {
                int slot = i % 2;
                var tile = tiles[i];
                var sub = tile.Grow(halo, blockBox);
                var local = new Box3(tile.Start - sub.Start, tile.Size);
                int voxels = checked((int)tile.VoxelCount);
                transfer.Synchronize();                  // tile i is up (and tile i − 1's probabilities are down)
                if (i > 0) Finish(i - 1, probabilities);
                for (int c = 0; c < channels; c++)
                {
                    var input = new DeviceImage(uploads[slot][c] with { Length = sub.VoxelCount }, new Box3(Long3.Zero, sub.Size));
                    int channel = c;
                    foreach (var group in groups)
                        ComputeGroup(run, group, input, local, singleSlice, (entry, component, image) =>
                        {
                            long plane = layout.ChannelOf(entry, channel, component);
                            image.Array!.Value.View.CopyTo(compute, matrix.View.SubView(plane * voxels, voxels));
                        });
                }
                forest.Enqueue(call, matrix.View.SubView(0, (long)voxels * layout.Channels), voxels, outputs[slot].View, scratch.View);
                if (i + 1 < tiles.Count) StartUpload(i + 1, blocks);     // beside this tile's compute
                compute.Synchronize();
                var result = results[slot].Span[..(voxels * classes)];
                outputs[slot].View.SubView(0, (long)voxels * classes).CopyToCPUUnsafeAsync(transfer, ref result[0], result.Length);
            }
            transfer.Synchronize();
            Finish(tiles.Count - 1, probabilities);
        }
        finally
        {
            transfer.Synchronize();
            foreach (var array in staging.Concat(results)) array?.Dispose();
        }

        void Finish(int i, Span<float> output)
        {
            var tile = tiles[i];
            Scatter(results[i % 2].Span[..checked((int)tile.VoxelCount * classes)], tile, core, output, classes);
        }
    }

    /// <summary>The tiles <see cref="Classify"/> splits a core into: its budget also holds the tile's feature matrix, two outputs and the next uploads.</summary>
    internal IReadOnlyList<Box3> ClassifyTiles(Box3 blockBox, Box3 core, FeatureMatrixLayout layout, int classes) =>
        Tiles(blockBox, core, (layout.Channels + 2L * classes + 2L * classes) * sizeof(float), 2 * layout.InputChannels - 1);

    /// <summary>
    /// The tiles (block coordinates) a call on a block of <paramref name="blockBox"/> with core <paramref name="core"/>
    /// splits its core into: one (the core) when the working set fits <see cref="DeviceBudgetBytes"/>.
    /// </summary>
    public IReadOnlyList<Box3> Tiles(Box3 blockBox, Box3 core) => Tiles(blockBox, core, 0, 0);

    /// <summary>
    /// As <see cref="Tiles(Box3, Box3)"/>, for a call that also holds <paramref name="bytesPerTileVoxel"/> bytes per tile
    /// voxel (a feature matrix, outputs, the forest's scratch) and <paramref name="extraInputs"/> more sub-block images
    /// (inputs uploaded ahead).
    /// </summary>
    private IReadOnlyList<Box3> Tiles(Box3 blockBox, Box3 core, long bytesPerTileVoxel, int extraInputs)
    {
        var halo = _set.RequiredHalo(_volumeZ);
        bool singleSlice = blockBox.Size.Z == 1;
        var groups = FeatureGeometry.Groups(_set, _volumeZ);
        long Need(Box3 tile)
        {
            var sub = tile.Grow(halo, blockBox);
            var dry = new DeviceRun(null);
            var input = dry.Upload(default, new Box3(Long3.Zero, sub.Size));
            foreach (var group in groups)
                ComputeGroup(dry, group, input, new Box3(tile.Start - sub.Start, tile.Size), singleSlice, (_, _, _) => { });
            return dry.PeakBytes + tile.VoxelCount * bytesPerTileVoxel + extraInputs * sub.VoxelCount * sizeof(float);
        }

        long nz = 1, ny = 1, nx = 1;
        while (true)
        {
            var tiles = Split(core, nz, ny, nx);
            long worst = tiles.Max(Need);
            if (worst <= DeviceBudgetBytes) return tiles;
            if (nz < core.Size.Z) nz = Math.Min(core.Size.Z, nz * 2);
            else if (ny < core.Size.Y) ny = Math.Min(core.Size.Y, ny * 2);
            else if (nx < core.Size.X) nx = Math.Min(core.Size.X, nx * 2);
            else
                throw new InvalidOperationException($"one voxel of the core still needs {worst} bytes of device memory (budget {DeviceBudgetBytes}) " +
                    $"for features {_set}; raise the budget or use smaller scales");
        }
    }

    private static Box3 Validate(int blockLength, int sz, int sy, int sx, Box3 core)
    {
        if (sz <= 0 || sy <= 0 || sx <= 0)
            throw new ArgumentOutOfRangeException(nameof(sz), $"block shape (sz, sy, sx) = ({sz}, {sy}, {sx}) must be positive");
        var blockBox = new Box3(Long3.Zero, new Long3(sz, sy, sx));
        long n = blockBox.VoxelCount;
        if (n > int.MaxValue) throw new ArgumentException($"block shape {sz}x{sy}x{sx} holds {n} voxels; at most {int.MaxValue}");
        if (blockLength < n) throw new ArgumentException($"block holds {blockLength} values; shape {sz}x{sy}x{sx} needs {n}");
        if (core.IsEmpty || core.Intersect(blockBox) != core)
            throw new ArgumentOutOfRangeException(nameof(core), $"core {core} must be a non-empty box inside the block {blockBox}");
        return blockBox;
    }

    /// <summary><paramref name="box"/> split into nz × ny × nx near-equal tiles, z-major.</summary>
    private static List<Box3> Split(Box3 box, long nz, long ny, long nx)
    {
        var tiles = new List<Box3>();
        for (long iz = 0; iz < nz; iz++)
        for (long iy = 0; iy < ny; iy++)
        for (long ix = 0; ix < nx; ix++)
        {
            var start = new Long3(box.Start.Z + box.Size.Z * iz / nz, box.Start.Y + box.Size.Y * iy / ny, box.Start.X + box.Size.X * ix / nx);
            var end = new Long3(box.Start.Z + box.Size.Z * (iz + 1) / nz, box.Start.Y + box.Size.Y * (iy + 1) / ny, box.Start.X + box.Size.X * (ix + 1) / nx);
            var tile = Box3.FromBounds(start, end);
            if (!tile.IsEmpty) tiles.Add(tile);
        }
        return tiles;
    }

    /// <summary>Copies <paramref name="sub"/> of the block (shape of <paramref name="blockBox"/>) into <paramref name="destination"/> in C order.</summary>
    private static void Gather(ReadOnlySpan<float> block, Box3 blockBox, Box3 sub, Span<float> destination)
    {
        int row = (int)sub.Size.X, target = 0;
        for (long z = sub.Start.Z; z < sub.End.Z; z++)
        for (long y = sub.Start.Y; y < sub.End.Y; y++, target += row)
            block.Slice((int)((z * blockBox.Size.Y + y) * blockBox.Size.X + sub.Start.X), row).CopyTo(destination.Slice(target, row));
    }

    /// <summary>
    /// Copies a tile's image (over <paramref name="tile"/>, <paramref name="components"/> values per voxel) into its place
    /// in a core-sized image.
    /// </summary>
    private static void Scatter(ReadOnlySpan<float> tileImage, Box3 tile, Box3 core, Span<float> coreImage, int components = 1)
    {
        int row = (int)tile.Size.X * components, source = 0;
        var o = tile.Start - core.Start;
        for (long z = 0; z < tile.Size.Z; z++)
        for (long y = 0; y < tile.Size.Y; y++, source += row)
            tileImage.Slice(source, row).CopyTo(coreImage.Slice((int)(((o.Z + z) * core.Size.Y + o.Y + y) * core.Size.X + o.X) * components, row));
    }

    private delegate void DeviceSink(int index, int component, DeviceImage image);

    /// <summary>One pre-smoothing group over <paramref name="core"/> of <paramref name="input"/> (FeatureEngine.Compute's loop body).</summary>
    private void ComputeGroup(DeviceRun run, FeatureGroup group, DeviceImage input, Box3 core, bool singleSlice, DeviceSink sink)
    {
        var margins = FeatureGeometry.Margins(_set, group, singleSlice);
        var p = group.Presmooth;
        bool flat = group.Presmooth2D || singleSlice;
        const double W = FeatureGeometry.PresmoothWindow;
        var (kz, ky, kx) = (flat ? null : FirKernel.Gaussian(0, p.Z, W), FirKernel.Gaussian(0, p.Y, W), FirKernel.Gaussian(0, p.X, W));
        var presmoothed = run.Separable(input, FeatureGeometry.PresmoothedBox(margins, core, input.Box), flat, kz, ky, kx);
        var cache = new DerivativeCache(run, presmoothed, core, singleSlice, margins);
        foreach (var (entry, index, plan) in group.Members)
            ComputeEntry(run, entry, index, plan, cache, sink);
        cache.Release();
        run.Return(presmoothed);
    }

    private void ComputeEntry(DeviceRun run, FeatureEntry entry, int index, FeaturePlan plan, DerivativeCache cache, DeviceSink sink)
    {
        var s = plan.Filter;
        bool flat = plan.Filter2D || cache.SingleSlice;
        var core = cache.Core;
        switch (entry.Kind)
        {
            case FeatureKind.GaussianSmoothing:
                sink(index, 0, cache.AtCore(s, flat, 0, 0, 0));
                break;

            case FeatureKind.LaplacianOfGaussian:
            {
                var sum = run.Rent(core);
                if (flat) run.Elementwise(Op.Add, sum, cache.AtCore(s, flat, 0, 0, 2), cache.AtCore(s, flat, 0, 2, 0));
                else run.Elementwise(Op.Log3, sum, cache.AtCore(s, flat, 0, 0, 2), cache.AtCore(s, flat, 0, 2, 0), cache.AtCore(s, flat, 2, 0, 0));
                sink(index, 0, sum);
                run.Return(sum);
                break;
            }

            case FeatureKind.GaussianGradientMagnitude:
            {
                var magnitude = run.Rent(core);
                if (flat) run.Elementwise(Op.Magnitude2, magnitude, cache.AtCore(s, flat, 0, 0, 1), cache.AtCore(s, flat, 0, 1, 0));
                else run.Elementwise(Op.Magnitude3, magnitude, cache.AtCore(s, flat, 0, 0, 1), cache.AtCore(s, flat, 0, 1, 0), cache.AtCore(s, flat, 1, 0, 0));
                sink(index, 0, magnitude);
                run.Return(magnitude);
                break;
            }

            case FeatureKind.DifferenceOfGaussians:
            {
                var difference = run.Rent(core);
                run.Elementwise(Op.Subtract, difference, cache.AtCore(s, flat, 0, 0, 0), cache.AtCore(s * 0.66, flat, 0, 0, 0));
                sink(index, 0, difference);
                run.Return(difference);
                break;
            }

            case FeatureKind.HessianOfGaussianEigenvalues:
                if (flat)
                    Eigen(run, index, sink, core, cache.AtCore(s, flat, 0, 0, 2), cache.AtCore(s, flat, 0, 1, 1), cache.AtCore(s, flat, 0, 2, 0));
                else
                    Eigen(run, index, sink, core, cache.AtCore(s, flat, 2, 0, 0), cache.AtCore(s, flat, 1, 1, 0), cache.AtCore(s, flat, 1, 0, 1),
                          cache.AtCore(s, flat, 0, 2, 0), cache.AtCore(s, flat, 0, 1, 1), cache.AtCore(s, flat, 0, 0, 2));
                break;

            case FeatureKind.StructureTensorEigenvalues:
                StructureTensor(run, s, flat, index, cache, sink);
                break;
        }
    }

    /// <summary>FeatureEngine.StructureTensor: gradient products over the gradient's box, each smoothed to the core, eigenvalues.</summary>
    private void StructureTensor(DeviceRun run, Sigma3 s, bool flat, int index, DerivativeCache cache, DeviceSink sink)
    {
        var (gradientFactor, smoothingFactor) = _set.StructureTensorScales;
        var gradientSigma = s * gradientFactor;
        var smoothing = s * smoothingFactor;
        const double W = FeatureGeometry.FilterWindow;
        var gx = cache.Get(gradientSigma, flat, 0, 0, 1);
        var gy = cache.Get(gradientSigma, flat, 0, 1, 0);
        var (smoothZ, smoothY, smoothX) = (flat ? null : FirKernel.Gaussian(0, smoothing.Z, W), FirKernel.Gaussian(0, smoothing.Y, W), FirKernel.Gaussian(0, smoothing.X, W));
        DeviceImage Smoothed(DeviceImage a, DeviceImage b)
        {
            var product = run.Rent(a.Box);
            run.Elementwise(Op.Multiply, product, a, b);
            var result = run.Separable(product, cache.Core, flat, smoothZ, smoothY, smoothX);
            run.Return(product);
            return result;
        }

        if (flat)
        {
            var xx = Smoothed(gx, gx); var xy = Smoothed(gx, gy); var yy = Smoothed(gy, gy);
            Eigen(run, index, sink, cache.Core, xx, xy, yy);
            run.Return(xx); run.Return(xy); run.Return(yy);
            return;
        }
        var gz = cache.Get(gradientSigma, flat, 1, 0, 0);
        var tzz = Smoothed(gz, gz); var tyz = Smoothed(gy, gz); var txz = Smoothed(gx, gz);
        var tyy = Smoothed(gy, gy); var txy = Smoothed(gx, gy); var txx = Smoothed(gx, gx);
        Eigen(run, index, sink, cache.Core, tzz, tyz, txz, tyy, txy, txx);
        foreach (var t in new[] { tzz, tyz, txz, tyy, txy, txx }) run.Return(t);
    }

    /// <summary>Eigenvalues of 3 (2x2: xx, xy, yy) or 6 (3x3: zz, yz, xz, yy, xy, xx) core images, emitted descending.</summary>
    private static void Eigen(DeviceRun run, int index, DeviceSink sink, Box3 core, params DeviceImage[] tensor)
    {
        var ev = new DeviceImage[tensor.Length == 3 ? 2 : 3];
        for (int i = 0; i < ev.Length; i++) ev[i] = run.Rent(core);
        run.Elementwise(tensor.Length == 3 ? Op.Eigen2 : Op.Eigen3, [.. tensor, .. ev]);
        for (int i = 0; i < ev.Length; i++) sink(index, i, ev[i]);
        foreach (var e in ev) run.Return(e);
    }

    /// <summary>
    /// FeatureEngine's DerivativeCache on the device: derivative images of one pre-smoothed image, each over the core
    /// grown by its planned margin, the x-pass and xy-pass results shared between them, core crops cached.
    /// </summary>
    private sealed class DerivativeCache(DeviceRun run, DeviceImage source, Box3 core, bool singleSlice, Dictionary<(Sigma3 Sigma, bool Flat), Halo> margins)
    {
        private readonly Dictionary<(double SigmaX, int Ox, Box3 Box), DeviceImage> _x = new();
        private readonly Dictionary<(double SigmaX, double SigmaY, int Ox, int Oy, Box3 Box), DeviceImage> _xy = new();
        private readonly Dictionary<(Sigma3 Sigma, bool Flat, int Oz, int Oy, int Ox), DeviceImage> _full = new();
        private readonly Dictionary<(Sigma3 Sigma, bool Flat, int Oz, int Oy, int Ox), DeviceImage> _cropped = new();

        public Box3 Core => core;
        public bool SingleSlice => singleSlice;

        public DeviceImage AtCore(Sigma3 sigma, bool flat, int oz, int oy, int ox)
        {
            var image = Get(sigma, flat, oz, oy, ox);
            if (image.Box == core) return image;
            var key = (sigma, flat || singleSlice, flat || singleSlice ? 0 : oz, oy, ox);
            if (_cropped.TryGetValue(key, out var done)) return done;
            var crop = run.Crop(image, core);
            _cropped[key] = crop;
            return crop;
        }

        public DeviceImage Get(Sigma3 sigma, bool flat, int oz, int oy, int ox)
        {
            const double W = FeatureGeometry.FilterWindow;
            flat |= singleSlice;
            if (flat) oz = 0;
            if (_full.TryGetValue((sigma, flat, oz, oy, ox), out var done)) return done;
            if (!margins.TryGetValue((sigma, flat), out var margin))
                throw new InvalidOperationException($"derivative sigma {sigma} (flat {flat}) was not planned for this scale");

            var box = core.Grow(margin, source.Box);
            var kz = flat ? null : FirKernel.Gaussian(oz, sigma.Z, W);
            var ky = FirKernel.Gaussian(oy, sigma.Y, W);
            var (xyBox, xBox) = FeatureGeometry.PassBoxes(box, source.Box, kz, ky);
            if (!_x.TryGetValue((sigma.X, ox, xBox), out var x))
                _x[(sigma.X, ox, xBox)] = x = run.Pass(source, xBox, 2, FirKernel.Gaussian(ox, sigma.X, W));
            if (!_xy.TryGetValue((sigma.X, sigma.Y, ox, oy, xyBox), out var xy))
                _xy[(sigma.X, sigma.Y, ox, oy, xyBox)] = xy = run.Pass(x, xyBox, 1, ky);
            if (flat) return _full[(sigma, flat, oz, oy, ox)] = xy;

            var full = run.Pass(xy, box, 0, kz!);
            _full[(sigma, flat, oz, oy, ox)] = full;
            return full;
        }

        public void Release()
        {
            foreach (var image in _x.Values.Concat(_xy.Values).Concat(_full.Values).Concat(_cropped.Values)) run.Return(image);
            _x.Clear(); _xy.Clear(); _full.Clear(); _cropped.Clear();
        }
    }

    internal enum Op { Add, Subtract, Multiply, Log3, Magnitude2, Magnitude3, Eigen2, Eigen3 }

    /// <summary>A device image: its values over <see cref="Box"/> in C order (no array in a dry run).</summary>
    private sealed record DeviceImage(DeviceArray? Array, Box3 Box)
    {
        public long Length => Box.VoxelCount;
        public ArrayView<float> View => Array!.Value.View;
    }

    /// <summary>
    /// The plan's device operations on one <see cref="DeviceCall"/>; counts the bytes it holds. Without a call it is a dry
    /// run: the same plan, buffers counted but never allocated, nothing launched.
    /// </summary>
    private sealed class DeviceRun(DeviceCall? call)
    {
        private readonly HashSet<DeviceImage> _held = new(ReferenceEqualityComparer.Instance);
        private long _heldBytes;

        public long PeakBytes { get; private set; }

        public DeviceImage Upload(ReadOnlySpan<float> values, Box3 box) => Track(new DeviceImage(call?.Upload(values), box));

        public void Download(DeviceImage image, Span<float> destination) => call!.Download(image.Array!.Value, destination);

        public DeviceImage Rent(Box3 box) => Track(new DeviceImage(call?.Rent(box.VoxelCount), box));

        private DeviceImage Track(DeviceImage image)
        {
            _held.Add(image);
            _heldBytes += DeviceBufferPool.SizeClass(image.Length) * sizeof(float);
            PeakBytes = Math.Max(PeakBytes, _heldBytes);
            return image;
        }

        public void Return(DeviceImage image)
        {
            if (!_held.Remove(image)) return;
            _heldBytes -= DeviceBufferPool.SizeClass(image.Length) * sizeof(float);
            if (image.Array is { } array) call!.Return(array);
        }

        /// <summary>The x, y, then (unless flat) z pass of <paramref name="source"/>, computed over <paramref name="target"/> only (FeatureEngine.Separable).</summary>
        public DeviceImage Separable(DeviceImage source, Box3 target, bool flat, FirKernel? kz, FirKernel ky, FirKernel kx)
        {
            flat |= kz is null;
            var (xyBox, xBox) = FeatureGeometry.PassBoxes(target, source.Box, flat ? null : kz, ky);
            var x = Pass(source, xBox, 2, kx);
            var xy = Pass(x, xyBox, 1, ky);
            Return(x);
            if (flat) return xy;
            var full = Pass(xy, target, 0, kz!);
            Return(xy);
            return full;
        }

        /// <summary>One pass along <paramref name="axis"/> of <paramref name="source"/>, computed over <paramref name="box"/> (mirrors at the source's ends).</summary>
        public DeviceImage Pass(DeviceImage source, Box3 box, int axis, FirKernel kernel)
        {
            var result = Rent(box);
            call?.Pass(source.View, source.Box.Size, result.View, new Box3(box.Start - source.Box.Start, box.Size), axis, kernel);
            return result;
        }

        public DeviceImage Crop(DeviceImage image, Box3 box)
        {
            var result = Rent(box);
            if (call is null) return result;
            var o = box.Start - image.Box.Start;
            call.Kernels.Crop(call.Stream, Extent(box), image.View, result.View,
                new Kernels.CropShape((int)image.Box.Size.Y, (int)image.Box.Size.X, (int)o.Z, (int)o.Y, (int)o.X, (int)box.Size.Y, (int)box.Size.X));
            return result;
        }

        /// <summary>An element-wise kernel: for the arithmetic ops (destination, inputs...); for the eigen ops (inputs..., outputs...).</summary>
        public void Elementwise(Op op, params DeviceImage[] images)
        {
            if (call is null) return;
            long n = images[0].Length;
            foreach (var image in images)
                if (image.Length != n) throw new InvalidOperationException($"{op}: an operand holds {image.Length} values, not {n}");
            var k = call.Kernels;
            var s = call.Stream;
            var v = images.Select(i => i.View).ToArray();
            var index = new Index1D(checked((int)n));
            switch (op)
            {
                case Op.Add: k.Add(s, index, v[1], v[2], v[0]); break;
                case Op.Subtract: k.Subtract(s, index, v[1], v[2], v[0]); break;
                case Op.Multiply: k.Multiply(s, index, v[1], v[2], v[0]); break;
                case Op.Log3: k.Log3(s, index, v[1], v[2], v[3], v[0]); break;
                case Op.Magnitude2: k.Magnitude2(s, index, v[1], v[2], v[0]); break;
                case Op.Magnitude3: k.Magnitude3(s, index, v[1], v[2], v[3], v[0]); break;
                case Op.Eigen2: k.Eigen2(s, index, v[0], v[1], v[2], v[3], v[4]); break;
                case Op.Eigen3: k.Eigen3(s, index, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]); break;
            }
        }

        private static Index3D Extent(Box3 box) => new((int)box.Size.X, (int)box.Size.Y, (int)box.Size.Z);
    }
}
