namespace ChunkSeg.Kernels.Forest;

/// <summary>
/// ilastik's pixel classifier, a forest of vigra forests (<c>ParallelVigraRfLazyflowClassifier</c>,
/// ILASTIK_RECIPE.md §6), reproducing its float32 probabilities bit for bit:
/// <code>
///   sum[c] = 0f;  for each forest f, in sorted name order:  sum[c] = float32(sum[c] + float32(prob_f[c] × float32(treeCount_f)))
///   P[c]   = sum[c] / float32(Σ_f treeCount_f)
///   output channel of forest class i = knownLabels[i] − 1, of LabelCount channels; channels with no class are 0
/// </code>
/// (numpy: <c>pred *= treeCount; total += pred; total /= num_trees</c> on float32 arrays). ilastik sums the forests in
/// the order its threads finish; with ilastik's pure leaves every product is a whole number of votes, so the order
/// does not change the sum.
/// </summary>
public sealed class IlastikClassifier
{
    public IlastikClassifier(IReadOnlyList<RandomForest> forests, IReadOnlyList<uint> knownLabels, int labelCount)
    {
        ArgumentNullException.ThrowIfNull(forests);
        ArgumentNullException.ThrowIfNull(knownLabels);
        if (forests.Count == 0) throw new ArgumentException("the classifier needs at least one forest");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(labelCount);
        int features = forests[0].FeatureCount, classes = forests[0].ClassCount;
        for (int i = 0; i < forests.Count; i++)
        {
            if (forests[i].FeatureCount != features || forests[i].ClassCount != classes)
                throw new ArgumentException(
                    $"forest {i} reads {forests[i].FeatureCount} features into {forests[i].ClassCount} classes; forest 0 reads {features} into {classes}");
        }
        if (knownLabels.Count != classes)
            throw new ArgumentException($"{knownLabels.Count} known labels for forests of {classes} classes");
        foreach (uint label in knownLabels)
            if (label < 1 || label > labelCount)
                throw new ArgumentException($"known label {label} has no output channel among the {labelCount} labels (1 … {labelCount})");
        Forests = forests.ToArray();
        KnownLabels = knownLabels.ToArray();
        LabelCount = labelCount;
        FeatureCount = features;
        TreeCount = Forests.Sum(f => f.Trees.Count);
    }

    public IReadOnlyList<RandomForest> Forests { get; }
    public IReadOnlyList<uint> KnownLabels { get; }

    /// <summary>The number of output channels (ilastik's LabelNames).</summary>
    public int LabelCount { get; }

    public int FeatureCount { get; }
    public int TreeCount { get; }

    /// <summary>
    /// Probabilities of <paramref name="voxelCount"/> voxels: <paramref name="features"/> planar (feature f of voxel v
    /// at f * voxelCount + v), <paramref name="output"/>[v * LabelCount + channel].
    /// </summary>
    public unsafe void PredictProbabilities(ReadOnlySpan<float> features, int voxelCount, Span<float> output, int maxThreads = 1, int blockSize = ForestPredictor.BlockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(voxelCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        int classes = Forests[0].ClassCount, labels = LabelCount;
        ForestPredictor.CheckLengths(FeatureCount, labels, features.Length, voxelCount, output.Length);
        int[] channelOf = KnownLabels.Select(l => (int)l - 1).ToArray();
        float[] treeCounts = Forests.Select(f => (float)f.Trees.Count).ToArray();
        float totalTrees = TreeCount;
        fixed (float* f = features)
        fixed (float* o = output)
        {
            var input = new FeatureMatrix(f, voxelCount, FeatureCount);
            float* outp = o;
            ForestPredictor.ForEachBlock(voxelCount, maxThreads, blockSize, classes, (start, count, scratch) =>
            {
                var sum = scratch.Sum.AsSpan(0, count * classes);
                var prob = scratch.Probabilities.AsSpan(0, count * classes);
                sum.Clear();
                for (int i = 0; i < Forests.Count; i++)
                {
                    ForestEngine.PredictBlock(Forests[i], input, start, count, prob, scratch);
                    float trees = treeCounts[i];
                    for (int k = 0; k < sum.Length; k++)
                        sum[k] += prob[k] * trees;
                }
                var dst = new Span<float>(outp + (long)start * labels, count * labels);
                dst.Clear();
                for (int v = 0; v < count; v++)
                    for (int c = 0; c < classes; c++)
                        dst[v * labels + channelOf[c]] = sum[v * classes + c] / totalTrees;
            });
        }
    }
}
