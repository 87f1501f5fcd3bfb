namespace ChunkSeg.Kernels.Forest;

/// <summary>
/// A binary decision tree in flat arrays, root at node 0 (the layout prediction walks; ilastik's vigra
/// trees and ChunkSeg's trained trees both convert to it).
/// <code>
///   node i, split (Feature[i] ≥ 0):  x[Feature[i]] &lt; Threshold[i]  →  Left[i]   else  Right[i]
///                                   (the float32 feature promoted to double, strict &lt;, as vigra does)
///   node i, leaf  (Feature[i] = −1): class values LeafValues[Left[i] .. Left[i] + ClassCount)
/// </code>
/// Leaf values are what the leaf votes per class (vigra stores them as doubles: ilastik's are 0/1 for
/// pure leaves; trained trees store class frequencies).
/// </summary>
public sealed class DecisionTree
{
    public DecisionTree(int[] feature, double[] threshold, int[] left, int[] right, double[] leafValues, int classCount)
    {
        ArgumentNullException.ThrowIfNull(feature);
        ArgumentNullException.ThrowIfNull(threshold);
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        ArgumentNullException.ThrowIfNull(leafValues);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        int n = feature.Length;
        if (n == 0 || threshold.Length != n || left.Length != n || right.Length != n)
            throw new ArgumentException($"tree arrays must be non-empty and equally long; got {feature.Length}, {threshold.Length}, {left.Length}, {right.Length}");
        for (int i = 0; i < n; i++)
        {
            if (feature[i] >= 0)
            {
                if ((uint)left[i] >= (uint)n || (uint)right[i] >= (uint)n)
                    throw new ArgumentException($"node {i}: child index {left[i]} or {right[i]} is outside the {n} nodes");
            }
            else if (feature[i] != -1 || left[i] < 0 || left[i] + classCount > leafValues.Length)
            {
                throw new ArgumentException($"node {i}: leaf values at {left[i]} (+{classCount}) are outside the {leafValues.Length} stored");
            }
        }
        Feature = feature;
        Threshold = threshold;
        Left = left;
        Right = right;
        LeafValues = leafValues;
        ClassCount = classCount;
    }

    public int[] Feature { get; }
    public double[] Threshold { get; }
    public int[] Left { get; }
    public int[] Right { get; }
    public double[] LeafValues { get; }
    public int ClassCount { get; }
    public int NodeCount => Feature.Length;

    /// <summary>The largest feature index any split reads, or −1 for a single-leaf tree.</summary>
    public int MaxFeature => Feature.Max();

    /// <summary>The nodes packed for traversal (built once, on first use; see <see cref="PackedTree"/>).</summary>
    internal PackedTree Packed => _packed ??= PackedTree.Build(this);

    private PackedTree? _packed;

    /// <summary>
    /// The smallest float32 ≥ <paramref name="t"/>. For every float32 x, <c>(double)x &lt; t</c> ⇔ <c>x &lt; FloatThreshold(t)</c>:
    /// a float below t is below it, and a float at or above t is at or above the smallest float at or above t.
    /// NaN features fail both comparisons. So traversal compares in float32 and still takes vigra's decisions.
    /// </summary>
    internal static float FloatThreshold(double t)
    {
        float f = (float)t;                     // round to nearest
        return f < t ? MathF.BitIncrement(f) : f;
    }
}

/// <summary>
/// A random forest: trees over <see cref="FeatureCount"/> features voting for <see cref="ClassCount"/>
/// classes; class index i stands for the label value <see cref="ClassLabels"/>[i] (1-based, as in ilastik).
/// </summary>
public sealed class RandomForest
{
    public RandomForest(IReadOnlyList<DecisionTree> trees, int featureCount, int[] classLabels)
    {
        ArgumentNullException.ThrowIfNull(trees);
        ArgumentNullException.ThrowIfNull(classLabels);
        if (trees.Count == 0) throw new ArgumentException("a forest needs at least one tree");
        if (classLabels.Length == 0) throw new ArgumentException("a forest needs at least one class");
        foreach (var t in trees)
        {
            if (t.ClassCount != classLabels.Length)
                throw new ArgumentException($"a tree votes for {t.ClassCount} classes but the forest has {classLabels.Length}");
            if (t.MaxFeature >= featureCount)
                throw new ArgumentException($"a tree reads feature {t.MaxFeature} but the forest has {featureCount} features");
        }
        Trees = trees.ToArray();
        FeatureCount = featureCount;
        ClassLabels = classLabels;
        _shallow = new Lazy<ShallowForest?>(() => ShallowForest.TryBuild(this));
    }

    public IReadOnlyList<DecisionTree> Trees { get; }
    public int FeatureCount { get; }
    public int ClassCount => ClassLabels.Length;
    public int[] ClassLabels { get; }

    /// <summary>The forest laid out for <see cref="ShallowForest"/>'s evaluation, or null when its trees are too deep for it.</summary>
    internal ShallowForest? Shallow => _shallow.Value;

    private readonly Lazy<ShallowForest?> _shallow;
}
