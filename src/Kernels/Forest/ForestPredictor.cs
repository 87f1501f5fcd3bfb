using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ChunkSeg.Kernels.Forest;

/// <summary>
/// vigra's <c>RandomForest::predictProbabilities</c> with float32 output (ILASTIK_RECIPE.md §5), bit for bit:
/// <code>
///   for each tree t, in order:  w = values of the leaf voxel v reaches
///                               prob[l] = float32(prob[l] + float32(w[l]))     (float32 accumulation)
///                               total  += w[l]  for l = 0 … C−1                (double)
///   prob[l] = prob[l] / float32(total)
///   a voxel whose feature row holds a NaN gets prob = 0 for every class
/// </code>
/// Features are planar: feature f of voxel v at <c>f * voxelCount + v</c>; probabilities are voxel-major:
/// class c of voxel v at <c>v * ClassCount + c</c>. Voxels go in blocks of <see cref="BlockSize"/>: each tree
/// walks every voxel of a block before the next tree starts, so its nodes stay in cache; blocks are spread over
/// up to maxThreads threads. A voxel's arithmetic depends only on the tree order, so results are identical for
/// any thread count and block size.
/// </summary>
public static class ForestPredictor
{
    /// <summary>
    /// Voxels per block: every tree's nodes are walked for the whole block before the next tree, so a
    /// forest larger than the caches is read once per block, not once per voxel. 4096 voxels × 40 features
    /// of voxel-major rows (640 KB) stay in a 1 MB L2 with the tree being walked and the next one being
    /// prefetched; 8192 (1.3 MB) do not.
    /// </summary>
    public const int BlockSize = 4096;

    public static void PredictProbabilities(RandomForest forest, ReadOnlySpan<float> features, int voxelCount, Span<float> probabilities, int maxThreads = 1) =>
        PredictProbabilities(forest, features, voxelCount, probabilities, maxThreads, BlockSize);

    /// <summary>As above with an explicit block size (tests show the result does not depend on it).</summary>
    public static void PredictProbabilities(RandomForest forest, ReadOnlySpan<float> features, int voxelCount, Span<float> probabilities, int maxThreads, int blockSize) =>
        PredictProbabilities(forest, features, voxelCount, probabilities, maxThreads, blockSize, ForestEvaluation.Auto);

    /// <summary>As above with the evaluation chosen (tests run both on the same forests).</summary>
    internal static unsafe void PredictProbabilities(RandomForest forest, ReadOnlySpan<float> features, int voxelCount, Span<float> probabilities, int maxThreads, int blockSize,
        ForestEvaluation evaluation)
    {
        ArgumentNullException.ThrowIfNull(forest);
        ArgumentOutOfRangeException.ThrowIfNegative(voxelCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        CheckLengths(forest.FeatureCount, forest.ClassCount, features.Length, voxelCount, probabilities.Length);
        int c = forest.ClassCount;
        fixed (float* f = features)
        fixed (float* p = probabilities)
        {
            var input = new FeatureMatrix(f, voxelCount, forest.FeatureCount);
            float* output = p;
            ForEachBlock(voxelCount, maxThreads, blockSize, c, (start, count, scratch) =>
            {
                var probs = new Span<float>(output + (long)start * c, count * c);
                ForestEngine.PredictBlock(forest, input, start, count, probs, scratch, evaluation);
            });
        }
    }

    internal static void CheckLengths(int featureCount, int classCount, int featuresLength, int voxelCount, int outputLength)
    {
        if ((long)featureCount * voxelCount != featuresLength)
            throw new ArgumentException(
                $"the features hold {featuresLength} values; the forest reads {featureCount} features for each of {voxelCount} voxels " +
                $"({(long)featureCount * voxelCount}); the project's feature selection and the classifier's feature count must match");
        if ((long)classCount * voxelCount > outputLength)
            throw new ArgumentException($"the output holds {outputLength} values; {classCount} per voxel for {voxelCount} voxels need {(long)classCount * voxelCount}");
    }

    internal delegate void BlockAction(int start, int count, BlockScratch scratch);

    /// <summary>Runs <paramref name="action"/> on consecutive voxel blocks, on up to <paramref name="maxThreads"/> threads, one scratch per thread.</summary>
    internal static void ForEachBlock(int voxelCount, int maxThreads, int blockSize, int width, BlockAction action)
    {
        int blocks = (int)(((long)voxelCount + blockSize - 1) / blockSize);
        if (blocks == 0) return;
        if (maxThreads == 1 || blocks == 1)
        {
            var scratch = new BlockScratch(blockSize, width);
            for (int b = 0; b < blocks; b++)
                action(b * blockSize, Math.Min(blockSize, voxelCount - b * blockSize), scratch);
            return;
        }
        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = maxThreads },
            () => new BlockScratch(blockSize, width),
            (b, _, scratch) =>
            {
                action(b * blockSize, Math.Min(blockSize, voxelCount - b * blockSize), scratch);
                return scratch;
            },
            _ => { });
    }
}

/// <summary>Planar float32 features behind a pointer the caller keeps pinned: feature f of voxel v at f * VoxelCount + v.</summary>
internal readonly unsafe struct FeatureMatrix(float* data, int voxelCount, int featureCount)
{
    public float* Data { get; } = data;
    public int VoxelCount { get; } = voxelCount;
    public int FeatureCount { get; } = featureCount;
}

/// <summary>Per-thread buffers for one voxel block: the per-voxel vote totals and NaN flags, and room for a forest's probabilities.</summary>
internal sealed class BlockScratch(int blockSize, int width)
{
    public double[] Total { get; } = new double[blockSize];
    public bool[] HasNaN { get; } = new bool[blockSize];
    public int[] Node { get; } = new int[blockSize];
    public float[] Probabilities { get; } = new float[blockSize * width];
    public float[] Sum { get; } = new float[blockSize * width];

    /// <summary>The block's features voxel-major, grown to the largest forest seen.</summary>
    public float[] Rows(int length) => _rows.Length >= length ? _rows : _rows = new float[length];
    private float[] _rows = [];
}

/// <summary>How a forest is evaluated: both give the same bits; Auto takes <see cref="ShallowForest"/>'s where it applies.</summary>
internal enum ForestEvaluation { Auto, Walk, Masked }

internal static unsafe class ForestEngine
{
    /// <summary>vigra's per-forest probabilities (see <see cref="ForestPredictor"/>) of voxels [start, start + count) into <paramref name="probs"/>[v * C + c].</summary>
    public static void PredictBlock(RandomForest forest, FeatureMatrix x, int start, int count, Span<float> probs, BlockScratch scratch,
        ForestEvaluation evaluation = ForestEvaluation.Auto)
    {
        int classes = forest.ClassCount;
        if (evaluation != ForestEvaluation.Walk && forest.Shallow is { } shallow)
        {
            shallow.PredictBlock(x, start, count, probs[..(count * classes)]);
            return;
        }
        if (evaluation == ForestEvaluation.Masked)
            throw new InvalidOperationException("the masked evaluation takes trees of at most 64 nodes, 8 classes, and 256-bit vectors");
        long n = x.VoxelCount;
        float* block = x.Data + start;
        var total = scratch.Total.AsSpan(0, count);
        var nan = scratch.HasNaN.AsSpan(0, count);
        probs = probs[..(count * classes)];
        probs.Clear();
        total.Clear();
        nan.Clear();
        int features = forest.FeatureCount;
        var rows = scratch.Rows(count * features);
        for (int f = 0; f < features; f++)          // planar → voxel-major for this block, noting NaNs on the way
        {
            float* plane = block + f * n;
            for (int v = 0; v < count; v++)
            {
                float value = plane[v];
                rows[v * features + f] = value;
                if (float.IsNaN(value)) nan[v] = true;
            }
        }
        var ends = scratch.Node.AsSpan(0, count);
        var trees = forest.Trees;
        fixed (float* r = rows)
        {
            for (int t = 0; t < trees.Count; t++)
            {
                var tree = trees[t].Packed;
                if (t + 1 < trees.Count) Prefetch(trees[t + 1].Packed);
                if (tree.Compact is { } compact)
                {
                    TraverseCompact(compact, r, features, ends);
                    AddVotes(compact, tree.Votes, ends, probs, total, classes);
                }
                else
                {
                    Traverse(tree.Wide!, r, features, ends);
                    AddVotes(tree.Wide!, tree.Votes, ends, probs, total, classes);
                }
            }
        }

        for (int v = 0; v < count; v++)
        {
            var p = probs.Slice(v * classes, classes);
            if (nan[v])
            {
                p.Clear();
                continue;
            }
            float divisor = (float)total[v];
            for (int c = 0; c < classes; c++) p[c] /= divisor;
        }
    }

    /// <summary>
    /// Asks for the next tree's nodes while this one is walked: a tree is read once per block, and reading it as one
    /// sequential sweep is much cheaper than the random misses its walks would take (their first visits per block).
    /// </summary>
    private static void Prefetch(PackedTree tree)
    {
        if (!Sse.IsSupported) return;
        var bytes = tree.Compact is { } compact ? MemoryMarshal.AsBytes(compact.AsSpan()) : MemoryMarshal.AsBytes(tree.Wide.AsSpan());
        fixed (byte* p = bytes)
            for (int i = 0; i < bytes.Length; i += 64) Sse.Prefetch1(p + i);
    }

    /// <summary>Per voxel, the tree's leaf votes added in tree order (vigra's sums): prob[c] += float32(w[c]) and the double total += w[c].</summary>
    private static void AddVotes<TNode>(TNode[] nodes, double[] votes, ReadOnlySpan<int> ends, Span<float> probs, Span<double> total, int classes)
        where TNode : struct, IPackedNode<TNode>
    {
        ref TNode root = ref nodes[0];
        ref double w0 = ref votes[0];
        ref float p0 = ref MemoryMarshal.GetReference(probs);
        for (int v = 0; v < ends.Length; v++)
        {
            ref double w = ref Unsafe.Add(ref w0, TNode.VoteOf(ref root, ends[v]) * classes);
            ref float p = ref Unsafe.Add(ref p0, v * classes);
            double t = total[v];
            for (int c = 0; c < classes; c++)
            {
                double wc = Unsafe.Add(ref w, c);
                Unsafe.Add(ref p, c) += (float)wc;
                t += wc;
            }
            total[v] = t;
        }
    }

    /// <summary>
    /// The node (a leaf) each voxel of the block ends at. Branch-free: the child is chosen by arithmetic on the
    /// comparison and leaves loop on themselves (<see cref="PackedTree"/>), so eight interleaved walks advance in
    /// lock-step with no mispredicted branches, checking every four steps whether any walk still moves.
    /// <paramref name="rows"/> holds the block's features voxel-major (voxel v's at v·F), so one walk reads
    /// from two or three cache lines. The decisions equal vigra's double comparisons
    /// (<see cref="DecisionTree.FloatThreshold"/>).
    /// </summary>
    private static void Traverse<TNode>(TNode[] nodes, float* rows, int featureCount, Span<int> ends) where TNode : struct, IPackedNode<TNode>
    {
        int count = ends.Length, v = 0;
        ref TNode root = ref nodes[0];
        for (; v + 8 <= count; v += 8)
        {
            float* x = rows + (long)v * featureCount;
            int f = featureCount;
            int a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
            int moved;
            do
            {
                moved = 0;
                for (int s = 0; s < 4; s++)
                {
                    moved |= Step(ref root, x, ref a0) | Step(ref root, x + f, ref a1) | Step(ref root, x + 2 * f, ref a2) | Step(ref root, x + 3 * f, ref a3)
                           | Step(ref root, x + 4 * f, ref a4) | Step(ref root, x + 5 * f, ref a5) | Step(ref root, x + 6 * f, ref a6) | Step(ref root, x + 7 * f, ref a7);
                }
            }
            while (moved != 0);
            ends[v] = a0; ends[v + 1] = a1; ends[v + 2] = a2; ends[v + 3] = a3;
            ends[v + 4] = a4; ends[v + 5] = a5; ends[v + 6] = a6; ends[v + 7] = a7;
        }
        for (; v < count; v++)                     // tail: one walk at a time, the same decisions
        {
            int a = 0;
            while (Step(ref root, rows + (long)v * featureCount, ref a) != 0) { }
            ends[v] = a;
        }
    }

    /// <summary>One level of one walk; returns non-zero when the walk moved (it stays put on a leaf).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Step<TNode>(ref TNode root, float* x, ref int node) where TNode : struct, IPackedNode<TNode>
    {
        int next = TNode.Next(ref root, x, node);
        int moved = next ^ node;
        node = next;
        return moved;
    }

    /// <summary>
    /// <see cref="Traverse{TNode}"/> over compact nodes with AVX2 gathers: a Vector256 holds the nodes of a group of
    /// 8 walks (lane i: voxel v + i), and four groups advance together so that the gathers' latencies overlap. Each
    /// lane's step is exactly <see cref="CompactNode.Next"/> (see <see cref="StepGather"/>). A group whose 8 walks
    /// all stopped moving has reached its leaves: it stores them and takes the next 8 voxels, so a group waits only
    /// for its own deepest walk. Beside the groups, four scalar walks (<see cref="StepOne"/>) take voxels one at a time
    /// from the other end of the block: a gather's elements go through the core one by one, leaving load ports idle
    /// that the scalar walks' plain loads use (about 10 % faster than the groups alone). Groups stop taking voxels when
    /// fewer than 8 are left between the two ends; the scalar walks finish those.
    /// </summary>
    private static void TraverseCompact(CompactNode[] nodes, float* rows, int featureCount, Span<int> ends)
    {
        int count = ends.Length, v = 0;
        if (Avx2.IsSupported && (long)count * featureCount <= int.MaxValue)   // gather offsets are int32
        {
            fixed (CompactNode* root = nodes)
            fixed (int* end = ends)
            {
                var rowStep = Vector256.Create(featureCount) * Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
                int hi = count, live = 0, solo = 0;
                Vector256<int> n0 = default, n1 = default, n2 = default, n3 = default, o0 = default, o1 = default, o2 = default, o3 = default;
                int v0 = Take(ref v, hi, featureCount, rowStep, ref o0, ref live), v1 = Take(ref v, hi, featureCount, rowStep, ref o1, ref live);
                int v2 = Take(ref v, hi, featureCount, rowStep, ref o2, ref live), v3 = Take(ref v, hi, featureCount, rowStep, ref o3, ref live);
                int q0 = TakeOne(ref hi, v, ref solo), q1 = TakeOne(ref hi, v, ref solo), q2 = TakeOne(ref hi, v, ref solo), q3 = TakeOne(ref hi, v, ref solo);
                int s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                while (live + solo > 0)
                {
                    var m0 = StepGather(root, rows, o0, n0);
                    var m1 = StepGather(root, rows, o1, n1);
                    var m2 = StepGather(root, rows, o2, n2);
                    var m3 = StepGather(root, rows, o3, n3);
                    if (q0 >= 0) q0 = StepOne(root, rows, featureCount, end, q0, ref s0, ref hi, v, ref solo);
                    if (q1 >= 0) q1 = StepOne(root, rows, featureCount, end, q1, ref s1, ref hi, v, ref solo);
                    if (q2 >= 0) q2 = StepOne(root, rows, featureCount, end, q2, ref s2, ref hi, v, ref solo);
                    if (q3 >= 0) q3 = StepOne(root, rows, featureCount, end, q3, ref s3, ref hi, v, ref solo);
                    if (m0 == n0 && v0 >= 0) v0 = Retire(end, v0, ref m0, ref v, hi, featureCount, rowStep, ref o0, ref live);
                    if (m1 == n1 && v1 >= 0) v1 = Retire(end, v1, ref m1, ref v, hi, featureCount, rowStep, ref o1, ref live);
                    if (m2 == n2 && v2 >= 0) v2 = Retire(end, v2, ref m2, ref v, hi, featureCount, rowStep, ref o2, ref live);
                    if (m3 == n3 && v3 >= 0) v3 = Retire(end, v3, ref m3, ref v, hi, featureCount, rowStep, ref o3, ref live);
                    n0 = m0; n1 = m1; n2 = m2; n3 = m3;
                }
                v = count;                                  // the two ends met: every voxel was walked
            }
        }
        if (v < count) Traverse(nodes, rows + (long)v * featureCount, featureCount, ends[v..]);
    }

    /// <summary>Starts a scalar walk on the last voxel not yet taken (below <paramref name="hi"/>, at or above the groups' <paramref name="next"/>), or returns −1 when none is left.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TakeOne(ref int hi, int next, ref int solo)
    {
        if (hi <= next) return -1;
        solo++;
        return --hi;
    }

    /// <summary>One step of the scalar walk of voxel <paramref name="q"/> (<see cref="CompactNode.Next"/>); at its leaf, stores it and takes another voxel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int StepOne(CompactNode* root, float* rows, int featureCount, int* end, int q, ref int node, ref int hi, int next, ref int solo)
    {
        int moved = CompactNode.Next(ref *root, rows + (long)q * featureCount, node);
        if (moved != node)
        {
            node = moved;
            return q;
        }
        end[q] = node;
        node = 0;
        solo--;
        return TakeOne(ref hi, next, ref solo);
    }

    /// <summary>Starts a group on the next 8 voxels, at the root; returns its first voxel, or −1 (an idle group) when fewer than 8 are left below <paramref name="hi"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Take(ref int next, int hi, int featureCount, Vector256<int> rowStep, ref Vector256<int> rowOffset, ref int live)
    {
        if (next + 8 > hi) return -1;
        int first = next;
        next += 8;
        live++;
        rowOffset = Vector256.Create(first * featureCount) + rowStep;    // lane i: where voxel first + i's row starts
        return first;
    }

    /// <summary>Stores the leaves of a finished group and restarts it on the next voxels (<see cref="Take"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Retire(int* end, int first, ref Vector256<int> node, ref int next, int hi, int featureCount, Vector256<int> rowStep, ref Vector256<int> rowOffset, ref int live)
    {
        node.Store(end + first);
        node = default;
        live--;
        return Take(ref next, hi, featureCount, rowStep, ref rowOffset, ref live);
    }

    /// <summary>
    /// One step of 8 walks: lane i goes from node[i] to node[i] + 1 + (x &lt; threshold ? 0 : skip), reading
    /// x = rows[rowOffset[i] + feature]. The nodes are fetched whole (threshold and word, 8 bytes) by two 4-lane
    /// gathers, on lanes (0 1 4 5) and (2 3 6 7) so that one in-lane shuffle sorts them back to lane order.
    /// A NaN x or threshold compares false (ordered compare), as in the scalar step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> StepGather(CompactNode* root, float* rows, Vector256<int> rowOffset, Vector256<int> node)
    {
        var pairs = Avx2.Permute4x64(node.AsInt64(), 0b11_01_10_00).AsInt32();        // nodes 0 1 4 5 | 2 3 6 7
        var lo = Avx2.GatherVector256((long*)root, pairs.GetLower(), 8).AsSingle();   // t0 w0 t1 w1 | t4 w4 t5 w5
        var hi = Avx2.GatherVector256((long*)root, pairs.GetUpper(), 8).AsSingle();   // t2 w2 t3 w3 | t6 w6 t7 w7
        var threshold = Avx.Shuffle(lo, hi, 0b10_00_10_00);                           // t0 t1 t2 t3 | t4 t5 t6 t7
        var word = Avx.Shuffle(lo, hi, 0b11_01_11_01).AsInt32();
        var x = Avx2.GatherVector256(rows, rowOffset + (word & Vector256.Create(0xFF)), 4);
        var less = Avx.CompareLessThan(x, threshold).AsInt32();
        return node + Vector256<int>.One + Vector256.AndNot(Vector256.ShiftRightArithmetic(word, 8), less);
    }
}
