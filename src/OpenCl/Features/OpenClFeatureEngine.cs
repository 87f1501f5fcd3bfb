using System.Buffers;
using System.Globalization;
using System.Text;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Eigen;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.OpenCl.Forest;

namespace ChunkSeg.OpenCl.Features;

/// <summary>
/// ilastik's feature stack on an OpenCL device: the same images as <see cref="FeatureEngine"/>, in the same order,
/// bit for bit on a device with IEEE float32 (PoCL; NVIDIA with correctly rounded divide/sqrt).
/// <code>
///   host block ──upload once──▶ B ──x,y,z passes──▶ P (pre-smoothed) ──passes──▶ D[σ, oz, oy, ox] ──elementwise──▶ F
///                               └─────────────── every image stays in device buffers ──────────────┘   │
///                                                                                  download the core ◀┘ → sink
/// </code>
/// The work plan (groups by pre-smoothing, the derivative images each entry reads, the margins, the boxes each pass
/// computes) is <see cref="FeatureGeometry"/>'s, the one <see cref="FeatureEngine"/> follows, so both engines
/// compute every sample from the same inputs with the same float operations (the kernels in
/// <c>Kernels/features.cl</c> and <c>Kernels/separable_convolution.cl</c>).
/// <para>
/// <b>Device memory.</b> A call first sizes its working set by running the plan without the device (a dry run that
/// only counts buffers). When that exceeds <see cref="DeviceBudgetBytes"/>, or one buffer would exceed the device's
/// largest allocation, the core is split into tiles (z-slabs first, then y bands, then x bands), each computed from
/// its sub-block: the tile grown by <see cref="FeatureSet.RequiredHalo"/> and clipped to the block. Every pass
/// mirrors at the ends of its input's box; a sub-block end that is not a block end lies a halo away from the tile,
/// further than any chain of passes reaches, so a tiled call gives the untiled images bit for bit.
/// </para>
/// <para>
/// <b>Threads.</b> The program is built once (through <see cref="ProgramCache"/>); each <see cref="Compute"/> call gets
/// its own in-order queue, its own <c>cl_kernel</c> objects (argument setting is not thread-safe per kernel object)
/// and its own buffers, so calls from several threads run concurrently with no lock. Each call's working set is
/// bounded by the budget, so N concurrent calls use at most N budgets.
/// </para>
/// </summary>
public sealed class OpenClFeatureEngine : IFeatureEngine, IDisposable
{
    /// <summary>The embedded source, built after <see cref="OpenClConvolution.SourceFile"/> in one program.</summary>
    public const string SourceFile = "features.cl";

    /// <summary>Default budget: this fraction of the device's global memory per call.</summary>
    public const double DefaultBudgetFraction = 0.25;

    private readonly FeatureSet _set;
    private readonly long _volumeZ;

    /// <param name="context">The device to compute on.</param>
    /// <param name="set">The features.</param>
    /// <param name="volumeZ">z extent of the whole volume (decides 2D fallbacks, as in ilastik), not of the block.</param>
    /// <param name="deviceBudgetBytes">Most device memory one call may hold; null: <see cref="DefaultBudgetFraction"/> of
    /// the device's global memory. Larger working sets are tiled.</param>
    /// <param name="cache">Where compiled program binaries are kept (null: compile every time).</param>
    public OpenClFeatureEngine(OpenClContext context, FeatureSet set, long volumeZ, long? deviceBudgetBytes = null, ProgramCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(set);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(volumeZ);
        if (deviceBudgetBytes is <= 0)
            throw new ArgumentOutOfRangeException(nameof(deviceBudgetBytes), deviceBudgetBytes, "the device memory budget must be positive bytes (null for the default).");
        Context = context;
        _set = set;
        _volumeZ = volumeZ;
        DeviceBudgetBytes = deviceBudgetBytes ?? (long)(context.Device.GlobalMemoryBytes * DefaultBudgetFraction);
        Program = context.BuildProgram(ProgramSource(), BuildOptions(context.Device), cache, SourceFile);
        // Fail at construction, not in a worker, when a kernel is missing.
        using (new KernelSet(Program)) { }
    }

    public FeatureSet Set => _set;

    public OpenClContext Context { get; }

    /// <summary>The built program (<see cref="OpenClProgram.Origin"/>, <see cref="OpenClProgram.BuildTime"/>).</summary>
    public OpenClProgram Program { get; }

    /// <summary>Most device memory one <see cref="Compute"/> call holds at once; larger working sets are tiled.</summary>
    public long DeviceBudgetBytes { get; }

    /// <summary>
    /// <see cref="KernelSources.StrictOptions"/>, plus correctly rounded float division and sqrt (the eigenvalues
    /// and the gradient magnitude divide and take roots; OpenCL otherwise allows 2.5 and 3 ulp) where the device offers it.
    /// </summary>
    internal static string BuildOptions(OpenClDevice device) =>
        (device.SingleFpConfig & Native.Cl.FpCorrectlyRoundedDivideSqrt) != 0
            ? KernelSources.StrictOptions + " -cl-fp32-correctly-rounded-divide-sqrt"
            : KernelSources.StrictOptions;

    /// <summary>The EigenEngine constants as exact float bits, then the two sources.</summary>
    internal static string ProgramSource()
    {
        var header = new StringBuilder("// constants written by OpenClFeatureEngine from ChunkSeg.Kernels.Eigen.EigenEngine (exact bits)\n");
        void Define(string name, float value) => header.Append(CultureInfo.InvariantCulture,
            $"#define {name} as_float(0x{BitConverter.SingleToUInt32Bits(value):x8}u)\n");
        Define("EV_INV3", EigenEngine.Inv3); Define("EV_HALF", EigenEngine.Half); Define("EV_TWO", EigenEngine.Two); Define("EV_ONE", EigenEngine.One);
        Define("EV_ATAN_C0", EigenEngine.AtanC0); Define("EV_ATAN_C1", EigenEngine.AtanC1); Define("EV_ATAN_C2", EigenEngine.AtanC2);
        Define("EV_ATAN_C3", EigenEngine.AtanC3); Define("EV_ATAN_C4", EigenEngine.AtanC4); Define("EV_ATAN_C5", EigenEngine.AtanC5);
        Define("EV_ATAN_C6", EigenEngine.AtanC6); Define("EV_ATAN_C7", EigenEngine.AtanC7);
        Define("EV_PI", EigenEngine.Pi); Define("EV_HALF_PI", EigenEngine.HalfPi); Define("EV_FOUR_OVER_PI", EigenEngine.FourOverPi);
        Define("EV_MINUS_DP1", EigenEngine.MinusDp1); Define("EV_MINUS_DP2", EigenEngine.MinusDp2); Define("EV_MINUS_DP3", EigenEngine.MinusDp3);
        Define("EV_SIN_P0", EigenEngine.SinP0); Define("EV_SIN_P1", EigenEngine.SinP1); Define("EV_SIN_P2", EigenEngine.SinP2);
        Define("EV_COS_P0", EigenEngine.CosP0); Define("EV_COS_P1", EigenEngine.CosP1); Define("EV_COS_P2", EigenEngine.CosP2);
        Define("EV_ROOT3", EigenEngine.Root3);
        return header + "\n" + KernelSources.Load(OpenClConvolution.SourceFile) + "\n" + KernelSources.Load(SourceFile);
    }

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

        using var queue = Context.CreateQueue();
        using var run = new DeviceRun(this, queue);
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
                        var local = new Box3(Long3.Zero, sub.Size);
                        var input = run.Upload(gathered.AsSpan(0, subLength), local);
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
    /// <see cref="OpenClForestPredictor.PredictProbabilities"/> give, bit for bit, without moving the feature matrix
    /// (61 floats per voxel for ilastik's full set) across the bus twice.
    /// <code>
    ///   transfer queue:  upload tile 0 │ upload tile 1 │ read probabilities 0 │ upload tile 2 │ read probabilities 1 …
    ///   compute queue:                 │ features 0 → matrix → forest 0       │ features 1 → matrix → forest 1   …
    /// </code>
    /// Per tile (as <see cref="Compute"/> tiles, the budget also holding the matrix and two outputs), each input
    /// channel's feature images are copied on the device into their planes of a tile-sized matrix
    /// (<paramref name="layout"/>), the forest reads it there, and only the tile's probabilities come back. Two queues
    /// overlap the transfers with the compute: the next tile's sub-blocks are uploaded, and the last tile's
    /// probabilities read, while the current tile computes (double-buffered: two uploads and two outputs in flight).
    /// </summary>
    /// <param name="blocks">Every input channel's C-ordered block of shape (sz, sy, sx), channel after channel.</param>
    /// <param name="layout">The column of each (entry, input channel, component) image in the forest's feature matrix.</param>
    public void Classify(ReadOnlySpan<float> blocks, FeatureMatrixLayout layout, int sz, int sy, int sx, Box3 core, OpenClForestPredictor forest,
        Span<float> probabilities)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(forest);
        if (forest.Context != Context) throw new ArgumentException("the forest must live on this engine's context", nameof(forest));
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

        using var compute = Context.CreateQueue();
        using var transfer = Context.CreateQueue();
        using var run = new DeviceRun(this, compute);
        using var matrix = Context.CreateBuffer((long)maxTile * layout.Channels * sizeof(float));
        var outputs = new OpenClBuffer[2];
        var staging = new float[2][];
        var results = new float[2][];
        var uploads = new (OpenClBuffer[] Buffers, OpenClEvent[] Done)?[2];
        var reads = new OpenClEvent?[2];
        try
        {
            for (int slot = 0; slot < 2; slot++)
            {
                outputs[slot] = Context.CreateBuffer((long)maxTile * classes * sizeof(float));
                staging[slot] = ArrayPool<float>.Shared.Rent(checked(maxSub * channels));
                results[slot] = ArrayPool<float>.Shared.Rent(checked(maxTile * classes));
            }

            // Every channel's sub-block of tile i: gathered into the slot's host staging, written by the transfer queue.
            void StartUpload(int i, ReadOnlySpan<float> source)
            {
                int slot = i % 2;
                Release(uploads[slot]);                  // its staging is free once tile i − 2's writes are done
                var sub = tiles[i].Grow(halo, blockBox);
                int subLength = checked((int)sub.VoxelCount);
                var buffers = new OpenClBuffer[channels];
                var done = new OpenClEvent[channels];
                for (int c = 0; c < channels; c++)
                {
                    var host = staging[slot].AsMemory(c * subLength, subLength);
                    Gather(source.Slice(c * blockLength, blockLength), blockBox, sub, host.Span);
                    buffers[c] = Context.CreateBuffer(subLength * sizeof(float), OpenClAccess.ReadOnly);
                    done[c] = transfer.EnqueueWrite(buffers[c], (ReadOnlyMemory<float>)host);
                }
                transfer.Flush();
                uploads[slot] = (buffers, done);
            }

            StartUpload(0, blocks);
            for (int i = 0; i < tiles.Count; i++)
            {
                int slot = i % 2;
                var tile = tiles[i];
                var sub = tile.Grow(halo, blockBox);
                var local = new Box3(tile.Start - sub.Start, tile.Size);
                int voxels = checked((int)tile.VoxelCount);
                var (buffers, uploaded) = uploads[slot]!.Value;
                using (compute.EnqueueBarrier(uploaded)) { }
                for (int c = 0; c < channels; c++)
                {
                    var input = new DeviceImage(buffers[c], new Box3(Long3.Zero, sub.Size));     // released with its upload
                    int channel = c;
                    foreach (var group in groups)
                        ComputeGroup(run, group, input, local, singleSlice, (entry, component, image) =>
                        {
                            long plane = layout.ChannelOf(entry, channel, component);
                            using var _ = compute.EnqueueCopy(image.Buffer!, matrix, 0, plane * voxels * sizeof(float), (long)voxels * sizeof(float));
                        });
                }
                using (var classified = forest.Enqueue(compute, matrix, voxels, outputs[slot]))
                {
                    compute.Flush();
                    if (i + 1 < tiles.Count) StartUpload(i + 1, blocks);     // ahead of this tile's read on the transfer queue
                    reads[slot] = transfer.EnqueueRead(outputs[slot], results[slot].AsMemory(0, voxels * classes), 0, classified);
                    transfer.Flush();
                }
                if (i > 0) Finish(i - 1, probabilities);
            }
            Finish(tiles.Count - 1, probabilities);
        }
        finally
        {
            // Wait for whatever is still in flight before the host memory goes back to the pool.
            foreach (var read in reads) read?.Dispose();
            foreach (var upload in uploads) Release(upload);
            foreach (var output in outputs) output?.Dispose();
            foreach (var array in staging.Concat(results)) if (array is not null) ArrayPool<float>.Shared.Return(array);
        }

        void Finish(int i, Span<float> output)
        {
            int slot = i % 2;
            reads[slot]!.Dispose();                      // waits for the read
            reads[slot] = null;
            var tile = tiles[i];
            Scatter(results[slot].AsSpan(0, checked((int)tile.VoxelCount * classes)), tile, core, output, classes);
        }

        static void Release((OpenClBuffer[] Buffers, OpenClEvent[] Done)? upload)
        {
            if (upload is not { } u) return;
            foreach (var e in u.Done) e.Dispose();       // waits for the write (unpins the staging)
            foreach (var b in u.Buffers) b.Dispose();    // the driver frees it once the compute commands reading it are done
        }
    }

    /// <summary>The tiles <see cref="Classify"/> splits a core into: its budget also holds the tile's feature matrix, two outputs and the next uploads.</summary>
    internal IReadOnlyList<Box3> ClassifyTiles(Box3 blockBox, Box3 core, FeatureMatrixLayout layout, int classes) =>
        Tiles(blockBox, core, (layout.Channels + 2L * classes) * sizeof(float), 2 * layout.InputChannels - 1);

    /// <summary>
    /// The tiles (block coordinates) a call on a block of <paramref name="blockBox"/> with core <paramref name="core"/>
    /// splits its core into: one (the core) when the working set fits <see cref="DeviceBudgetBytes"/>.
    /// </summary>
    public IReadOnlyList<Box3> Tiles(Box3 blockBox, Box3 core) => Tiles(blockBox, core, 0, 0);

    /// <summary>
    /// As <see cref="Tiles(Box3, Box3)"/>, for a call that also holds <paramref name="bytesPerTileVoxel"/> bytes per tile
    /// voxel (a feature matrix, outputs) and <paramref name="extraInputs"/> more sub-block images (inputs uploaded ahead).
    /// </summary>
    private IReadOnlyList<Box3> Tiles(Box3 blockBox, Box3 core, long bytesPerTileVoxel, int extraInputs)
    {
        var halo = _set.RequiredHalo(_volumeZ);
        bool singleSlice = blockBox.Size.Z == 1;
        var groups = FeatureGeometry.Groups(_set, _volumeZ);
        long maxAllocation = Context.Device.MaxAllocationBytes;
        (long Peak, long Largest) Need(Box3 tile)
        {
            var sub = tile.Grow(halo, blockBox);
            using var dry = new DeviceRun(this, null);
            var input = dry.Upload(default, new Box3(Long3.Zero, sub.Size));
            foreach (var group in groups)
                ComputeGroup(dry, group, input, new Box3(tile.Start - sub.Start, tile.Size), singleSlice, (_, _, _) => { });
            long tileBytes = tile.VoxelCount * bytesPerTileVoxel, inputBytes = sub.VoxelCount * sizeof(float);
            return (dry.PeakBytes + tileBytes + extraInputs * inputBytes, Math.Max(dry.LargestBytes, tileBytes));
        }

        long nz = 1, ny = 1, nx = 1;
        while (true)
        {
            var tiles = Split(core, nz, ny, nx);
            string? why = null;
            foreach (var tile in tiles)
            {
                var (peak, largest) = Need(tile);
                if (peak > DeviceBudgetBytes) why = $"{peak} bytes of device memory (budget {DeviceBudgetBytes})";
                else if (largest > maxAllocation) why = $"a {largest}-byte buffer ({Context.Device.Name} allocates at most {maxAllocation})";
                if (why is not null) break;
            }
            if (why is null) return tiles;
            if (nz < core.Size.Z) nz = Math.Min(core.Size.Z, nz * 2);
            else if (ny < core.Size.Y) ny = Math.Min(core.Size.Y, ny * 2);
            else if (nx < core.Size.X) nx = Math.Min(core.Size.X, nx * 2);
            else
                throw new OpenClException($"one voxel of the core still needs {why} for features {_set}; raise the budget or use smaller scales");
        }
    }

    public void Dispose() => Program.Dispose();

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

    /// <summary>The kernel objects of one call (a <c>cl_kernel</c>'s arguments are per object, so calls do not share them).</summary>
    private sealed class KernelSet : IDisposable
    {
        public KernelSet(OpenClProgram program)
        {
            ConvolveEven = program.CreateKernel("convolve_box_even");
            ConvolveOdd = program.CreateKernel("convolve_box_odd");
            Crop = program.CreateKernel("crop");
            Ops = new[] { "add", "subtract", "multiply", "log3", "magnitude2", "magnitude3", "eigen2", "eigen3" }.Select(program.CreateKernel).ToArray();
        }

        public OpenClKernel ConvolveEven { get; }
        public OpenClKernel ConvolveOdd { get; }
        public OpenClKernel Crop { get; }
        public OpenClKernel[] Ops { get; }

        public void Dispose()
        {
            ConvolveEven.Dispose(); ConvolveOdd.Dispose(); Crop.Dispose();
            foreach (var k in Ops) k.Dispose();
        }
    }

    /// <summary>A device image: its values over <see cref="Box"/> in C order (no buffer in a dry run).</summary>
    private sealed record DeviceImage(OpenClBuffer? Buffer, Box3 Box)
    {
        public long Length => Box.VoxelCount;
    }

    /// <summary>
    /// One call's device state: queue, kernels, buffers and tap buffers; counts the bytes it holds. Without a queue it is a
    /// dry run: the same plan, buffers counted but never allocated, nothing enqueued.
    /// </summary>
    private sealed class DeviceRun : IDisposable
    {
        private readonly OpenClFeatureEngine _engine;
        private readonly OpenClQueue? _queue;
        private readonly KernelSet? _kernels;
        private readonly Dictionary<(int Order, double Sigma, int Radius), OpenClBuffer> _taps = new();
        private readonly HashSet<DeviceImage> _held = new(ReferenceEqualityComparer.Instance);
        private long _heldBytes;

        public DeviceRun(OpenClFeatureEngine engine, OpenClQueue? queue)
        {
            _engine = engine;
            _queue = queue;
            if (queue is not null) _kernels = new KernelSet(engine.Program);
        }

        public long PeakBytes { get; private set; }
        public long LargestBytes { get; private set; }

        private OpenClContext Context => _engine.Context;

        public DeviceImage Upload(ReadOnlySpan<float> values, Box3 box)
        {
            var image = new DeviceImage(_queue is null ? null : Context.CreateBuffer(values, OpenClAccess.ReadOnly), box);
            return Track(image);
        }

        public void Download(DeviceImage image, Span<float> destination) => _queue!.Read(image.Buffer!, destination[..checked((int)image.Length)]);

        public DeviceImage Rent(Box3 box) =>
            Track(new DeviceImage(_queue is null ? null : Context.CreateBuffer(box.VoxelCount * sizeof(float)), box));

        private DeviceImage Track(DeviceImage image)
        {
            long bytes = image.Length * sizeof(float);
            _held.Add(image);
            _heldBytes += bytes;
            PeakBytes = Math.Max(PeakBytes, _heldBytes);
            LargestBytes = Math.Max(LargestBytes, bytes);
            return image;
        }

        public void Return(DeviceImage image)
        {
            if (!_held.Remove(image)) return;
            _heldBytes -= image.Length * sizeof(float);
            image.Buffer?.Dispose();      // the driver keeps the memory until enqueued commands using it are done
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
            var s = source.Box.Size;
            int n = (int)(axis switch { 0 => s.Z, 1 => s.Y, _ => s.X });
            if (n > 1 && kernel.Radius > n - 1)
                throw new ArgumentOutOfRangeException(nameof(kernel),
                    $"kernel radius {kernel.Radius} (sigma {kernel.Sigma}) exceeds {n - 1} = length - 1 along axis {axis}; reflect-101 needs radius <= length - 1. Add halo or use a smaller sigma.");
            var result = Rent(box);
            if (_queue is null) return result;
            var o = box.Start - source.Box.Start;
            var k = (kernel.IsAntisymmetric ? _kernels!.ConvolveOdd : _kernels!.ConvolveEven)
                .SetArg(0, source.Buffer!).SetArg(1, result.Buffer!).SetArg(2, Taps(kernel)).SetArg(3, kernel.Radius)
                .SetArg(4, (int)s.Z).SetArg(5, (int)s.Y).SetArg(6, (int)s.X)
                .SetArg(7, (int)o.Z).SetArg(8, (int)o.Y).SetArg(9, (int)o.X).SetArg(10, axis);
            using var _ = _queue.EnqueueKernel(k, new NDRange(box.Size.X, box.Size.Y, box.Size.Z));
            return result;
        }

        public DeviceImage Crop(DeviceImage image, Box3 box)
        {
            var result = Rent(box);
            if (_queue is null) return result;
            var o = box.Start - image.Box.Start;
            var k = _kernels!.Crop.SetArg(0, image.Buffer!).SetArg(1, result.Buffer!)
                .SetArg(2, (int)image.Box.Size.Y).SetArg(3, (int)image.Box.Size.X)
                .SetArg(4, (int)o.Z).SetArg(5, (int)o.Y).SetArg(6, (int)o.X);
            using var _ = _queue.EnqueueKernel(k, new NDRange(box.Size.X, box.Size.Y, box.Size.Z));
            return result;
        }

        /// <summary>An element-wise kernel: for the arithmetic ops (destination, inputs...); for the eigen ops (inputs..., outputs...).</summary>
        public void Elementwise(Op op, params DeviceImage[] images)
        {
            if (_queue is null) return;
            long n = images[0].Length;
            var k = _kernels!.Ops[(int)op];
            var args = op is Op.Eigen2 or Op.Eigen3 ? images : [.. images.Skip(1), images[0]];
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i].Length != n) throw new InvalidOperationException($"{op}: operand {i} holds {args[i].Length} values, not {n}");
                k.SetArg(i, args[i].Buffer!);
            }
            using var _ = _queue.EnqueueKernel(k, new NDRange(n));
        }

        private OpenClBuffer Taps(FirKernel kernel)
        {
            var key = (kernel.Order, kernel.Sigma, kernel.Radius);
            if (!_taps.TryGetValue(key, out var buffer))
                _taps[key] = buffer = Context.CreateBuffer(kernel.Taps, OpenClAccess.ReadOnly);
            return buffer;
        }

        public void Dispose()
        {
            if (_queue is not null)
            {
                try { _queue.Finish(); }
                finally
                {
                    foreach (var image in _held) image.Buffer?.Dispose();
                    foreach (var taps in _taps.Values) taps.Dispose();
                    _kernels?.Dispose();
                }
            }
            _held.Clear();
        }
    }
}
