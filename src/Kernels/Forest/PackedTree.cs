using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ChunkSeg.Kernels.Forest;

/// <summary>
/// A <see cref="DecisionTree"/> laid out for branch-free traversal. Nodes are in depth-first preorder (a left child
/// right after its parent, each subtree contiguous, so a walk down the tree stays within few cache lines), in one of
/// two layouts with the same indices: <see cref="Compact"/>, 8 bytes a node (half the cache footprint), wherever the
/// tree fits it, else <see cref="Wide"/>, 16 bytes.
/// <code>
///   split k:  x[feature] &lt; threshold  →  left child (k + 1)   else  right child
///   leaf k:   threshold NaN (the comparison is false) and right child k itself: a walk that reached its leaf
///             stays there whatever it reads. It carries its vote index v: its class values are Votes[v·C .. v·C + C)
///   CompactNode:  [ threshold f32 | skip i24 : feature u8 ]    right child k + 1 + skip; leaf: skip −1, v in the NaN's payload
///   PackedNode:   [ threshold f32 | feature i32 | left i32 | right i32 ]                   leaf: left v, right k
/// </code>
/// <see cref="Votes"/> holds each distinct leaf value vector once (compared bit for bit): trees grown to purity have
/// a handful, so the votes of a whole forest stay in cache however many leaves it has.
/// </summary>
internal sealed class PackedTree
{
    /// <summary>A compact leaf's vote index must fit a float NaN's payload below the quiet bit.</summary>
    internal const int MaxVotes = 1 << 22;
    private const int QuietNaN = 0x7FC00000;

    private PackedTree(CompactNode[]? compact, PackedNode[]? wide, double[] votes)
    {
        Compact = compact;
        Wide = wide;
        Votes = votes;
    }

    /// <summary>The 8-byte layout, or null where a feature index above 255, a left subtree of 2²³ nodes or 2²² distinct votes do not fit it.</summary>
    public CompactNode[]? Compact { get; }

    /// <summary>The 16-byte layout, null when <see cref="Compact"/> is set.</summary>
    public PackedNode[]? Wide { get; }

    /// <summary>The distinct leaf value vectors, ClassCount values each.</summary>
    public double[] Votes { get; }

    public static PackedTree Build(DecisionTree tree)
    {
        int n = tree.NodeCount, classes = tree.ClassCount;
        int[] feature = tree.Feature, left = tree.Left, right = tree.Right;
        var order = new int[n];                 // packed index → original index, in preorder
        var position = new int[n];              // original index → packed index
        var stack = new Stack<int>();
        stack.Push(0);
        int count = 0;
        while (stack.Count > 0)
        {
            int i = stack.Pop();
            position[i] = count;
            order[count++] = i;
            if (feature[i] >= 0) { stack.Push(right[i]); stack.Push(left[i]); }
        }                                       // nodes unreachable from the root are dropped

        var voteOf = new Dictionary<VoteKey, int>();
        var votes = new List<double>();
        var thresholds = new float[count];      // splits: vigra's decisions in float32; leaves: NaN carrying the vote index
        var leafVote = new int[count];
        bool compact = tree.MaxFeature <= CompactNode.MaxFeature;
        for (int k = 0; k < count; k++)
        {
            int i = order[k];
            if (feature[i] >= 0)
            {
                thresholds[k] = DecisionTree.FloatThreshold(tree.Threshold[i]);
                compact &= position[right[i]] - k - 1 <= CompactNode.MaxSkip;
                continue;
            }
            var key = new VoteKey(tree.LeafValues, left[i], classes);
            if (!voteOf.TryGetValue(key, out int vote))
            {
                vote = voteOf.Count;
                voteOf.Add(key, vote);
                votes.AddRange(tree.LeafValues.AsSpan(left[i], classes));
            }
            leafVote[k] = vote;
            thresholds[k] = BitConverter.Int32BitsToSingle(QuietNaN | (vote & (MaxVotes - 1)));
        }
        compact &= voteOf.Count <= MaxVotes;

        if (compact)
        {
            var nodes = new CompactNode[count];
            for (int k = 0; k < count; k++)
            {
                int i = order[k];
                nodes[k] = feature[i] >= 0 ? new CompactNode(thresholds[k], feature[i], position[right[i]] - k - 1) : new CompactNode(thresholds[k], 0, -1);
            }
            return new PackedTree(nodes, null, votes.ToArray());
        }
        var wide = new PackedNode[count];
        for (int k = 0; k < count; k++)
        {
            int i = order[k];
            wide[k] = feature[i] >= 0 ? new PackedNode(thresholds[k], feature[i], position[left[i]], position[right[i]]) : new PackedNode(thresholds[k], 0, leafVote[k], k);
        }
        return new PackedTree(null, wide, votes.ToArray());
    }

    /// <summary>A leaf's value vector, equal to another only bit for bit (so −0 and 0 stay apart).</summary>
    private readonly struct VoteKey(double[] values, int start, int length) : IEquatable<VoteKey>
    {
        private ReadOnlySpan<long> Bits => MemoryMarshal.Cast<double, long>(values.AsSpan(start, length));

        public bool Equals(VoteKey other) => Bits.SequenceEqual(other.Bits);
        public override bool Equals(object? obj) => obj is VoteKey other && Equals(other);
        public override int GetHashCode()
        {
            var hash = new HashCode();
            foreach (long bits in Bits) hash.Add(bits);
            return hash.ToHashCode();
        }
    }
}

/// <summary>A packed node layout: the branch-free step of a walk, and where a leaf keeps its vote index.</summary>
internal unsafe interface IPackedNode<TNode> where TNode : struct
{
    /// <summary>The node a walk at <paramref name="node"/> goes to for the feature row <paramref name="x"/> (itself on a leaf).</summary>
    static abstract int Next(ref TNode root, float* x, int node);

    /// <summary>The vote index of leaf <paramref name="node"/>.</summary>
    static abstract int VoteOf(ref TNode root, int node);
}

/// <summary>
/// One node in 8 bytes: node k goes to k + 1 (its left child) if x[<see cref="Feature"/>] &lt; <see cref="Threshold"/>,
/// else to k + 1 + <see cref="Skip"/> (the right child, after the left subtree's Skip nodes). The feature is the low
/// byte and Skip the signed upper 24 bits of one word; a leaf has Skip −1 (a self-loop) and a NaN threshold.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly unsafe struct CompactNode(float threshold, int feature, int skip) : IPackedNode<CompactNode>
{
    public const int MaxFeature = byte.MaxValue;
    public const int MaxSkip = (1 << 23) - 1;

    public readonly float Threshold = threshold;
    public readonly int FeatureAndSkip = skip << 8 | feature;

    public int Feature => FeatureAndSkip & 0xFF;
    public int Skip => FeatureAndSkip >> 8;

    /// <summary>k + 1 + (x &lt; threshold ? 0 : skip), with a mask instead of a branch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Next(ref CompactNode root, float* x, int node)
    {
        ref readonly CompactNode nd = ref Unsafe.Add(ref root, node);
        int word = nd.FeatureAndSkip;
        int right = x[word & 0xFF] < nd.Threshold ? 0 : 1;
        return node + 1 + ((word >> 8) & -right);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int VoteOf(ref CompactNode root, int node) => BitConverter.SingleToInt32Bits(Unsafe.Add(ref root, node).Threshold) & (PackedTree.MaxVotes - 1);
}

/// <summary>
/// One node in 16 bytes: go to <see cref="Left"/> if x[<see cref="Feature"/>] &lt; <see cref="Threshold"/>, else to
/// <see cref="Right"/> (adjacent fields: the child is Left + 0 or 1). A leaf's NaN threshold always takes Right (itself),
/// so its Left holds the vote index.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly unsafe struct PackedNode(float threshold, int feature, int left, int right) : IPackedNode<PackedNode>
{
    public readonly float Threshold = threshold;
    public readonly int Feature = feature;
    public readonly int Left = left;
    public readonly int Right = right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Next(ref PackedNode root, float* x, int node)
    {
        ref readonly PackedNode nd = ref Unsafe.Add(ref root, node);
        int right = x[nd.Feature] < nd.Threshold ? 0 : 1;
        return Unsafe.Add(ref Unsafe.AsRef(in nd.Left), right);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int VoteOf(ref PackedNode root, int node) => Unsafe.Add(ref root, node).Left;
}
