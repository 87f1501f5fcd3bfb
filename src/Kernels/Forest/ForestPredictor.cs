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
    /// forest larger than the caches is read once per block, not once per voxel.
    /// </summary>
    public const int BlockSize = 8192;

    public static void PredictProbabilities(RandomForest forest, ReadOnlySpan<float> features, int voxelCount, Span<float> probabilities, int maxThreads = 1) =>
        PredictProbabilities(forest, features, voxelCount, probabilities, maxThreads, BlockSize);

    /// <summary>As above with an explicit block size (tests show the result does not depend on it).</summary>
    public static unsafe void PredictProbabilities(RandomForest forest, ReadOnlySpan<float> features, int voxelCount, Span<float> probabilities, int maxThreads, int blockSize)
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
                ForestEngine.PredictBlock(forest, input, start, count, probs, scratch);
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

internal static unsafe class ForestEngine
{
    /// <summary>
    /// The node (a leaf) each voxel of the block ends at. Branch-free: the child is Left + (x &lt; threshold ? 0 : 1)
    /// and leaves loop on themselves (<see cref="DecisionTree.Packed"/>), so eight interleaved walks advance in
    /// lock-step with no mispredicted branches, checking every four steps whether any walk still moves.
    /// <paramref name="rows"/> holds the block's features voxel-major (voxel v's at v·F), so one walk reads
    /// from two or three cache lines. The decisions equal vigra's double comparisons
    /// (<see cref="DecisionTree.FloatThreshold"/>).
    /// </summary>
    private static void Traverse(PackedNode[] nodes, float* rows, int featureCount, Span<int> ends)
    {
        int count = ends.Length, v = 0;
        ref PackedNode root = ref nodes[0];
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
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int Step(ref PackedNode root, float* x, ref int node)
    {
        ref readonly PackedNode nd = ref System.Runtime.CompilerServices.Unsafe.Add(ref root, node);
        int right = x[nd.Feature] < nd.Threshold ? 0 : 1;
        int next = System.Runtime.CompilerServices.Unsafe.Add(ref System.Runtime.CompilerServices.Unsafe.AsRef(in nd.Left), right);
        int moved = next ^ node;
        node = next;
        return moved;
    }

    /// <summary>vigra's per-forest probabilities (see <see cref="ForestPredictor"/>) of voxels [start, start + count) into <paramref name="probs"/>[v * C + c].</summary>
    public static void PredictBlock(RandomForest forest, FeatureMatrix x, int start, int count, Span<float> probs, BlockScratch scratch)
    {
        int classes = forest.ClassCount;
        long n = x.VoxelCount;
        float* block = x.Data + start;
        var total = scratch.Total.AsSpan(0, count);
        var nan = scratch.HasNaN.AsSpan(0, count);
        probs = probs[..(count * classes)];
        probs.Clear();
        total.Clear();
        nan.Clear();
        for (int f = 0; f < forest.FeatureCount; f++)
        {
            float* row = block + f * n;
            for (int v = 0; v < count; v++)
                if (float.IsNaN(row[v])) nan[v] = true;
        }

        int features = forest.FeatureCount;
        var rows = scratch.Rows(count * features);
        for (int f = 0; f < features; f++)          // planar → voxel-major for this block
        {
            float* plane = block + f * n;
            for (int v = 0; v < count; v++) rows[v * features + f] = plane[v];
        }
        var ends = scratch.Node.AsSpan(0, count);
        foreach (var tree in forest.Trees)
        {
            fixed (float* r = rows) Traverse(tree.Packed, r, features, ends);
            double[] values = tree.LeafValues;
            int[] leafOffset = tree.PackedLeafValues;
            for (int v = 0; v < count; v++)        // per voxel, trees are added in tree order: vigra's sums
            {
                int leaf = leafOffset[ends[v]];
                ref float p = ref probs[v * classes];
                double t = total[v];
                for (int c = 0; c < classes; c++)
                {
                    double w = values[leaf + c];
                    System.Runtime.CompilerServices.Unsafe.Add(ref p, c) += (float)w;
                    t += w;
                }
                total[v] = t;
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
}
