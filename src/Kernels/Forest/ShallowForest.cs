using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ChunkSeg.Kernels.Forest;

/// <summary>
/// A forest of small trees (at most <see cref="MaxNodes"/> nodes each: what ilastik users' brush strokes usually
/// train) evaluated eight voxels at a time straight from the planar features, with no per-voxel walk:
/// <code>
///   for each group of 8 voxels, for each tree in order:
///     mask[root] = all lanes
///     split k (preorder): lt = x[feature k] &lt; threshold k       one contiguous load of the feature's plane
///                         mask[left] = mask[k] ∧ lt,  mask[right] = mask[k] ∧ ¬lt        (skipped when mask[k] is empty)
///     leaf k:             lanes in mask[k]: prob[c] = float32(prob[c] + float32(w[c])), total += w[c] for c = 0 … C−1
/// </code>
/// Every voxel reaches exactly one leaf per tree, so each voxel sees vigra's sums in vigra's order
/// (<see cref="ForestPredictor"/>): the same bits as the walk, with neighbouring voxels (which mostly take the same
/// branches) sharing the work of a node. Deep trees would visit too many nodes per group; they keep the walk.
/// </summary>
[SkipLocalsInit]   // the per-group stack buffers are written before they are read
internal sealed class ShallowForest
{
    /// <summary>Largest tree this evaluator takes: beyond it the per-voxel walk visits fewer nodes.</summary>
    public const int MaxNodes = 64;

    /// <summary>Most classes (vote registers) this evaluator takes.</summary>
    public const int MaxClasses = 8;

    private const int Lanes = 8;

    // Nodes of every tree in preorder, trees one after another. Split: Feature ≥ 0, Right = index of its right child
    // (its left child is the next node). Leaf: Feature = −1, Right = its first vote; its votes are [Right, Right + VoteCount).
    // A leaf keeps only its non-zero votes: adding +0 changes no sum (none is ever −0: they start at +0).
    private readonly float[] _threshold;
    private readonly int[] _feature;
    private readonly int[] _right;
    private readonly int[] _voteCount;
    private readonly int[] _treeStart;          // tree t: nodes [_treeStart[t], _treeStart[t + 1])
    private readonly int[] _voteClass;          // vote i: w = _voteDouble[i] for class _voteClass[i]
    private readonly float[] _voteFloat;        // float32(w)
    private readonly double[] _voteDouble;
    private readonly int _classes;
    private readonly int _features;

    // When every leaf's votes are small integers with the same sum S (pure leaves: one vote of 1), every partial sum
    // is exact, so each voxel's total is T·S, the same for all: the per-lane double totals are not needed.
    private readonly double _constantTotal;

    private ShallowForest(float[] threshold, int[] feature, int[] right, int[] voteCount, int[] treeStart, int[] voteClass, double[] voteDouble,
        int classes, int features, double constantTotal)
    {
        _threshold = threshold;
        _feature = feature;
        _right = right;
        _voteCount = voteCount;
        _treeStart = treeStart;
        _voteClass = voteClass;
        _voteDouble = voteDouble;
        _voteFloat = voteDouble.Select(w => (float)w).ToArray();
        _classes = classes;
        _features = features;
        _constantTotal = constantTotal;
    }

    /// <summary>The forest in this layout, or null when a tree is too big, there are too many classes, or the CPU lacks 256-bit vectors.</summary>
    public static ShallowForest? TryBuild(RandomForest forest)
    {
        if (!Vector256.IsHardwareAccelerated || forest.ClassCount > MaxClasses || forest.Trees.Any(t => t.NodeCount > MaxNodes)) return null;
        var threshold = new List<float>();
        var feature = new List<int>();
        var right = new List<int>();
        var voteCount = new List<int>();
        var treeStart = new List<int>();
        var voteClass = new List<int>();
        var voteDouble = new List<double>();
        int classes = forest.ClassCount;
        var leafSums = new HashSet<double>();
        bool integral = true;
        foreach (var tree in forest.Trees)
        {
            int first = threshold.Count;
            treeStart.Add(first);
            // Preorder from the root: a split's left child is the next node, its right child comes after the left subtree.
            var pending = new Stack<(int Node, int Parent)>();      // Parent: the split whose right child this is, or −1
            pending.Push((0, -1));
            while (pending.Count > 0)
            {
                var (node, parent) = pending.Pop();
                int at = threshold.Count;
                if (parent >= 0) right[parent] = at;
                if (tree.Feature[node] >= 0)
                {
                    threshold.Add(DecisionTree.FloatThreshold(tree.Threshold[node]));
                    feature.Add(tree.Feature[node]);
                    right.Add(-1);
                    voteCount.Add(0);
                    pending.Push((tree.Right[node], at));
                    pending.Push((tree.Left[node], -1));
                }
                else
                {
                    threshold.Add(float.NaN);
                    feature.Add(-1);
                    right.Add(voteDouble.Count);
                    double sum = 0;
                    for (int c = 0; c < classes; c++)
                    {
                        double w = tree.LeafValues[tree.Left[node] + c];
                        integral &= w == Math.Round(w) && Math.Abs(w) <= 1 << 16;
                        sum += w;
                        if (BitConverter.DoubleToInt64Bits(w) == 0) continue;      // +0 only: −0 is kept
                        voteClass.Add(c);
                        voteDouble.Add(w);
                    }
                    voteCount.Add(voteDouble.Count - right[^1]);
                    leafSums.Add(sum);
                }
            }
        }
        treeStart.Add(threshold.Count);
        // Exact when every |partial sum| stays below 2^24 (float32 sums) — T · S with S ≤ 2^16 and T ≤ 2^8 trees.
        double constantTotal = integral && leafSums.Count == 1 && forest.Trees.Count <= 256 && leafSums.First() > 0
            ? forest.Trees.Count * leafSums.First() : double.NaN;
        return new ShallowForest(threshold.ToArray(), feature.ToArray(), right.ToArray(), voteCount.ToArray(), treeStart.ToArray(),
            voteClass.ToArray(), voteDouble.ToArray(), classes, forest.FeatureCount, constantTotal);
    }

    /// <summary>
    /// Probabilities of voxels [start, start + count) of the planar features <paramref name="x"/> into
    /// <paramref name="probs"/>[v · C + c] (v from 0): vigra's predictProbabilities, as <see cref="ForestEngine.PredictBlock"/>.
    /// </summary>
    public unsafe void PredictBlock(FeatureMatrix x, int start, int count, Span<float> probs)
    {
        int classes = _classes, v = 0;
        float* block = x.Data + start;
        Span<float> group = stackalloc float[Lanes * MaxClasses];
        for (; v + Lanes <= count; v += Lanes)
        {
            Group(block + v, x.VoxelCount, group);
            group[..(Lanes * classes)].CopyTo(probs.Slice(v * classes, Lanes * classes));
        }
        if (v == count) return;

        // The last few voxels: their features copied into a group of 8 (the other lanes zero), and only theirs kept.
        int tail = count - v;
        Span<float> padded = stackalloc float[_features * Lanes];
        padded.Clear();
        for (int f = 0; f < _features; f++)
            new ReadOnlySpan<float>(block + (long)f * x.VoxelCount + v, tail).CopyTo(padded.Slice(f * Lanes, tail));
        fixed (float* p = padded)
            Group(p, Lanes, group);
        group[..(tail * classes)].CopyTo(probs.Slice(v * classes, tail * classes));
    }

    /// <summary>The probabilities of 8 voxels, feature f of lane i at x[f · stride + i], into output[i · C + c].</summary>
    private unsafe void Group(float* x, long stride, Span<float> output)
    {
        int classes = _classes;
        var sum = stackalloc Vector256<float>[MaxClasses];
        for (int c = 0; c < classes; c++) sum[c] = Vector256<float>.Zero;
        var totalLow = Vector256<double>.Zero;       // lanes 0–3
        var totalHigh = Vector256<double>.Zero;      // lanes 4–7
        var mask = stackalloc Vector256<float>[MaxNodes];
        var all = Vector256<float>.AllBitsSet;
        bool exactTotal = !double.IsNaN(_constantTotal);

        fixed (float* thresholds = _threshold)
        fixed (int* features = _feature)
        fixed (int* rights = _right)
        fixed (int* voteCounts = _voteCount)
        fixed (int* voteClasses = _voteClass)
        fixed (float* voteFloat = _voteFloat)
        fixed (double* voteDouble = _voteDouble)
        {
            for (int t = 0; t + 1 < _treeStart.Length; t++)
            {
                int first = _treeStart[t], end = _treeStart[t + 1];
                for (int k = 1; k < end - first; k++) mask[k] = Vector256<float>.Zero;
                mask[0] = all;
                for (int node = first; node < end; node++)
                {
                    var m = mask[node - first];
                    if (m == Vector256<float>.Zero) continue;
                    int feature = features[node];
                    if (feature >= 0)
                    {
                        var less = Vector256.LessThan(Vector256.Load(x + feature * stride), Vector256.Create(thresholds[node]));
                        mask[node + 1 - first] = m & less;
                        mask[rights[node] - first] = Vector256.AndNot(m, less);
                        continue;
                    }
                    int firstVote = rights[node], endVote = firstVote + voteCounts[node];
                    if (m == all)
                    {
                        for (int i = firstVote; i < endVote; i++) sum[voteClasses[i]] += Vector256.Create(voteFloat[i]);
                        if (exactTotal) continue;
                        for (int i = firstVote; i < endVote; i++)
                        {
                            var w = Vector256.Create(voteDouble[i]);
                            totalLow += w;
                            totalHigh += w;
                        }
                        continue;
                    }
                    for (int i = firstVote; i < endVote; i++)
                    {
                        ref var s = ref sum[voteClasses[i]];
                        s = Vector256.ConditionalSelect(m, s + Vector256.Create(voteFloat[i]), s);
                    }
                    if (exactTotal) continue;
                    var low = Vector256.WidenLower(m.AsInt32()).AsDouble();
                    var high = Vector256.WidenUpper(m.AsInt32()).AsDouble();
                    for (int i = firstVote; i < endVote; i++)
                    {
                        var w = Vector256.Create(voteDouble[i]);
                        totalLow = Vector256.ConditionalSelect(low, totalLow + w, totalLow);
                        totalHigh = Vector256.ConditionalSelect(high, totalHigh + w, totalHigh);
                    }
                }
            }
        }

        // A voxel whose feature row holds a NaN gets 0 for every class (vigra); the others sum / float32(total).
        var nan = Vector256<float>.Zero;
        for (int f = 0; f < _features; f++)
        {
            var value = Vector256.Load(x + f * stride);
            nan |= ~Vector256.Equals(value, value);
        }
        var divisor = exactTotal ? Vector256.Create((float)_constantTotal) : Vector256.Narrow(totalLow, totalHigh);
        for (int c = 0; c < classes; c++)
        {
            var p = Vector256.AndNot(sum[c] / divisor, nan);
            for (int i = 0; i < Lanes; i++) output[i * classes + c] = p.GetElement(i);
        }
    }
}
