using System.Diagnostics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Classifiers;
using ChunkSeg.IlgpuKernels.Forest;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// <see cref="GpuForestPredictor"/> against the CPU (<see cref="ForestPredictor"/> for one forest,
/// <see cref="IlastikClassifier"/> for ilastik's forest of forests), bit for bit: forests trained by
/// <see cref="ForestTrainer"/> with 2–5 classes, several depths and 10–100 trees, on features holding NaN, ±inf, ±0 and
/// every split threshold's neighbouring floats; the batched host path under budgets of one voxel and up; concurrent
/// callers; and ilastik's own forests on the CPU FeatureEngine's features of its 3D fixture. Voxel counts are
/// deliberately not multiples of any group size. Seeds are fixed and printed.
/// </summary>
public class ForestTests(ITestOutputHelper output)
{
    private const int FeatureCount = 7;

    private static GpuDevice Device => TestDevice.Device;

    private static RandomForest Train(int classes, int trees, int? maxDepth, int seed)
    {
        var rng = new Random(seed);
        const int samples = 300;
        var x = new float[samples * FeatureCount];
        var labels = new int[samples];
        for (int i = 0; i < samples; i++)
        {
            for (int f = 0; f < FeatureCount; f++)
                x[i * FeatureCount + f] = rng.Next(8) == 0 ? rng.Next(5) : (float)(rng.NextDouble() * 20 - 10);    // repeated values too
            double score = x[i * FeatureCount] + 0.5 * x[i * FeatureCount + 1] - 0.3 * x[i * FeatureCount + 2] + rng.NextDouble() * 6;
            labels[i] = Math.Clamp((int)((score + 15) / 30 * classes), 0, classes - 1);
        }
        var classLabels = Enumerable.Range(1, classes).ToArray();
        return ForestTrainer.Train(x, FeatureCount, labels, classLabels, new ForestTrainingOptions(Trees: trees, Seed: (ulong)seed, MaxDepth: maxDepth));
    }

    /// <summary>
    /// Planar features: mostly uniform values, with NaN, ±inf, −0 and, for a quarter of the values, a split threshold
    /// of the forests or one of its neighbouring floats (where &lt; and ≤, or a float and a double compare, would differ).
    /// </summary>
    private static float[] RandomFeatures(Random rng, int voxels, IEnumerable<RandomForest> forests)
    {
        var edges = new List<float>();
        foreach (var tree in forests.SelectMany(f => f.Trees))
            for (int k = 0; k < tree.NodeCount; k++)
                if (tree.Feature[k] >= 0)
                {
                    float near = (float)tree.Threshold[k], up = DecisionTree.FloatThreshold(tree.Threshold[k]);
                    edges.AddRange([near, up, MathF.BitDecrement(up), MathF.BitIncrement(up)]);
                }
        var x = new float[(long)FeatureCount * voxels];
        for (long i = 0; i < x.Length; i++)
        {
            int r = rng.Next(1000);
            x[i] = r switch
            {
                < 3 => float.NaN,
                < 6 => float.PositiveInfinity,
                < 9 => float.NegativeInfinity,
                < 11 => -0f,
                < 260 when edges.Count > 0 => edges[rng.Next(edges.Count)],
                _ => (float)(rng.NextDouble() * 24 - 12),
            };
        }
        return x;
    }

    private static void AssertSame(float[] expected, float[] actual, int channels, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int first = -1, differing = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])) continue;
            differing++;
            if (first < 0) first = i;
        }
        if (differing > 0)
            Assert.Fail($"{what}: {differing} values differ; first at voxel {first / channels} channel {first % channels}: " +
                        $"device {actual[first]:R}, CPU {expected[first]:R}");
    }

    /// <summary>An output prefilled with a value no prediction gives, so a voxel left unwritten cannot pass.</summary>
    private static float[] Unwritten(int length)
    {
        var a = new float[length];
        Array.Fill(a, -7f);
        return a;
    }

    public static TheoryData<int, int, int, int> ForestCases => new()
    {
        // classes, trees, max depth (0 = unlimited), voxels
        { 2, 10, 0, 1 },
        { 2, 100, 3, 1237 },
        { 3, 37, 0, 4099 },
        { 3, 10, 8, 65 },
        { 4, 64, 0, 2003 },
        { 5, 100, 0, 3001 },
        { 5, 23, 2, 777 },
    };

    [Theory]
    [MemberData(nameof(ForestCases))]
    public void Forest_equals_the_cpu_bit_for_bit(int classes, int trees, int maxDepth, int voxels)
    {
        int seed = classes * 1000 + trees + maxDepth;
        var forest = Train(classes, trees, maxDepth == 0 ? null : maxDepth, seed);
        var x = RandomFeatures(new Random(seed), voxels, [forest]);
        var expected = new float[voxels * classes];
        ForestPredictor.PredictProbabilities(forest, x, voxels, expected);

        using var gpu = new GpuForestPredictor(Device, forest);
        Assert.Equal(classes, gpu.OutputChannels);
        var actual = Unwritten(voxels * classes);
        gpu.PredictProbabilities(x, voxels, actual);
        AssertSame(expected, actual, classes, $"seed {seed}");
        output.WriteLine($"seed {seed}: {classes} classes, {trees} trees, {voxels} voxels: bit-identical ({Device.Describe()})");
    }

    public static TheoryData<int, int[], uint[], int> IlastikCases => new()
    {
        // classes, trees per forest, known labels, label count
        { 2, [13, 13, 12, 12], [1, 2], 2 },
        { 3, [34, 33, 33], [3, 1, 2], 3 },            // classes mapped to channels out of order
        { 3, [10, 7], [5, 2, 3], 5 },                 // channels 0 and 3 have no class: 0
        { 4, [25, 25, 25, 25], [1, 2, 3, 4], 4 },
        { 5, [20, 20, 20, 20, 20], [2, 3, 4, 5, 6], 6 },
    };

    [Theory]
    [MemberData(nameof(IlastikCases))]
    public void Ilastik_classifier_equals_the_cpu_bit_for_bit(int classes, int[] trees, uint[] knownLabels, int labelCount)
    {
        int seed = 77 + classes * 100 + trees.Length;
        var forests = trees.Select((t, i) => Train(classes, t, null, seed + i)).ToArray();
        var classifier = new IlastikClassifier(forests, knownLabels, labelCount);
        const int voxels = 2049;
        var x = RandomFeatures(new Random(seed), voxels, forests);
        var expected = new float[voxels * labelCount];
        classifier.PredictProbabilities(x, voxels, expected);

        using var gpu = new GpuForestPredictor(Device, classifier);
        Assert.Equal(labelCount, gpu.OutputChannels);
        var actual = Unwritten(voxels * labelCount);
        gpu.PredictProbabilities(x, voxels, actual);
        AssertSame(expected, actual, labelCount, $"seed {seed}");
    }

    [Fact]
    public void Batches_of_a_small_budget_equal_the_cpu()
    {
        var forests = new[] { Train(3, 20, null, 5), Train(3, 15, 6, 6) };
        var classifier = new IlastikClassifier(forests, [1u, 2u, 3u], 3);
        const int voxels = 1001;
        var x = RandomFeatures(new Random(5), voxels, forests);
        var expected = new float[voxels * 3];
        classifier.PredictProbabilities(x, voxels, expected);

        // What one voxel of a batch holds on the device: its features, its probabilities and the kernel's 2·classes scratch.
        long perVoxel = (FeatureCount + 3 + 2 * 3) * sizeof(float);
        // One voxel per batch; a budget that is no whole number of voxels (7 per batch); 64 per batch, leaving a last
        // batch of 41 (its planes lie closer together on the device); 1000, leaving a last batch of one voxel; and room
        // for more than the call (one upload of the whole planar matrix).
        foreach (long budget in new[] { perVoxel, 7 * perVoxel + 3, 64 * perVoxel, 1000 * perVoxel, 4096 * perVoxel })
        {
            using var gpu = new GpuForestPredictor(Device, classifier, batchBudgetBytes: budget);
            Assert.Equal((int)(budget / perVoxel), gpu.BatchVoxels);
            var actual = Unwritten(voxels * 3);
            gpu.PredictProbabilities(x, voxels, actual);
            AssertSame(expected, actual, 3, $"budget {budget} bytes ({gpu.BatchVoxels} voxels per batch)");
        }

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new GpuForestPredictor(Device, classifier, batchBudgetBytes: perVoxel - 1));
        Assert.Contains("does not hold one voxel", e.Message);
    }

    [Fact]
    public void Empty_input_and_wrong_lengths_are_refused_like_the_cpu()
    {
        var forest = Train(2, 10, null, 3);
        using var gpu = new GpuForestPredictor(Device, forest);
        gpu.PredictProbabilities([], 0, []);
        var e = Assert.Throws<ArgumentException>(() => gpu.PredictProbabilities(new float[FeatureCount * 10 - 1], 10, new float[20]));
        Assert.Contains("feature count must match", e.Message);
        Assert.Throws<ArgumentException>(() => gpu.PredictProbabilities(new float[FeatureCount * 10], 10, new float[19]));
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.PredictProbabilities([], -1, []));
    }

    [Fact]
    public void Concurrent_callers_get_their_own_results()
    {
        var forest = Train(3, 40, null, 21);
        // Batches of 300 voxels: every call runs several batches while the others run theirs on their own streams.
        using var gpu = new GpuForestPredictor(Device, forest, batchBudgetBytes: 300 * (FeatureCount + 3 + 2 * 3) * sizeof(float));
        const int callers = 6;
        var inputs = Enumerable.Range(0, callers).Select(i => RandomFeatures(new Random(100 + i), 1000 + 37 * i, [forest])).ToArray();
        var expected = inputs.Select(x =>
        {
            int n = x.Length / FeatureCount;
            var p = new float[n * 3];
            ForestPredictor.PredictProbabilities(forest, x, n, p);
            return p;
        }).ToArray();
        int done = 0;
        Parallel.For(0, callers * 3, new ParallelOptions { MaxDegreeOfParallelism = 4 }, j =>
        {
            int i = j % callers, n = inputs[i].Length / FeatureCount;
            var p = Unwritten(n * 3);
            gpu.PredictProbabilities(inputs[i], n, p);
            AssertSame(expected[i], p, 3, $"caller {j}");
            Interlocked.Increment(ref done);
        });
        Assert.Equal(callers * 3, done);
    }

    /// <summary>
    /// ilastik's own forests (PixelClass3D.ilp: 100 trees in several forests) on the CPU FeatureEngine's features of
    /// the whole of Data_3D.h5, against <see cref="IlastikClassifier"/>.
    /// </summary>
    [Fact]
    public void Ilastik_project_forests_equal_the_cpu()
    {
        using var project = IlastikProject.Open(SharedData.Require("ilastik/PixelClass3D.ilp"));
        var (features, voxels) = ComputeFeatures(project, SharedData.Require("ilastik/Data_3D.h5"));
        var classifier = IlastikClassifierLoader.Load(project);
        int labels = classifier.LabelCount;

        var expected = new float[voxels * labels];
        classifier.PredictProbabilities(features, voxels, expected);
        using var gpu = new GpuForestPredictor(Device, classifier);
        var actual = Unwritten(voxels * labels);
        var clock = Stopwatch.StartNew();
        gpu.PredictProbabilities(features, voxels, actual);
        output.WriteLine($"{classifier.Forests.Count} forests, {classifier.TreeCount} trees, {classifier.FeatureCount} features, {voxels} voxels, " +
                         $"{labels} labels: device {clock.ElapsedMilliseconds} ms ({Device.Describe()})");
        AssertSame(expected, actual, labels, "ilastik project");
        Assert.Contains(expected, p => p is > 0.05f and < 0.95f);      // the forests say something here, not only 0 and 1
    }

    /// <summary>The project's features of a single-channel volume, planar (as IlastikParityTests computes them).</summary>
    private static (float[] Planar, int Voxels) ComputeFeatures(IlastikProject project, string dataFile)
    {
        var s = project.ReadFeatureSelection();
        var set = FeatureSet.FromIlastikSelection(s.FeatureIds, s.Scales, s.Selection, s.ComputeIn2d);
        using var volume = VolumeStore.Open(dataFile + "/data");
        var info = volume.Info;
        string axes = info.Axes.Names;
        int sz = axes.Contains('z') ? (int)info.Shape[axes.IndexOf('z')] : 1;
        int sy = (int)info.Shape[axes.IndexOf('y')], sx = (int)info.Shape[axes.IndexOf('x')];
        int n = sz * sy * sx;
        var raw = new byte[n];
        volume.Read(NdBox.Whole(info.Shape), raw.AsSpan());
        var block = raw.Select(b => (float)b).ToArray();
        int[] widths = set.Entries.Select(e => set.ChannelsOf(e, sz)).ToArray();
        var planar = new float[(long)widths.Sum() * n];
        new FeatureEngine(set, sz).Compute(block, sz, sy, sx, (entry, component, image) =>
            image.CopyTo(planar.AsSpan((widths.Take(entry).Sum() + component) * n, n)));
        Assert.Equal(project.FeatureNames(), set.ChannelNames(sz));
        return (planar, n);
    }
}
