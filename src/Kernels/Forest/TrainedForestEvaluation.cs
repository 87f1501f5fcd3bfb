namespace ChunkSeg.Kernels.Forest;

/// <summary>
/// Plain forest evaluation for checking training: the mean over trees of each tree's leaf distribution
/// (scikit-learn's predict_proba), in double. Not the ilastik-parity predictor.
/// </summary>
internal static class TrainedForestEvaluation
{
    /// <summary>Class probabilities, row-major [sample][class], for row-major [sample][feature] inputs.</summary>
    public static double[] Probabilities(RandomForest forest, ReadOnlySpan<float> samples)
    {
        int f = forest.FeatureCount, k = forest.ClassCount;
        if (samples.Length % f != 0)
            throw new ArgumentException($"samples holds {samples.Length} values, not a multiple of {f} features", nameof(samples));
        int n = samples.Length / f;
        var probs = new double[(long)n * k];
        for (int i = 0; i < n; i++)
        {
            var x = samples.Slice(i * f, f);
            var p = probs.AsSpan(i * k, k);
            foreach (var tree in forest.Trees)
            {
                var leaf = tree.LeafValues.AsSpan(tree.Left[Leaf(tree, x)], k);
                for (int c = 0; c < k; c++) p[c] += leaf[c];
            }
            for (int c = 0; c < k; c++) p[c] /= forest.Trees.Count;
        }
        return probs;
    }

    /// <summary>The leaf node <paramref name="x"/> reaches.</summary>
    public static int Leaf(DecisionTree tree, ReadOnlySpan<float> x)
    {
        int node = 0;
        while (tree.Feature[node] >= 0)
            node = (double)x[tree.Feature[node]] < tree.Threshold[node] ? tree.Left[node] : tree.Right[node];
        return node;
    }

    /// <summary>Index of the largest value in each row of <paramref name="classCount"/> values (first on ties).</summary>
    public static int[] ArgMax(ReadOnlySpan<double> probabilities, int classCount)
    {
        var result = new int[probabilities.Length / classCount];
        for (int i = 0; i < result.Length; i++)
        {
            var p = probabilities.Slice(i * classCount, classCount);
            int best = 0;
            for (int c = 1; c < classCount; c++)
                if (p[c] > p[best]) best = c;
            result[i] = best;
        }
        return result;
    }
}
