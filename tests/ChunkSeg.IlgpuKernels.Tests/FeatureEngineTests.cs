using System.Diagnostics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Features;
using ChunkSeg.IlgpuKernels.Features;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// <see cref="GpuFeatureEngine"/> against the CPU <see cref="FeatureEngine"/> (itself tested against ilastik): the same
/// images in the same (entry, component) order, every value within 1e-5 relative (|gpu − cpu| ≤ 1e-5·max(1, |cpu|)); each
/// test prints the largest relative difference per feature kind and how many values are not bit-identical. On PoCL
/// they are all bit-identical, and the tests assert that too where the device promises IEEE float division and sqrt.
/// Seeded volumes; the seed is printed.
/// </summary>
public class FeatureEngineTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    private static GpuDevice Device => TestDevice.Device;

    private static float[] RandomVolume(int seed, long count)
    {
        var rng = new Random(seed);
        var v = new float[count];
        for (long i = 0; i < count; i++) v[i] = rng.Next(8) == 0 ? 0f : (float)(rng.NextDouble() * 255);
        return v;
    }

    /// <summary>Every kind at every scale, except the structure tensor below 0.7 (its gradient sigma 0.15 has no derivative kernel; both engines refuse it).</summary>
    private static FeatureSet AllKinds(double[] scales, bool in2D = false) =>
        new(FeatureSet.IlastikOrder.SelectMany(k => Scales(k, scales).Select(s => new FeatureEntry(k, s, in2D))).ToList());

    private static IEnumerable<double> Scales(FeatureKind kind, double[] scales) =>
        kind == FeatureKind.StructureTensorEigenvalues ? scales.Where(s => s >= 0.7) : scales;

    private static List<(int Entry, int Component, float[] Values)> Collect(IFeatureEngine engine, float[] block, int sz, int sy, int sx, Box3 core)
    {
        var images = new List<(int, int, float[])>();
        engine.Compute(block, sz, sy, sx, core, (entry, component, image) => images.Add((entry, component, image.ToArray())));
        return images;
    }

    /// <summary>Device vs CPU; returns the device images for further comparisons.</summary>
    private List<(int Entry, int Component, float[] Values)> AssertParity(FeatureSet set, long volumeZ, float[] block, int sz, int sy, int sx, Box3? coreOrNull = null,
        long? budget = null, string what = "", int minTiles = 1)
    {
        var core = coreOrNull ?? new Box3(Long3.Zero, new Long3(sz, sy, sx));
        var expected = Collect(new FeatureEngine(set, volumeZ), block, sz, sy, sx, core);
        var engine = new GpuFeatureEngine(Device, set, volumeZ, budget);
        int tiles = engine.Tiles(new Box3(Long3.Zero, new Long3(sz, sy, sx)), core).Count;
        Assert.True(tiles >= minTiles, $"expected at least {minTiles} tiles, got {tiles}");
        var clock = Stopwatch.StartNew();
        var actual = Collect(engine, block, sz, sy, sx, core);
        output.WriteLine($"{what}: block {sz}x{sy}x{sx}, core {core}, {set.Entries.Count} entries, {tiles} tile(s), device {clock.ElapsedMilliseconds} ms " +
                         $"({Device.Describe()})");

        Assert.Equal(expected.Select(e => (e.Entry, e.Component)), actual.Select(a => (a.Entry, a.Component)));
        var worst = new Dictionary<FeatureKind, (double Relative, long NotIdentical, long Values)>();
        for (int i = 0; i < expected.Count; i++)
        {
            var kind = set.Entries[expected[i].Entry].Kind;
            var (cpu, gpu) = (expected[i].Values, actual[i].Values);
            Assert.Equal(cpu.Length, gpu.Length);
            var (rel, differing, count) = worst.GetValueOrDefault(kind);
            for (int v = 0; v < cpu.Length; v++)
            {
                double r = Math.Abs((double)gpu[v] - cpu[v]) / Math.Max(1, Math.Abs((double)cpu[v]));
                if (!(r <= Tolerance))
                    Assert.Fail($"{what}: {set.Entries[expected[i].Entry]} component {expected[i].Component} voxel {v}: device {gpu[v]:R}, CPU {cpu[v]:R}");
                rel = Math.Max(rel, r);
                if (BitConverter.SingleToInt32Bits(cpu[v]) != BitConverter.SingleToInt32Bits(gpu[v])) differing++;
            }
            worst[kind] = (rel, differing, count + cpu.Length);
        }
        foreach (var (kind, (rel, differing, count)) in worst)
            output.WriteLine($"  {kind,-30} max rel diff {rel:E2}, {differing}/{count} values not bit-identical");
        // Bit for bit: the kernels pin every rounding (Arithmetic/FloatOps.cs), so nothing may differ.
        Assert.All(worst, w => Assert.Equal(0, w.Value.NotIdentical));
        return actual;
    }

    [Theory]
    [InlineData(FeatureKind.GaussianSmoothing)]
    [InlineData(FeatureKind.LaplacianOfGaussian)]
    [InlineData(FeatureKind.GaussianGradientMagnitude)]
    [InlineData(FeatureKind.DifferenceOfGaussians)]
    [InlineData(FeatureKind.StructureTensorEigenvalues)]
    [InlineData(FeatureKind.HessianOfGaussianEigenvalues)]
    public void Every_kind_at_every_ilastik_scale_matches_the_cpu(FeatureKind kind)
    {
        // Scale 10 pre-smooths with sigma 9.95 (radius 35): every axis holds 36+ voxels.
        const int seed = 1701, sz = 37, sy = 39, sx = 41;
        output.WriteLine($"seed {seed}");
        var set = new FeatureSet(Scales(kind, FeatureSet.IlastikScales).Select(s => new FeatureEntry(kind, s)).ToList());
        AssertParity(set, sz, RandomVolume(seed, sz * sy * sx), sz, sy, sx, what: kind.ToString());
    }

    [Fact]
    public void Anisotropic_axis_scales_match_the_cpu()
    {
        const int seed = 7, sz = 19, sy = 27, sx = 30;
        var set = AllKinds([1.0, 1.6, 3.5]).WithAxisScales(FeatureSet.ForVoxelSize(2, 1, 1.25));   // z sigmas x0.5, x sigmas x0.8
        AssertParity(set, sz, RandomVolume(seed, sz * sy * sx), sz, sy, sx, what: $"axis scales {set.AxisScales}, seed {seed}");
        AssertParity(set.WithVigraStructureTensor(), sz, RandomVolume(seed + 1, sz * sy * sx), sz, sy, sx, what: "vigra structure tensor");
    }

    [Fact]
    public void Two_d_entries_and_z_fallbacks_match_the_cpu()
    {
        const int seed = 11, sz = 14, sy = 31, sx = 28;
        // 2D entries (per slice) next to 3D ones at the same scale (separate pre-smoothing groups, interleaved in the set).
        var entries = new List<FeatureEntry>();
        foreach (var k in FeatureSet.IlastikOrder)
            entries.AddRange([new FeatureEntry(k, 1.0, true), new FeatureEntry(k, 1.0), new FeatureEntry(k, 3.5, true), new FeatureEntry(k, 3.5), new FeatureEntry(k, 0.7, true)]);
        AssertParity(new FeatureSet(entries), sz, RandomVolume(seed, sz * sy * sx), sz, sy, sx, what: $"2D entries, seed {seed}");
    }

    [Fact]
    public void A_two_d_volume_matches_the_cpu()
    {
        const int seed = 13, sy = 57, sx = 61;
        AssertParity(AllKinds(FeatureSet.IlastikScales), 1, RandomVolume(seed, sy * sx), 1, sy, sx, what: $"2D volume, seed {seed}");
    }

    [Fact]
    public void Odd_block_shapes_match_the_cpu()
    {
        var set = AllKinds([0.3, 0.7, 1.0, 1.6]);
        int seed = 17;
        foreach (var (sz, sy, sx) in new[] { (11, 17, 19), (7, 5, 13), (5, 23, 6) })
            AssertParity(set, 50, RandomVolume(seed++, sz * sy * sx), sz, sy, sx, what: $"{sz}x{sy}x{sx}, seed {seed - 1}");
    }

    [Fact]
    public void A_core_inside_the_block_matches_the_cpu()
    {
        const int seed = 19, sz = 30, sy = 33, sx = 35;
        var core = Box3.FromBounds(new Long3(7, 5, 9), new Long3(20, 25, 27));
        AssertParity(AllKinds([0.7, 1.0, 1.6, 3.5]), 400, RandomVolume(seed, sz * sy * sx), sz, sy, sx, core, what: $"inner core, seed {seed}");
    }

    [Fact]
    public void The_tiled_path_equals_the_untiled_one()
    {
        // Small: every tile recomputes nearly the whole block (the halo of scale 3.5 spans it), and the CPU accelerator is slow.
        const int seed = 23, sz = 18, sy = 19, sx = 21;
        var set = AllKinds([0.7, 1.6, 3.5]);
        var block = RandomVolume(seed, sz * sy * sx);
        var whole = new Box3(Long3.Zero, new Long3(sz, sy, sx));
        var untiled = AssertParity(set, sz, block, sz, sy, sx, what: "untiled");
        // A budget of a few per cent of the block's working set forces z-slabs, and a smaller one y bands too (more
        // tiles than the sz z-slabs there can be).
        foreach (var (budget, minTiles) in new[] { (600_000L, 2), (200_000L, sz + 1) })
        {
            var tiled = AssertParity(set, sz, block, sz, sy, sx, budget: budget, what: $"budget {budget} B", minTiles: minTiles);
            for (int i = 0; i < untiled.Count; i++)
                Assert.True(untiled[i].Values.AsSpan().SequenceEqual(tiled[i].Values), $"image {i} differs between the tiled and untiled device paths");
        }
        var core = Box3.FromBounds(new Long3(2, 3, 2), new Long3(15, 16, 18));
        AssertParity(set, 200, block, sz, sy, sx, core, budget: 300_000, what: "tiled inner core", minTiles: 2);
        _ = whole;
    }

    [Fact]
    public void A_structure_tensor_below_its_smallest_scale_is_refused_like_the_cpu()
    {
        var set = new FeatureSet([new FeatureEntry(FeatureKind.StructureTensorEigenvalues, 0.3)]);
        var block = RandomVolume(3, 8 * 9 * 10);
        var cpu = Assert.Throws<ArgumentOutOfRangeException>(() => Collect(new FeatureEngine(set, 8), block, 8, 9, 10, new Box3(Long3.Zero, new Long3(8, 9, 10))));
        var engine = new GpuFeatureEngine(Device, set, 8);
        var gpu = Assert.Throws<ArgumentOutOfRangeException>(() => Collect(engine, block, 8, 9, 10, new Box3(Long3.Zero, new Long3(8, 9, 10))));
        Assert.Equal(cpu.Message, gpu.Message);
    }

    [Fact]
    public void A_budget_too_small_for_one_voxel_is_refused_with_the_numbers()
    {
        var engine = new GpuFeatureEngine(Device, AllKinds([1.0]), 20, deviceBudgetBytes: 64);
        var e = Assert.Throws<InvalidOperationException>(() => engine.Tiles(new Box3(Long3.Zero, new Long3(8, 8, 8)), new Box3(Long3.Zero, new Long3(8, 8, 8))));
        Assert.Contains("budget 64", e.Message);
    }

    [Fact]
    public void One_engine_serves_several_threads_at_once()
    {
        const int sz = 15, sy = 21, sx = 23;
        var set = AllKinds([0.7, 1.6]);
        var engine = new GpuFeatureEngine(Device, set, sz);
        var blocks = Enumerable.Range(0, 4).Select(i => RandomVolume(100 + i, sz * sy * sx)).ToArray();
        var whole = new Box3(Long3.Zero, new Long3(sz, sy, sx));
        var expected = blocks.Select(b => Collect(new FeatureEngine(set, sz), b, sz, sy, sx, whole)).ToArray();
        var actual = new List<(int, int, float[])>[blocks.Length];
        Parallel.For(0, blocks.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => actual[i] = Collect(engine, blocks[i], sz, sy, sx, whole));
        for (int b = 0; b < blocks.Length; b++)
        for (int i = 0; i < expected[b].Count; i++)
        {
            var (cpu, gpu) = (expected[b][i].Values, actual[b][i].Item3);
            for (int v = 0; v < cpu.Length; v++)
                Assert.True(Math.Abs((double)gpu[v] - cpu[v]) <= Tolerance * Math.Max(1, Math.Abs((double)cpu[v])), $"block {b} image {i} voxel {v}");
        }
    }

    [Fact]
    public void The_whole_ilastik_table_matches_the_cpu()
    {
        // 37 entries, 61 channels; scale 10 needs 36 voxels per axis, so the block is barely larger (the CPU accelerator is slow).
        const int seed = 29, sz = 37, sy = 38, sx = 39;
        var block = RandomVolume(seed, sz * sy * sx);
        var clock = Stopwatch.StartNew();
        Collect(new FeatureEngine(FeatureSet.IlastikFull, sz), block, sz, sy, sx, new Box3(Long3.Zero, new Long3(sz, sy, sx)));
        output.WriteLine($"CPU FeatureEngine (1 thread): {clock.ElapsedMilliseconds} ms");
        AssertParity(FeatureSet.IlastikFull, sz, block, sz, sy, sx, what: $"IlastikFull, seed {seed}");
    }

    [Fact]
    public void The_ilastik_3d_fixture_features_match_the_cpu()
    {
        using var project = IlastikProject.Open(SharedData.Require("ilastik/PixelClass3D.ilp"));
        var s = project.ReadFeatureSelection();
        var set = FeatureSet.FromIlastikSelection(s.FeatureIds, s.Scales, s.Selection, s.ComputeIn2d);
        using var volume = VolumeStore.Open(SharedData.Require("ilastik/Data_3D.h5") + "/data");
        var info = volume.Info;
        string axes = info.Axes.Names;
        int sz = axes.Contains('z') ? (int)info.Shape[axes.IndexOf('z')] : 1;
        int sy = (int)info.Shape[axes.IndexOf('y')], sx = (int)info.Shape[axes.IndexOf('x')];
        var raw = new byte[sz * sy * sx];
        volume.Read(NdBox.Whole(info.Shape), raw.AsSpan());
        var block = raw.Select(b => (float)b).ToArray();
        Assert.Equal(project.FeatureNames(), set.ChannelNames(sz));
        AssertParity(set, sz, block, sz, sy, sx, what: $"PixelClass3D.ilp on Data_3D.h5 ({set.ChannelCount(sz)} channels)");
    }
}
