using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Features;

namespace ChunkSeg.Kernels.Tests;

/// <summary>The engine's exactness: the same bits whatever the block, the thread count or the SIMD width.</summary>
public class FeatureEngineTests
{
    internal static float[] SmoothRandomVolume(int sz, int sy, int sx, int seed)
    {
        var rng = new Random(seed);
        var v = new float[sz * sy * sx];
        for (int z = 0; z < sz; z++)
        for (int y = 0; y < sy; y++)
        for (int x = 0; x < sx; x++)
            v[(z * sy + y) * sx + x] = (float)(100 + 60 * Math.Sin(x * 0.3 + seed) * Math.Cos(y * 0.2) + 40 * Math.Sin(z * 0.5) + rng.Next(0, 30));
        return v;
    }

    /// <summary>All feature images of the set over a block, as [entry][component] arrays.</summary>
    internal static Dictionary<(int, int), float[]> Compute(FeatureSet set, float[] block, int sz, int sy, int sx, long volumeZ, int threads = 1)
    {
        var images = new Dictionary<(int, int), float[]>();
        new FeatureEngine(set, volumeZ, threads).Compute(block, sz, sy, sx, (e, c, img) => images[(e, c)] = img.ToArray());
        return images;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void A_halo_padded_block_equals_the_whole_volume_on_its_core_bit_for_bit(int seed)
    {
        var rng = new Random(seed * 31);
        string[] pool = ["GaussianSmoothing:0.3,1.6", "LaplacianOfGaussian:0.7,1.0", "GaussianGradientMagnitude:1.0,3.5",
                         "DifferenceOfGaussians:1.6", "StructureTensorEigenvalues:0.7,1.6", "HessianOfGaussianEigenvalues:1.0/2d,1.6",
                         "StructureTensorEigenvalues:1.0/2d", "HessianOfGaussianEigenvalues:0.7"];
        var set = FeatureSet.Parse(string.Join(";", pool.Where(_ => rng.Next(2) == 0).DefaultIfEmpty(pool[seed])));
        var shape = new Long3(rng.Next(13, 26), rng.Next(13, 30), rng.Next(13, 34));
        var volume = SmoothRandomVolume((int)shape.Z, (int)shape.Y, (int)shape.X, seed);
        var whole = Compute(set, volume, (int)shape.Z, (int)shape.Y, (int)shape.X, shape.Z);
        var halo = set.RequiredHalo(shape.Z);

        var grid = new ChunkGrid(shape, 1, new Long3(rng.Next(1, 12), rng.Next(1, 14), rng.Next(1, 16)), halo);
        foreach (var chunk in grid.Enumerate())
        {
            var r = chunk.Read;
            var block = new float[r.VoxelCount];
            for (long z = 0; z < r.Size.Z; z++)
            for (long y = 0; y < r.Size.Y; y++)
                volume.AsSpan((int)(((r.Start.Z + z) * shape.Y + r.Start.Y + y) * shape.X + r.Start.X), (int)r.Size.X)
                      .CopyTo(block.AsSpan((int)((z * r.Size.Y + y) * r.Size.X), (int)r.Size.X));
            var part = Compute(set, block, (int)r.Size.Z, (int)r.Size.Y, (int)r.Size.X, shape.Z);
            foreach (var ((entry, component), image) in part)
            {
                var expected = whole[(entry, component)];
                for (long z = chunk.Core.Start.Z; z < chunk.Core.End.Z; z++)
                for (long y = chunk.Core.Start.Y; y < chunk.Core.End.Y; y++)
                for (long x = chunk.Core.Start.X; x < chunk.Core.End.X; x++)
                {
                    float w = expected[(z * shape.Y + y) * shape.X + x];
                    float c = image[((z - r.Start.Z) * r.Size.Y + y - r.Start.Y) * r.Size.X + x - r.Start.X];
                    if (BitConverter.SingleToInt32Bits(w) != BitConverter.SingleToInt32Bits(c))
                        Assert.Fail($"seed {seed}: {set.Entries[entry]} [{component}] at ({z},{y},{x}) in {chunk.Id}: chunk {c:R} != whole {w:R} (set {set})");
                }
            }
        }
    }

    [Fact]
    public void Scratch_memory_is_bounded_by_the_block_and_shrinks_with_the_core()
    {
        const int edge = 80;
        var volume = SmoothRandomVolume(edge, edge, edge, 2);
        var engine = new FeatureEngine(FeatureSet.IlastikFull, edge);
        engine.Compute(volume, edge, edge, edge, (_, _, _) => { });
        long block = edge * edge * edge;
        // The planner budgets MaxScratchBuffers values per block voxel; docs/performance.md states the measured peaks
        // (the whole table holds a scale's pre-smoothed image, XY images and outputs at once: 17 block-sized images).
        Assert.InRange(engine.PeakScratchValues, 10 * block, FeatureEngine.MaxScratchBuffers * block);
        long whole = engine.PeakScratchValues;

        // A 32³ core with the full table's halo (38 would exceed the block; 24 reaches every scale but σ = 10's edges):
        // images are held over the core grown by what each later pass reads, not over the block.
        engine.Compute(volume, edge, edge, edge, new Box3(Long3.Uniform(24), Long3.Uniform(32)), (_, _, image) => Assert.Equal(32 * 32 * 32, image.Length));
        Assert.InRange(engine.PeakScratchValues, 1, whole / 2);

        var small = new FeatureEngine(FeatureSet.Parse("gs:1.0"), edge);
        small.Compute(volume, edge, edge, edge, (_, _, _) => { });
        Assert.InRange(small.PeakScratchValues, 1, 8 * block);
    }

    /// <summary>
    /// The planner's budget holds for any selection, not just ilastik's table: random sets (several entries per scale,
    /// 2D and 3D filters, both structure tensor orders), whole blocks and cores, one or two threads.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Scratch_memory_stays_within_the_planners_budget_for_any_selection(int seed)
    {
        var rng = new Random(seed * 104729);
        string[] kinds = ["gs", "log", "ggm", "dog", "ste", "hoge"];
        double[] scales = [0.3, 0.7, 1.0, 1.6, 3.5];   // as ilastik, σ = 0.3 for smoothing only
        var entries = new List<string>();
        foreach (var kind in kinds)
            foreach (var scale in scales)
                if ((scale > 0.3 || kind == "gs") && rng.Next(3) > 0) entries.Add($"{kind}:{scale.ToString(System.Globalization.CultureInfo.InvariantCulture)}{(rng.Next(4) == 0 ? "/2d" : "")}");
        var set = FeatureSet.Parse(string.Join(";", entries.DefaultIfEmpty("ste:1.0")));
        if (seed % 2 == 0) set = set.WithVigraStructureTensor();
        int sz = seed == 6 ? 1 : 34, sy = 36, sx = 38;
        var volume = SmoothRandomVolume(sz, sy, sx, seed);
        long block = (long)sz * sy * sx;
        var engine = new FeatureEngine(set, sz, maxThreads: 1 + seed % 2);
        engine.Compute(volume, sz, sy, sx, (_, _, _) => { });
        Assert.InRange(engine.PeakScratchValues, 1, FeatureEngine.MaxScratchBuffers * block);
        var core = new Box3(new Long3(sz == 1 ? 0 : 5, 7, 6), new Long3(sz == 1 ? 1 : 20, 22, 25));
        engine.Compute(volume, sz, sy, sx, core, (_, _, _) => { });
        Assert.InRange(engine.PeakScratchValues, 1, FeatureEngine.MaxScratchBuffers * block);
    }

    /// <summary>
    /// The core-only computation against the whole block's images cropped to that core, bit for bit: random feature
    /// sets, blocks and cores (touching the block's edges or not), 3D, 2D filters and one-slice blocks.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void A_core_box_gives_the_whole_blocks_values_there_bit_for_bit(int seed)
    {
        var rng = new Random(seed * 7919);
        string[] pool = ["GaussianSmoothing:0.3,1.6,3.5", "LaplacianOfGaussian:0.7,1.0", "GaussianGradientMagnitude:1.0,3.5",
                         "DifferenceOfGaussians:1.6,5.0", "StructureTensorEigenvalues:0.7,1.6,3.5", "HessianOfGaussianEigenvalues:1.0/2d,1.6",
                         "StructureTensorEigenvalues:1.0/2d", "HessianOfGaussianEigenvalues:0.7", "GaussianGradientMagnitude:0.7/2d"];
        var set = FeatureSet.Parse(string.Join(";", pool.Where(_ => rng.Next(2) == 0).DefaultIfEmpty(pool[seed])));
        bool oneSlice = seed == 6;
        int sz = oneSlice ? 1 : rng.Next(20, 34), sy = rng.Next(20, 40), sx = rng.Next(20, 44);
        var volume = SmoothRandomVolume(sz, sy, sx, seed);
        var whole = Compute(set, volume, sz, sy, sx, sz);
        for (int trial = 0; trial < 4; trial++)
        {
            var start = new Long3(rng.Next(0, sz), rng.Next(0, sy), rng.Next(0, sx));
            var size = new Long3(rng.Next(1, sz - (int)start.Z + 1), rng.Next(1, sy - (int)start.Y + 1), rng.Next(1, sx - (int)start.X + 1));
            var core = new Box3(start, size);
            var images = new Dictionary<(int, int), float[]>();
            new FeatureEngine(set, sz).Compute(volume, sz, sy, sx, core, (e, c, img) => images[(e, c)] = img.ToArray());
            Assert.Equal(whole.Count, images.Count);
            foreach (var (key, image) in images)
            {
                int i = 0;
                for (long z = start.Z; z < start.Z + size.Z; z++)
                for (long y = start.Y; y < start.Y + size.Y; y++)
                for (long x = start.X; x < start.X + size.X; x++, i++)
                {
                    float w = whole[key][(z * sy + y) * sx + x];
                    if (BitConverter.SingleToInt32Bits(w) != BitConverter.SingleToInt32Bits(image[i]))
                        Assert.Fail($"seed {seed}: {set.Entries[key.Item1]} [{key.Item2}] at ({z},{y},{x}), core {core} of {sz}x{sy}x{sx}: {image[i]:R} != {w:R} (set {set})");
                }
            }
        }
    }

    [Fact]
    public void Images_written_in_place_are_the_sinks_images()
    {
        var set = FeatureSet.Parse("gs:0.7;ste:1.0;hoge:1.6,0.7/2d;dog:1.0;ggm:1.0;log:0.7");
        var volume = SmoothRandomVolume(22, 27, 31, 9);
        var core = new Box3(new Long3(3, 4, 5), new Long3(15, 19, 21));
        var sunk = new Dictionary<(int, int), float[]>();
        var engine = new FeatureEngine(set, 22, maxThreads: 2);
        engine.Compute(volume, 22, 27, 31, core, (e, c, img) => sunk[(e, c)] = img.ToArray());

        // Destinations with room to spare, at an offset into a shared matrix: only the core's values are written.
        int n = (int)core.VoxelCount;
        var matrix = new float[(sunk.Count + 1) * n];
        var slots = sunk.Keys.OrderBy(k => k).Select((k, i) => (k, i)).ToDictionary(x => x.k, x => x.i);
        engine.Compute(volume, 22, 27, 31, core, (e, c) => matrix.AsMemory(slots[(e, c)] * n + 7));
        foreach (var (key, image) in sunk)
            Assert.True(MemoryMarshal.AsBytes(image.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(matrix.AsSpan(slots[key] * n + 7, n))), $"{key} differs");

        var tooShort = Assert.Throws<ArgumentException>(() => engine.Compute(volume, 22, 27, 31, core, (_, _) => new float[n - 1]));
        Assert.Contains($"the core has {n}", tooShort.Message);
    }

    [Fact]
    public void Thread_count_does_not_change_a_bit()
    {
        // 60000 voxels: passes split by rows and eigenvalues split into 3 element ranges.
        var volume = SmoothRandomVolume(30, 40, 50, 5);
        var one = Compute(FeatureSet.Parse("gs:1.0;ste:1.6;hoge:0.7,1.0/2d;ggm:3.5"), volume, 30, 40, 50, 30, threads: 1);
        var three = Compute(FeatureSet.Parse("gs:1.0;ste:1.6;hoge:0.7,1.0/2d;ggm:3.5"), volume, 30, 40, 50, 30, threads: 3);
        foreach (var key in one.Keys)
            Assert.True(MemoryMarshal.AsBytes(one[key].AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(three[key].AsSpan())), $"{key} differs");
    }

    /// <summary>
    /// A fingerprint of the full feature table's bits on a fixed volume. The same test runs with Vector512,
    /// with Vector256 only (DOTNET_EnableAVX512=0) and with no SIMD (DOTNET_EnableHWIntrinsic=0) in
    /// scripts/test.sh: it passes in all three only if every width computes the same bits.
    /// </summary>
    [Fact]
    public void Full_feature_table_has_the_same_bits_at_every_SIMD_width()
    {
        var volume = SmoothRandomVolume(40, 41, 43, 11);
        var images = Compute(FeatureSet.IlastikFull, volume, 40, 41, 43, 40);
        ulong hash = 14695981039346656037UL;   // FNV-1a over every image's bits, in channel order
        foreach (var key in images.Keys.OrderBy(k => k.Item1).ThenBy(k => k.Item2))
            foreach (byte b in MemoryMarshal.AsBytes(images[key].AsSpan()))
                hash = (hash ^ b) * 1099511628211UL;
        Assert.Equal(61, images.Count);
        Assert.Equal(ExpectedFullTableHash, hash);
    }

    // Recorded from the Vector512 run; a SIMD path that computes a different bit changes it.
    private const ulong ExpectedFullTableHash = 13959563479837081871;

    /// <summary>
    /// Fingerprints of feature sets, blocks and cores the full table does not cover (2D filters on 3D data, one-slice
    /// blocks, anisotropic sigmas, VIGRA's structure tensor order, cores inside a halo-padded block, several threads),
    /// recorded from the engine that computed each image pass by pass over whole images (before the passes were fused
    /// plane by plane): any engine must give these bits.
    /// </summary>
    [Theory]
    [InlineData("gs:0.7,3.5;log:1.0/2d;ggm:1.6;dog:5.0/2d;ste:0.7,3.5/2d;hoge:1.6,1.0/2d", 24, 29, 33, 0, 1, 0x9DE0126002C0D1CBUL)]
    [InlineData("gs:0.3,1.0;ggm:0.7/2d;ste:1.6;hoge:0.7/2d,3.5", 1, 37, 41, 0, 1, 0x92817808AF28590BUL)]
    [InlineData("gs:0.3,0.7,1.0;log:1.6;ggm:3.5;dog:1.0;ste:1.6;hoge:1.0,0.7/2d", 30, 34, 36, 1, 2, 0x048861F22F7D87D5UL)]
    [InlineData("ste:1.0,3.5;hoge:1.6;log:0.7", 26, 30, 31, 2, 3, 0x6A6BC58CB010C106UL)]
    [InlineData("ste:1.6;ggm:1.0;gs:5.0", 30, 30, 30, 3, 1, 0x3250B528234A397FUL)]
    public void Feature_images_have_the_recorded_bits(string spec, int sz, int sy, int sx, int variant, int threads, ulong expected)
    {
        var set = FeatureSet.Parse(spec);
        set = variant switch
        {
            2 => set.WithAxisScales(new Sigma3(2.0, 1.0, 0.8)),
            3 => set.WithVigraStructureTensor(),
            _ => set,
        };
        var volume = SmoothRandomVolume(sz, sy, sx, 17 + variant);
        // variant 1: a core inside the block (a chunk's halo-padded read); the others: the whole block.
        var core = variant == 1 ? new Box3(new Long3(9, 5, 11), new Long3(12, 20, 17)) : new Box3(Long3.Zero, new Long3(sz, sy, sx));
        var images = new Dictionary<(int, int), float[]>();
        new FeatureEngine(set, variant == 1 ? 400 : sz, threads).Compute(volume, sz, sy, sx, core, (e, c, img) => images[(e, c)] = img.ToArray());
        ulong hash = 14695981039346656037UL;
        foreach (var key in images.Keys.OrderBy(k => k.Item1).ThenBy(k => k.Item2))
            foreach (byte b in MemoryMarshal.AsBytes(images[key].AsSpan()))
                hash = (hash ^ b) * 1099511628211UL;
        Assert.Equal(set.ChannelCount(sz == 1 ? 1 : 400), images.Count);
        Assert.Equal($"0x{expected:X16}", $"0x{hash:X16}");
    }
}
