using System.Runtime.InteropServices;
using ChunkSeg.Kernels.Forest;

namespace ChunkSeg.Kernels.Tests;

/// <summary>
/// ForestTrainer against scikit-learn's RandomForestClassifier (the same features and labels, its own
/// seed): the two forests must agree on the argmax for ≥ 98% of test samples and their accuracies must be
/// within 1 percentage point, on synthetic clusters and on filter features of ilastik's 3D test image.
/// Then properties of the trees themselves: determinism, purity, depth, and input validation.
/// </summary>
public sealed class ForestTrainingTests(ITestOutputHelper output)
{
    private const ulong Seed = 20240612;
    private static readonly int[] ThreeClasses = [1, 2, 3];

    // ------------------------------------------------------------------ against scikit-learn

    [Fact]
    public void Clusters_AgreeWithScikitLearn() => CompareWithScikitLearn("blobs");

    [Fact]
    public void ImageFeatures_AgreeWithScikitLearn() =>
        CompareWithScikitLearn("image", SharedData.Require("ilastik/Data_3D.h5"));

    private void CompareWithScikitLearn(string mode, params string[] extra)
    {
        using var dir = new TempDir();
        string log = PythonReference.Run("sklearn_forest.py", [mode, dir.Path, "7", .. extra]);
        var xtrain = NpyFile.Read(dir["xtrain.npy"]);
        var ytrain = MemoryMarshal.Cast<byte, int>(NpyFile.Read(dir["ytrain.npy"]).Data).ToArray();
        var xtest = NpyFile.Read(dir["xtest.npy"]);
        var ytest = MemoryMarshal.Cast<byte, int>(NpyFile.Read(dir["ytest.npy"]).Data);
        var reference = MemoryMarshal.Cast<byte, double>(NpyFile.Read(dir["proba.npy"]).Data);
        int features = (int)xtrain.Shape[1];
        int classes = ytrain.Max() + 1;

        var forest = ForestTrainer.Train(MemoryMarshal.Cast<byte, float>(xtrain.Data), features, ytrain,
            Enumerable.Range(1, classes).ToArray(), new ForestTrainingOptions(Seed: Seed, MaxThreads: 2));
        var ours = TrainedForestEvaluation.ArgMax(
            TrainedForestEvaluation.Probabilities(forest, MemoryMarshal.Cast<byte, float>(xtest.Data)), classes);
        var theirs = TrainedForestEvaluation.ArgMax(reference, classes);

        int agree = 0, oursRight = 0, theirsRight = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            if (ours[i] == theirs[i]) agree++;
            if (ours[i] == ytest[i]) oursRight++;
            if (theirs[i] == ytest[i]) theirsRight++;
        }
        double agreement = (double)agree / ours.Length;
        double accOurs = (double)oursRight / ours.Length, accTheirs = (double)theirsRight / ours.Length;
        string summary = $"{mode}: {ours.Length} test samples, {features} features; argmax agreement {agreement:P2}, " +
                         $"accuracy ChunkSeg {accOurs:P2} vs scikit-learn {accTheirs:P2} ({log.Trim()})";
        output.WriteLine(summary);
        Assert.True(agreement >= 0.98, summary);
        Assert.True(Math.Abs(accOurs - accTheirs) <= 0.01, summary);
    }

    // ------------------------------------------------------------------ tree properties

    /// <summary>Gaussian clusters around random centres, row-major, with class index labels.</summary>
    private static (float[] X, int[] Y) Clusters(int n, int features, int classes, int seed, double spread = 1.5)
    {
        var rng = new Random(seed);
        var centres = new double[classes * features];
        for (int i = 0; i < centres.Length; i++) centres[i] = rng.NextDouble() * 4;
        var x = new float[n * features];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = rng.Next(classes);
            for (int f = 0; f < features; f++)
            {
                double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                x[i * features + f] = (float)(centres[y[i] * features + f] + spread * g);
            }
        }
        return (x, y);
    }

    private static void AssertSameTrees(RandomForest a, RandomForest b)
    {
        Assert.Equal(a.Trees.Count, b.Trees.Count);
        for (int t = 0; t < a.Trees.Count; t++)
        {
            Assert.Equal(a.Trees[t].Feature, b.Trees[t].Feature);
            Assert.Equal(a.Trees[t].Threshold, b.Trees[t].Threshold);
            Assert.Equal(a.Trees[t].Left, b.Trees[t].Left);
            Assert.Equal(a.Trees[t].Right, b.Trees[t].Right);
            Assert.Equal(a.Trees[t].LeafValues, b.Trees[t].LeafValues);
        }
    }

    [Fact]
    public void SameSeed_SameTrees_AtAnyThreadCount_OtherSeed_OtherTrees()
    {
        var (x, y) = Clusters(600, 9, 3, seed: 1);
        var one = ForestTrainer.Train(x, 9, y, ThreeClasses, new ForestTrainingOptions(Trees: 12, Seed: Seed, MaxThreads: 1));
        var two = ForestTrainer.Train(x, 9, y, ThreeClasses, new ForestTrainingOptions(Trees: 12, Seed: Seed, MaxThreads: 2));
        AssertSameTrees(one, two);
        var other = ForestTrainer.Train(x, 9, y, ThreeClasses, new ForestTrainingOptions(Trees: 12, Seed: Seed + 1, MaxThreads: 2));
        for (int t = 0; t < 12; t++)
            Assert.False(one.Trees[t].Feature.AsSpan().SequenceEqual(other.Trees[t].Feature) &&
                         one.Trees[t].Threshold.AsSpan().SequenceEqual(other.Trees[t].Threshold), $"tree {t} is the same for both seeds");
        // Trees of one forest differ from each other too (their streams come from the tree index).
        Assert.False(one.Trees[0].Threshold.AsSpan().SequenceEqual(one.Trees[1].Threshold));
    }

    private static IEnumerable<(int Node, int Depth)> Leaves(DecisionTree tree)
    {
        var stack = new Stack<(int, int)>([(0, 0)]);
        while (stack.Count > 0)
        {
            var (node, depth) = stack.Pop();
            if (tree.Feature[node] < 0) { yield return (node, depth); continue; }
            stack.Push((tree.Left[node], depth + 1));
            stack.Push((tree.Right[node], depth + 1));
        }
    }

    [Fact]
    public void DefaultOptions_GrowPureLeaves_ThatSumToOne()
    {
        var (x, y) = Clusters(800, 6, 3, seed: 2, spread: 3);   // heavy overlap: deep trees
        var forest = ForestTrainer.Train(x, 6, y, ThreeClasses, new ForestTrainingOptions(Trees: 10, Seed: Seed));
        foreach (var tree in forest.Trees)
        {
            int leaves = 0;
            foreach (var (node, _) in Leaves(tree))
            {
                var v = tree.LeafValues.AsSpan(tree.Left[node], 3);
                Assert.Equal(1, v.ToArray().Count(p => p == 1.0));
                Assert.Equal(2, v.ToArray().Count(p => p == 0.0));
                leaves++;
            }
            Assert.Equal(tree.NodeCount, 2 * leaves - 1);   // every node is reached exactly once
        }
        // Pure on the bootstrap means the forest nearly memorises its training set.
        var predicted = TrainedForestEvaluation.ArgMax(TrainedForestEvaluation.Probabilities(forest, x), 3);
        Assert.True(predicted.Zip(y).Count(p => p.First == p.Second) >= 0.95 * y.Length);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void MaxDepth_IsRespected_AndLeavesHoldClassFrequencies(int maxDepth)
    {
        var (x, y) = Clusters(500, 5, 3, seed: 3, spread: 3);
        var forest = ForestTrainer.Train(x, 5, y, ThreeClasses, new ForestTrainingOptions(Trees: 6, Seed: Seed, MaxDepth: maxDepth));
        foreach (var tree in forest.Trees)
        {
            var leaves = Leaves(tree).ToList();
            Assert.All(leaves, l => Assert.True(l.Depth <= maxDepth, $"leaf at depth {l.Depth} > {maxDepth}"));
            Assert.Contains(leaves, l => l.Depth == maxDepth);   // overlapping classes: every level is used
            foreach (var (node, _) in leaves)
                Assert.Equal(1.0, tree.LeafValues.AsSpan(tree.Left[node], 3).ToArray().Sum(), 12);
        }
        if (maxDepth == 0)
            Assert.All(forest.Trees, t => Assert.Equal(1, t.NodeCount));
    }

    [Fact]
    public void ConflictingDuplicates_EndInAMixedLeaf()
    {
        // Two identical rows with different classes cannot be split: every feature is constant there.
        float[] x = [0, 0, 0, 0, 1, 1];
        int[] y = [0, 1, 2];
        var forest = ForestTrainer.Train(x, 2, y, ThreeClasses, new ForestTrainingOptions(Trees: 20, Seed: Seed));
        var p = TrainedForestEvaluation.Probabilities(forest, [0f, 0f, 1f, 1f]);
        Assert.Equal(0, p[2]);                   // class 2 sits alone at (1,1)
        Assert.Equal(1, p[0] + p[1], 12);
        Assert.True(p[0] > 0 && p[1] > 0);
        Assert.True(p[5] > 0.5);                 // (1,1) votes class 2 unless its bootstrap missed it
    }

    [Fact]
    public void Midpoint_RoutesTheLowerValueLeftAndTheUpperRight()
    {
        float[] values = [0f, -0f, 1f, -1f, float.Epsilon, 1e-30f, 1e30f, float.MaxValue, float.MinValue, 3.3f, -7.1e-12f, 16777216f];
        foreach (float v in values)
        {
            foreach (float w in new[] { MathF.BitIncrement(v), v * 2 + 1, 1e20f, -1e-20f, float.MaxValue })
            {
                float a = Math.Min(v, w), b = Math.Max(v, w);
                if (a == b) continue;
                double t = TreeGrower.Midpoint(a, b);
                Assert.True((double)a < t && !((double)b < t), $"a={a:R} b={b:R} t={t:R}");
            }
        }
    }

    [Fact]
    public void AClassWithoutSamples_GetsNoVotes()
    {
        var (x, y) = Clusters(300, 4, 2, seed: 4);
        for (int i = 0; i < y.Length; i++) y[i] *= 2;            // classes 0 and 2; class 1 never occurs
        var forest = ForestTrainer.Train(x, 4, y, ThreeClasses, new ForestTrainingOptions(Trees: 5, Seed: Seed));
        var p = TrainedForestEvaluation.Probabilities(forest, x);
        for (int i = 0; i < y.Length; i++) Assert.Equal(0, p[i * 3 + 1]);
    }

    [Fact]
    public void InvalidInputs_AreRejectedWithTheirValues()
    {
        float[] x = [0, 1, 2, 3, 4, 5];
        var o = new ForestTrainingOptions(Trees: 2);
        Assert.Contains("need 8", Assert.Throws<ArgumentException>(() => ForestTrainer.Train(x, 2, [0, 1, 0, 1], ThreeClasses, o)).Message);
        Assert.Throws<ArgumentException>(() => ForestTrainer.Train(x, 4, [0, 1], ThreeClasses, o));
        Assert.Contains("0..2", Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 2, [0, 3, 1], ThreeClasses, o)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 2, [0, -1, 1], ThreeClasses, o));
        Assert.Contains("got 0", Assert.Throws<ArgumentException>(() => ForestTrainer.Train([], 2, [], ThreeClasses, o)).Message);
        Assert.Throws<ArgumentException>(() => ForestTrainer.Train(x, 2, [0, 1, 2], [], o));
        Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 0, [0, 1, 2], ThreeClasses, o));
        Assert.Throws<ArgumentException>(() => ForestTrainer.Train([0, float.NaN, 2, 3, 4, 5], 2, [0, 1, 2], ThreeClasses, o));
        Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 2, [0, 1, 2], ThreeClasses, o with { FeaturesPerSplit = 3 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 2, [0, 1, 2], ThreeClasses, o with { Trees = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 2, [0, 1, 2], ThreeClasses, o with { MaxDepth = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 2, [0, 1, 2], ThreeClasses, o with { MinSamplesLeaf = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ForestTrainer.Train(x, 2, [0, 1, 2], ThreeClasses, o with { MaxThreads = 0 }));
        // One sample is enough: a single-leaf tree voting for its class.
        var single = ForestTrainer.Train([5f, 6f], 2, [1], ThreeClasses, o);
        Assert.Equal([0.0, 1.0, 0.0], TrainedForestEvaluation.Probabilities(single, [0f, 0f]));
    }
}
