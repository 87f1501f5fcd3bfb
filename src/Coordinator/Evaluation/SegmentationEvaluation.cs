namespace ChunkSeg.Coordinator.Evaluation;

/// <summary>
/// How many voxels each (reference label, predicted label) pair shares, gathered chunk by chunk: everything the
/// scores need, in memory bounded by the number of overlapping pairs, not by the volume.
/// </summary>
public sealed class OverlapTable
{
    private readonly Dictionary<(ulong Reference, ulong Predicted), long> _pairs = new();

    public IReadOnlyDictionary<(ulong Reference, ulong Predicted), long> Pairs => _pairs;

    /// <summary>Counts voxel by voxel; runs of one pair (most of a volume) cost one lookup.</summary>
    public void Add(ReadOnlySpan<ulong> reference, ReadOnlySpan<ulong> predicted)
    {
        if (reference.Length != predicted.Length) throw new ArgumentException($"{reference.Length} reference voxels but {predicted.Length} predicted ones");
        int i = 0;
        while (i < reference.Length)
        {
            ulong r = reference[i], p = predicted[i];
            int start = i++;
            while (i < reference.Length && reference[i] == r && predicted[i] == p) i++;
            Add(r, p, i - start);
        }
    }

    public void Merge(OverlapTable other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (pair, count) in other._pairs) Add(pair.Reference, pair.Predicted, count);
    }

    private void Add(ulong reference, ulong predicted, long count)
    {
        ref long n = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_pairs, (reference, predicted), out _);
        n += count;
    }
}

/// <summary>Voxel counts and scores of the foreground (label ≠ 0); a score is null where its denominator is empty or unknown.</summary>
public sealed record PixelScores(long TruePositives, long? FalsePositives, long FalseNegatives, long? TrueNegatives,
    double? Jaccard, double? Dice, double? Precision, double? Recall);

/// <summary>
/// Object detection: a predicted object matches a reference object when their Jaccard index exceeds 0.5 (so a
/// match is one to one); the mean best Jaccard and Dice of the reference objects measure how well each is segmented.
/// </summary>
public sealed record ObjectScores(long ReferenceObjects, long PredictedObjects, long Matched,
    double? Precision, double? Recall, double? F1, double? Jaccard, double? MeanBestJaccard, double? MeanBestDice);

public sealed record SegmentationScores(bool Sparse, PixelScores Pixels, ObjectScores Objects);

/// <summary>
/// Segmentation quality against a reference, pixel-wise and object-wise, as taught in the segmentation-quality
/// lecture (Jaccard = TP / (TP + FN + FP), Dice = 2TP / (2TP + FN + FP), precision = TP / (TP + FP), recall =
/// TP / (TP + FN)).
/// <code>
///   dense reference   every voxel is annotated: 0 is background
///   sparse reference  only some objects are annotated, 0 is "not annotated": pixel-wise only the recall of the
///                     annotated voxels is known, object-wise the recall and each annotated object's best
///                     Jaccard index against the predicted objects (whole predicted objects count), averaged:
///                     the segmentation game's jaccard_index_sparse
/// </code>
/// </summary>
public static class SegmentationEvaluation
{
    /// <summary>A pair of objects matches above this Jaccard index.</summary>
    public const double MatchThreshold = 0.5;

    public static SegmentationScores Score(OverlapTable table, bool sparse)
    {
        ArgumentNullException.ThrowIfNull(table);
        long tp = 0, fp = 0, fn = 0, tn = 0;
        var referenceSize = new Dictionary<ulong, long>();
        var predictedSize = new Dictionary<ulong, long>();
        foreach (var ((r, p), n) in table.Pairs)
        {
            if (r != 0 && p != 0) tp += n;
            else if (r != 0) fn += n;
            else if (p != 0) fp += n;
            else tn += n;
            if (r != 0) referenceSize[r] = referenceSize.GetValueOrDefault(r) + n;
            if (p != 0) predictedSize[p] = predictedSize.GetValueOrDefault(p) + n;
        }
        var pixels = sparse
            ? new PixelScores(tp, null, fn, null, null, null, null, Ratio(tp, tp + fn))
            : new PixelScores(tp, fp, fn, tn, Ratio(tp, tp + fp + fn), Ratio(2 * tp, 2 * tp + fp + fn), Ratio(tp, tp + fp), Ratio(tp, tp + fn));

        var best = referenceSize.Keys.ToDictionary(r => r, _ => 0.0);
        long matched = 0;
        foreach (var ((r, p), n) in table.Pairs)
        {
            if (r == 0 || p == 0) continue;
            double jaccard = (double)n / (referenceSize[r] + predictedSize[p] - n);
            if (jaccard > best[r]) best[r] = jaccard;
            if (jaccard > MatchThreshold) matched++;
        }
        long references = referenceSize.Count, predicted = predictedSize.Count;
        // Summed in label order, so the means do not depend on the order the chunks came in.
        var bests = best.OrderBy(b => b.Key).Select(b => b.Value).ToArray();
        double? meanJaccard = references > 0 ? bests.Average() : null;
        double? meanDice = references > 0 ? bests.Average(j => 2 * j / (1 + j)) : null;
        var objects = sparse
            ? new ObjectScores(references, predicted, matched, null, Ratio(matched, references), null, null, meanJaccard, meanDice)
            : new ObjectScores(references, predicted, matched, Ratio(matched, predicted), Ratio(matched, references),
                Ratio(2 * matched, references + predicted), Ratio(matched, references + predicted - matched), meanJaccard, meanDice);
        return new SegmentationScores(sparse, pixels, objects);
    }

    private static double? Ratio(long numerator, long denominator) => denominator > 0 ? (double)numerator / denominator : null;
}
