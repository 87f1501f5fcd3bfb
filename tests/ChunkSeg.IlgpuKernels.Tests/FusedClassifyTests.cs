using ChunkSeg.Contracts.Geometry;
using ChunkSeg.IlgpuKernels.Features;
using ChunkSeg.IlgpuKernels.Forest;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Forest;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// <see cref="GpuFeatureEngine.Classify"/> (features → forest with the feature matrix kept on the device, uploads and
/// reads on a second stream) against the CPU doing the same in two steps: <see cref="FeatureEngine"/> per input channel,
/// the matrix assembled in ilastik's column order (<see cref="FeatureMatrixLayout"/>), then <see cref="ForestPredictor"/>
/// or <see cref="IlastikClassifier"/>. Bit for bit, for one and two input channels, inner cores, a 2D volume, and budgets
/// small enough to split the core into many tiles (the double-buffered uploads and reads). Blocks are small: ILGPU's CPU
/// accelerator is slow.
/// </summary>
public class FusedClassifyTests(ITestOutputHelper output)
{
    private static GpuDevice Device => TestDevice.Device;

    private static readonly FeatureSet Set3D = new([
        new(FeatureKind.GaussianSmoothing, 0.7), new(FeatureKind.LaplacianOfGaussian, 1.0), new(FeatureKind.GaussianGradientMagnitude, 1.6),
        new(FeatureKind.DifferenceOfGaussians, 1.0), new(FeatureKind.StructureTensorEigenvalues, 1.0), new(FeatureKind.HessianOfGaussianEigenvalues, 1.6),
    ]);

    private static float[] RandomBlocks(int seed, int channels, long voxels)
    {
        var rng = new Random(seed);
        var v = new float[channels * voxels];
        // Smooth-ish structure (so the forest's splits fall among the values) plus noise and exact zeros.
        for (long i = 0; i < v.Length; i++) v[i] = rng.Next(10) == 0 ? 0f : (float)(100 * Math.Sin(i * 0.013) + rng.NextDouble() * 60);
        return v;
    }

    /// <summary>The CPU's first step: the features of every channel over the core, in the forest's planar matrix.</summary>
    private static float[] CpuMatrix(FeatureSet set, long volumeZ, FeatureMatrixLayout layout, float[] blocks, Long3 shape, Box3 core)
    {
        int n = (int)shape.Volume, voxels = (int)core.VoxelCount;
        var engine = new FeatureEngine(set, volumeZ);
        var planar = new float[layout.Channels * voxels];
        for (int c = 0; c < layout.InputChannels; c++)
        {
            int channel = c;
            engine.Compute(blocks.AsSpan(c * n, n), (int)shape.Z, (int)shape.Y, (int)shape.X, core,
                (entry, component, image) => image.CopyTo(planar.AsSpan(layout.ChannelOf(entry, channel, component) * voxels)));
        }
        return planar;
    }

    /// <summary>A forest trained on the CPU features of the block itself, so its thresholds lie among the values it will see.</summary>
    private static RandomForest TrainOn(float[] planar, int features, int voxels, int classes, int trees, int seed)
    {
        var rng = new Random(seed);
        const int samples = 400;
        var x = new float[samples * features];
        var labels = new int[samples];
        for (int s = 0; s < samples; s++)
        {
            int v = rng.Next(voxels);
            for (int f = 0; f < features; f++) x[s * features + f] = planar[f * voxels + v];
            labels[s] = Math.Clamp((int)((x[s * features] + 40 + rng.Next(-60, 60)) / 240 * classes), 0, classes - 1);   // by the smoothed intensity, noisily
        }
        return ForestTrainer.Train(x, features, labels, Enumerable.Range(1, classes).ToArray(),
            new ForestTrainingOptions(Trees: trees, Seed: (ulong)seed, MaxDepth: 8));
    }

    /// <summary>
    /// The fused call against the CPU's two steps. With <paramref name="ilastik"/> the forest is ilastik's combination
    /// of three forests with its classes mapped to label channels out of order (and one channel no class maps to).
    /// </summary>
    private void AssertFusedEqualsCpu(FeatureSet set, long volumeZ, int channels, Long3 shape, Box3 core, int classes, long? budget, int minTiles, int seed,
        bool ilastik = false)
    {
        var layout = new FeatureMatrixLayout(set, volumeZ, channels);
        var blocks = RandomBlocks(seed, channels, shape.Volume);
        var matrix = CpuMatrix(set, volumeZ, layout, blocks, shape, core);
        int voxels = (int)core.VoxelCount;

        float[] expected;
        GpuForestPredictor predictor;
        if (ilastik)
        {
            var forests = Enumerable.Range(0, 3).Select(i => TrainOn(matrix, layout.Channels, voxels, classes, trees: 7 + i, seed + 10 * i)).ToArray();
            var known = Enumerable.Range(1, classes).Select(l => (uint)(classes + 1 - l)).ToArray();     // class i → channel classes − i
            var classifier = new IlastikClassifier(forests, known, classes + 1);
            expected = new float[voxels * classifier.LabelCount];
            classifier.PredictProbabilities(matrix, voxels, expected);
            predictor = new GpuForestPredictor(Device, classifier);
        }
        else
        {
            var forest = TrainOn(matrix, layout.Channels, voxels, classes, trees: 20, seed);
            expected = new float[voxels * classes];
            ForestPredictor.PredictProbabilities(forest, matrix, voxels, expected);
            predictor = new GpuForestPredictor(Device, forest);
        }
        int outputs = predictor.OutputChannels;

        using (predictor)
        {
            var engine = new GpuFeatureEngine(Device, set, volumeZ, budget);
            int tiles = engine.ClassifyTiles(new Box3(Long3.Zero, shape), core, layout, outputs).Count;
            Assert.True(tiles >= minTiles, $"expected at least {minTiles} tiles, got {tiles}");
            var actual = new float[expected.Length + 5];
            Array.Fill(actual, -1f);                                  // every core value must be written, nothing beyond it
            engine.Classify(blocks, layout, (int)shape.Z, (int)shape.Y, (int)shape.X, core, predictor, actual);
            output.WriteLine($"block {shape}, core {core}, {channels} channel(s), {layout.Channels} features, {outputs} outputs, {tiles} tile(s)");

            for (int i = 0; i < expected.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"voxel {i / outputs} channel {i % outputs}: cpu {expected[i]:R}, device {actual[i]:R}");
            Assert.All(actual[expected.Length..], v => Assert.Equal(-1f, v));
        }
        Assert.Contains(expected, p => p is > 0.05f and < 0.95f);     // a forest that says something, not all 0/1
    }

    /// <summary>A one-tree forest over <paramref name="features"/> features (for the refusal test).</summary>
    private static RandomForest Stub(int features, int classes)
    {
        var x = new float[2 * features];
        x[features] = 1;
        return ForestTrainer.Train(x, features, [0, 1 % classes], Enumerable.Range(1, classes).ToArray(), new ForestTrainingOptions(Trees: 1, Seed: 1));
    }

    [Fact]
    public void One_channel_whole_block_equals_the_cpu() =>
        AssertFusedEqualsCpu(Set3D, 14, 1, new Long3(14, 16, 17), new Box3(Long3.Zero, new Long3(14, 16, 17)), classes: 2, budget: null, minTiles: 1, seed: 1);

    [Fact]
    public void Two_channels_inner_core_three_classes_equals_the_cpu() =>
        AssertFusedEqualsCpu(Set3D, 40, 2, new Long3(15, 17, 18), new Box3(new Long3(4, 5, 3), new Long3(7, 8, 10)), classes: 3, budget: null, minTiles: 1, seed: 2);

    [Fact]
    public void Ilastik_combined_forests_on_two_channels_equal_the_cpu() =>
        AssertFusedEqualsCpu(Set3D, 40, 2, new Long3(15, 16, 17), new Box3(new Long3(3, 2, 4), new Long3(9, 11, 10)), classes: 3, budget: null, minTiles: 1, seed: 5,
            ilastik: true);

    [Fact]
    public void Many_tiles_through_the_double_buffered_pipeline_equal_the_cpu() =>
        AssertFusedEqualsCpu(Set3D, 30, 2, new Long3(18, 19, 20), new Box3(new Long3(3, 2, 4), new Long3(13, 15, 14)), classes: 4, budget: 250_000, minTiles: 6, seed: 3);

    [Fact]
    public void A_single_slice_with_2D_features_equals_the_cpu()
    {
        var set2D = new FeatureSet(Set3D.Entries.Select(e => e with { In2D = true }).ToList());
        AssertFusedEqualsCpu(set2D, 1, 1, new Long3(1, 30, 33), new Box3(new Long3(0, 4, 3), new Long3(1, 22, 26)), classes: 2, budget: 40_000, minTiles: 2, seed: 4);
    }

    [Fact]
    public void A_forest_for_other_features_is_refused_before_any_work()
    {
        var layout = new FeatureMatrixLayout(Set3D, 20, 1);
        var engine = new GpuFeatureEngine(Device, Set3D, 20);
        using var predictor = new GpuForestPredictor(Device, Stub(layout.Channels + 1, 2));
        var block = new float[10 * 10 * 10];
        var e = Assert.Throws<ArgumentException>(() => engine.Classify(block, layout, 10, 10, 10, new Box3(Long3.Zero, new Long3(10, 10, 10)), predictor, new float[2000]));
        Assert.Contains($"reads {layout.Channels + 1} features", e.Message);
    }
}
