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

    /// <summary>
    /// The nodes packed 16 bytes each for branch-free traversal (built once, on first use): a leaf becomes a
    /// self-loop (threshold NaN, so the comparison is false, and both children are the leaf itself, feature 0),
    /// so a walk that reached its leaf stays there whatever it reads.
    /// The nodes are laid out in depth-first preorder (a left child right after its parent, each subtree
    /// contiguous), so a walk down the tree stays within few cache lines. <see cref="PackedLeafValues"/> gives
    /// the leaf-value offset of each packed node.
    /// </summary>
    internal PackedNode[] Packed => (_packed ??= Pack()).Nodes;

    /// <summary>Offset into <see cref="LeafValues"/> for each node of <see cref="Packed"/> (leaves only).</summary>
    internal int[] PackedLeafValues => (_packed ??= Pack()).LeafValues;

    private (PackedNode[] Nodes, int[] LeafValues)? _packed;

    private (PackedNode[], int[]) Pack()
    {
        int n = NodeCount;
        var order = new int[n];                 // packed index → original index, in preorder
        var position = new int[n];              // original index → packed index
        var stack = new Stack<int>();
        stack.Push(0);
        int next = 0;
        while (stack.Count > 0)
        {
            int i = stack.Pop();
            position[i] = next;
            order[next++] = i;
            if (Feature[i] >= 0) { stack.Push(Right[i]); stack.Push(Left[i]); }
        }
        if (next != n) Array.Resize(ref order, next);   // nodes unreachable from the root are dropped
        var nodes = new PackedNode[next];
        var leafValues = new int[next];
        for (int k = 0; k < next; k++)
        {
            int i = order[k];
            nodes[k] = Feature[i] >= 0
                ? new PackedNode(FloatThreshold(Threshold[i]), Feature[i], position[Left[i]], position[Right[i]])
                : new PackedNode(float.NaN, 0, k, k);
            leafValues[k] = Feature[i] >= 0 ? 0 : Left[i];
        }
        return (nodes, leafValues);
    }

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

/// <summary>One node for traversal: go to <see cref="Left"/> if x[<see cref="Feature"/>] &lt; <see cref="Threshold"/>, else to <see cref="Right"/> (adjacent fields: the child is Left + 0 or 1).</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
internal readonly struct PackedNode(float threshold, int feature, int left, int right)
{
    public readonly float Threshold = threshold;
    public readonly int Feature = feature;
    public readonly int Left = left;
    public readonly int Right = right;
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
    }

    public IReadOnlyList<DecisionTree> Trees { get; }
    public int FeatureCount { get; }
    public int ClassCount => ClassLabels.Length;
    public int[] ClassLabels { get; }
}
