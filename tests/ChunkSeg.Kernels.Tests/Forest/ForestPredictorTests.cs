using ChunkSeg.Kernels.Forest;

namespace ChunkSeg.Kernels.Tests.Forest;

/// <summary>VigraForestConverter and ForestPredictor on hand-built vigra trees (recipe §5), and IlastikClassifier's channel mapping (§6).</summary>
public sealed class ForestPredictorTests
{
    // PixelClass3D.ilp Forest0000/Tree_0: root splits column 3 at 1.887 → leaf [1, 0] if smaller, else [0, 1].
    private static readonly int[] StumpTopology = [11, 2, 0, 0, 9, 7, 3, 1073741824, 2, 1073741824, 5];
    private static readonly double[] StumpParameters = [1, 1.887, 26, 0, 1, 34, 1, 0];

    // Root (topology 2) splits column 0 at 0.5; its left child (topology 7) splits column 1 at -1; leaves at 12, 14, 16.
    // The left-left leaf (topology 14) is stored after its sibling, to exercise the offset → index remap.
    private static readonly int[] DeepTopology = [2, 3, 0, 0, 7, 16, 0, 0, 2, 14, 12, 1, 1073741824, 4, 1073741824, 8, 1073741824, 12];
    private static readonly double[] DeepParameters = [1, 0.5, 1, -1, 2, 0, 0, 1, 5, 0.2, 0.3, 0.5, 4, 1, 0, 0];

    [Fact]
    public void Converter_remaps_topology_offsets_to_flat_nodes()
    {
        var tree = VigraForestConverter.TreeFromVigra(DeepTopology, DeepParameters, 2, 3);
        Assert.Equal(5, tree.NodeCount);
        Assert.Equal([0, 1, -1, -1, -1], tree.Feature);
        Assert.Equal(0.5, tree.Threshold[0]);
        Assert.Equal(-1, tree.Threshold[1]);
        Assert.Equal(1, tree.Left[0]);
        Assert.Equal(-1, tree.Feature[tree.Right[0]]);
        var weighted = VigraForestConverter.TreeFromVigra(DeepTopology, DeepParameters, 2, 3, predictWeighted: true);
        Assert.Equal([0.2 * 5, 0.3 * 5, 0.5 * 5], weighted.LeafValues.Take(3));
    }

    [Fact]
    public void Splits_compare_the_float_promoted_to_double_strictly()
    {
        var forest = VigraForestConverter.FromVigra([StumpTopology], [StumpParameters], 11, [1, 2]);
        float below = (float)1.887 < 1.887 ? (float)1.887 : MathF.BitDecrement((float)1.887);
        float above = MathF.BitIncrement(below);
        var threshold = new float[11];
        var probs = new float[2];
        foreach (var (x, expectClass0) in new[] { (below, true), (above, false), (float.PositiveInfinity, false), (float.NegativeInfinity, true) })
        {
            threshold[3] = x;
            ForestPredictor.PredictProbabilities(forest, threshold, 1, probs);
            Assert.Equal(expectClass0 ? [1f, 0f] : [0f, 1f], probs);
        }
    }

    [Fact]
    public void Per_forest_arithmetic_is_vigras()
    {
        // Three trees; voxel 0 goes left-left (leaf [0.2, 0.3, 0.5]) in all of them.
        var forest = VigraForestConverter.FromVigra([DeepTopology, DeepTopology, DeepTopology], [DeepParameters, DeepParameters, DeepParameters], 2, [1, 2, 3]);
        var probs = new float[3];
        ForestPredictor.PredictProbabilities(forest, [0f, -2f], 1, probs);
        float[] sum = new float[3];
        double total = 0;
        for (int t = 0; t < 3; t++)
            for (int c = 0; c < 3; c++)
            {
                sum[c] += (float)new[] { 0.2, 0.3, 0.5 }[c];
                total += new[] { 0.2, 0.3, 0.5 }[c];
            }
        Assert.Equal(sum.Select(s => s / (float)total), probs);
    }

    [Fact]
    public void A_NaN_anywhere_in_the_row_gives_zero_probabilities()
    {
        var forest = VigraForestConverter.FromVigra([StumpTopology], [StumpParameters], 11, [1, 2]);
        var features = new float[11 * 2];
        features[7 * 2 + 1] = float.NaN;                  // voxel 1, feature 7: a column no split reads
        var probs = new float[4];
        ForestPredictor.PredictProbabilities(forest, features, 2, probs);
        Assert.Equal([1f, 0f, 0f, 0f], probs);
    }

    [Fact]
    public void Results_do_not_depend_on_threads_or_block_size()
    {
        var rng = new Random(7);
        var topologies = Enumerable.Range(0, 25).Select(_ => RandomTree(rng, 6, 3, out _)).ToArray();
        var trees = topologies.Select(t => t.Topology).ToArray();
        var parameters = topologies.Select(t => t.Parameters).ToArray();
        var forest = VigraForestConverter.FromVigra(trees, parameters, 6, [1, 2, 3]);
        int n = 1000;
        var features = Enumerable.Range(0, 6 * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var reference = new float[n * 3];
        ForestPredictor.PredictProbabilities(forest, features, n, reference, 1, 1);
        foreach (var (threads, block) in new[] { (1, 128), (2, 7), (2, 128), (4, 1000), (3, 5000) })
        {
            var got = new float[n * 3];
            ForestPredictor.PredictProbabilities(forest, features, n, got, threads, block);
            Assert.Equal(reference, got);
        }
    }

    /// <summary>
    /// Against a plain walk of the DecisionTree arrays with vigra's double comparisons and sums: 6 features pack
    /// into 8-byte nodes (the AVX2 gather walk where supported, scalar walks for the tail); with 300, the trees
    /// that read a feature above 255 take 16-byte nodes and the others 8-byte ones, in one forest. The same
    /// forests (at most 63 nodes a tree) through the masked evaluation of small trees, 8 voxels at a time.
    /// Thresholds are drawn among the feature values too, so equality takes the right branch.
    /// </summary>
    [Theory]
    [InlineData(6, 3, ForestEvaluation.Walk)]
    [InlineData(300, 2, ForestEvaluation.Walk)]
    [InlineData(6, 3, ForestEvaluation.Masked)]
    [InlineData(300, 2, ForestEvaluation.Masked)]
    [InlineData(6, 3, ForestEvaluation.Auto)]
    [InlineData(6, 3, ForestEvaluation.Masked, 1.0)]     // pure leaves: one vote of 1, the total T for every voxel
    [InlineData(6, 2, ForestEvaluation.Masked, 3.0)]     // integral votes of unequal sums: totals per voxel again
    internal void Both_node_layouts_and_the_masked_evaluation_equal_a_plain_walk(int columns, int classes, ForestEvaluation evaluation, double integralVotes = 0)
    {
        if (evaluation == ForestEvaluation.Masked) Assert.SkipUnless(System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated, "no 256-bit vectors");
        var rng = new Random(11);
        int n = 1237;
        var features = Enumerable.Range(0, columns * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var topologies = Enumerable.Range(0, 9).Select(_ => RandomTree(rng, columns, classes, out _,
            () => rng.Next(2) == 0 ? features[rng.Next(features.Length)] : rng.NextDouble() * 2 - 1)).ToArray();
        features[3 * n + 100] = float.NaN;
        var forest = VigraForestConverter.FromVigra(topologies.Select(t => t.Topology).ToArray(), topologies.Select(t => t.Parameters).ToArray(), columns, Enumerable.Range(1, classes).ToArray());
        if (integralVotes > 0)
            forest = new RandomForest(forest.Trees.Select(t => new DecisionTree(t.Feature, t.Threshold, t.Left, t.Right,
                IntegralVotes(t.LeafValues, classes, integralVotes, rng), classes)).ToList(), columns, forest.ClassLabels);
        Assert.All(forest.Trees, t => Assert.Equal(t.MaxFeature <= byte.MaxValue, t.Packed.Compact is not null));
        if (columns > 256) Assert.Contains(forest.Trees, t => t.Packed.Compact is null);

        var expected = PlainWalk(forest, features, n);
        foreach (var (threads, block) in new[] { (1, 1), (1, 13), (2, 100), (1, ForestPredictor.BlockSize) })
        {
            var got = new float[n * classes];
            ForestPredictor.PredictProbabilities(forest, features, n, got, threads, block, evaluation);
            Assert.Equal(expected, got);
        }
    }

    /// <summary>
    /// Deep trees (up to 22 levels, a few hundred to thousands of nodes, as forests grown to purity are) against the plain
    /// walk: the gather walk's groups, its scalar walks and the hand-over between them meet at every voxel count and block
    /// size here; thresholds drawn among the feature values (equality goes right), NaNs in a tenth of the voxels.
    /// </summary>
    [Theory]
    [InlineData(40, 2, 1)]
    [InlineData(40, 3, 2)]
    [InlineData(7, 2, 3)]
    public void Deep_random_forests_equal_a_plain_walk(int columns, int classes, int seed)
    {
        var rng = new Random(seed);
        int n = 3001;
        var features = Enumerable.Range(0, columns * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        for (int v = 0; v < n; v += 10) features[rng.Next(columns) * n + v] = float.NaN;
        var topologies = Enumerable.Range(0, 12).Select(_ => RandomTree(rng, columns, classes, out _,
            () => rng.Next(2) == 0 ? features[rng.Next(features.Length)] : rng.NextDouble() * 2 - 1, maxDepth: 22)).ToArray();
        var forest = VigraForestConverter.FromVigra(topologies.Select(t => t.Topology).ToArray(), topologies.Select(t => t.Parameters).ToArray(), columns, Enumerable.Range(1, classes).ToArray());
        Assert.Contains(forest.Trees, t => t.NodeCount > 500);
        var expected = PlainWalk(forest, features, n);
        foreach (var (count, threads, block) in new[] { (n, 1, 1), (n, 1, 29), (n, 2, 1000), (n, 1, ForestPredictor.BlockSize), (37, 1, ForestPredictor.BlockSize), (5, 1, 64) })
        {
            var part = Enumerable.Range(0, columns).SelectMany(f => features.AsSpan(f * n, count).ToArray()).ToArray();
            var got = new float[count * classes];
            ForestPredictor.PredictProbabilities(forest, part, count, got, threads, block, ForestEvaluation.Walk);
            Assert.Equal(expected.AsSpan(0, count * classes).ToArray(), got);
        }
    }

    /// <summary>vigra's prediction by a plain walk of the DecisionTree arrays: double comparisons, float32 sums, a double total, NaN rows 0.</summary>
    private static float[] PlainWalk(RandomForest forest, float[] features, int n)
    {
        int columns = forest.FeatureCount, classes = forest.ClassCount;
        var expected = new float[n * classes];
        for (int v = 0; v < n; v++)
        {
            double total = 0;
            bool nan = false;
            for (int f = 0; f < columns; f++) nan |= float.IsNaN(features[f * n + v]);
            foreach (var tree in forest.Trees)
            {
                int i = 0;
                while (tree.Feature[i] >= 0)
                    i = (double)features[tree.Feature[i] * n + v] < tree.Threshold[i] ? tree.Left[i] : tree.Right[i];
                for (int c = 0; c < classes; c++)
                {
                    expected[v * classes + c] += (float)tree.LeafValues[tree.Left[i] + c];
                    total += tree.LeafValues[tree.Left[i] + c];
                }
            }
            for (int c = 0; c < classes; c++) expected[v * classes + c] = nan ? 0 : expected[v * classes + c] / (float)total;
        }
        return expected;
    }

    /// <summary>Each leaf's values replaced by integers: one vote of 1 for a random class, or random counts up to <paramref name="max"/> (zeros included).</summary>
    private static double[] IntegralVotes(double[] values, int classes, double max, Random rng)
    {
        var votes = new double[values.Length];
        for (int leaf = 0; leaf + classes <= votes.Length; leaf += classes)
        {
            if (max == 1) votes[leaf + rng.Next(classes)] = 1;
            else for (int c = 0; c < classes; c++) votes[leaf + c] = rng.Next((int)max + 1);
        }
        return votes;
    }

    [Fact]
    public void Classifier_combines_forests_and_maps_classes_to_known_label_channels()
    {
        var a = VigraForestConverter.FromVigra([StumpTopology, StumpTopology], [StumpParameters, StumpParameters], 11, [1, 2]);
        var b = VigraForestConverter.FromVigra([StumpTopology], [StumpParameters], 11, [1, 2]);
        var classifier = new IlastikClassifier([a, b], [1u, 3u], 4);
        var features = new float[11 * 2];
        features[3 * 2 + 1] = 5f;                                         // voxel 1 above the threshold
        var output = Enumerable.Repeat(float.NaN, 8).ToArray();
        classifier.PredictProbabilities(features, 2, output);
        Assert.Equal([1f, 0f, 0f, 0f, 0f, 0f, 1f, 0f], output);
        Assert.Equal(3, classifier.TreeCount);
    }

    [Fact]
    public void Unknown_node_types_and_bad_shapes_are_refused()
    {
        int[] hyperplane = (int[])StumpTopology.Clone();
        hyperplane[2] = 1;
        var e = Assert.Throws<ArgumentException>(() => VigraForestConverter.FromVigra([StumpTopology, hyperplane], [StumpParameters, StumpParameters], 11, [1, 2]));
        Assert.Contains("tree 1: the node at topology 2 has type 1 (0x00000001)", e.Message, StringComparison.Ordinal);
        int[] ext = (int[])StumpTopology.Clone();
        ext[7] = 0x40000001;
        e = Assert.Throws<ArgumentException>(() => VigraForestConverter.TreeFromVigra(ext, StumpParameters, 11, 2));
        Assert.Contains("type 1073741825 (0x40000001)", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => VigraForestConverter.TreeFromVigra(StumpTopology, StumpParameters, 12, 2));
        Assert.Contains("the forest has [12, 2]", e.Message, StringComparison.Ordinal);
        int[] dangling = (int[])StumpTopology.Clone();
        dangling[4] = 40;
        e = Assert.Throws<ArgumentException>(() => VigraForestConverter.TreeFromVigra(dangling, StumpParameters, 11, 2));
        Assert.Contains("node reference 40 is outside", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Feature_count_mismatch_is_refused()
    {
        var forest = VigraForestConverter.FromVigra([StumpTopology], [StumpParameters], 11, [1, 2]);
        var e = Assert.Throws<ArgumentException>(() => ForestPredictor.PredictProbabilities(forest, new float[10 * 4], 4, new float[8]));
        Assert.Contains("the forest reads 11 features for each of 4 voxels", e.Message, StringComparison.Ordinal);
        var classifier = new IlastikClassifier([forest], [1u, 2u], 2);
        e = Assert.Throws<ArgumentException>(() => classifier.PredictProbabilities(new float[12 * 4], 4, new float[8]));
        Assert.Contains("feature selection and the classifier's feature count must match", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new IlastikClassifier([forest], [1u, 3u], 2));
    }

    /// <summary>A random vigra tree: splits on random columns and thresholds, random leaf values, nodes in vigra's layout.</summary>
    internal static (int[] Topology, double[] Parameters) RandomTree(Random rng, int columns, int classes, out int leaves, Func<double>? threshold = null, int maxDepth = 5)
    {
        var topology = new List<int> { columns, classes };
        var parameters = new List<double>();
        leaves = 0;
        int count = 0;
        Build(0);
        return (topology.ToArray(), parameters.ToArray());

        int Build(int depth)
        {
            int at = topology.Count;
            if (depth >= maxDepth || (depth > 1 && rng.Next(3) == 0))
            {
                topology.AddRange([0x40000000, parameters.Count]);
                parameters.Add(1 + rng.Next(10));
                for (int c = 0; c < classes; c++) parameters.Add(rng.NextDouble());
                count++;
                return at;
            }
            topology.AddRange([0, parameters.Count, -1, -1, rng.Next(columns)]);
            parameters.AddRange([1, threshold?.Invoke() ?? rng.NextDouble() * 2 - 1]);
            int l = Build(depth + 1);
            int r = Build(depth + 1);
            topology[at + 2] = l;
            topology[at + 3] = r;
            return at;
        }
    }
}

public class FloatThresholdTests
{
    /// <summary>Packed nodes compare in float32; that must take exactly vigra's (double)x &lt; t decisions.</summary>
    [Fact]
    public void Float_comparison_takes_the_same_decisions_as_the_double_one()
    {
        var rng = new Random(41);
        for (int i = 0; i < 200_000; i++)
        {
            double t = i % 4 == 0 ? (double)(float)(rng.NextDouble() * 200 - 100)                  // exactly a float
                     : (rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-8, 8));                 // between floats
            float ft = ChunkSeg.Kernels.Forest.DecisionTree.FloatThreshold(t);
            float near = (float)t;
            foreach (float x in new[] { near, MathF.BitDecrement(near), MathF.BitIncrement(near), ft, MathF.BitDecrement(ft), -near, 0f, -0f })
                Assert.True(((double)x < t) == (x < ft), $"x = {x:R}, t = {t:R}, float threshold {ft:R}");
        }
        Assert.False(float.NaN < ChunkSeg.Kernels.Forest.DecisionTree.FloatThreshold(1.0));
        Assert.Equal(float.PositiveInfinity, ChunkSeg.Kernels.Forest.DecisionTree.FloatThreshold(1e300));
    }
}
