using System.Diagnostics;

namespace ChunkSeg.Kernels.Forest;

/// <summary>How <see cref="ForestTrainer.Train"/> grows a forest.</summary>
/// <param name="Trees">Number of trees.</param>
/// <param name="Seed">Every random draw derives from (Seed, tree index): same seed, same forest, at any thread count.</param>
/// <param name="FeaturesPerSplit">Candidate features drawn per node; null means floor(sqrt(F)), scikit-learn's "sqrt".</param>
/// <param name="MaxDepth">Deepest split level (the root is depth 0); null grows to purity.</param>
/// <param name="MinSamplesLeaf">Fewest distinct bootstrap samples a leaf may hold.</param>
/// <param name="MaxThreads">Trees trained at once.</param>
public sealed record ForestTrainingOptions(
    int Trees = 100, ulong Seed = 0, int? FeaturesPerSplit = null, int? MaxDepth = null, int MinSamplesLeaf = 1, int MaxThreads = 1);

/// <summary>
/// Random-forest training: Breiman's forest of CART trees, as scikit-learn's RandomForestClassifier
/// (criterion "gini", max_features "sqrt", bootstrap) grows it.
/// <code>
///   per tree t (RNG from Seed, t):
///     bootstrap: draw n sample indices with replacement → weight w[i] = times i was drawn
///     node (samples S, weighted class counts c):
///       leaf if pure, depth = MaxDepth, or |S| &lt; 2·MinSamplesLeaf  → stores c / Σc
///       else draw features without replacement; for each non-constant one:
///         sort S by x[f]:   a₀ ≤ a₁ ≤ … ≤ a_m        (keys copied from a feature-major copy of X)
///         scan p:           left = S[0..p], right = S[p+1..]   only where a_p &lt; a_{p+1}
///         score:            Σ_c L_c²/|L| + Σ_c R_c²/|R|   (maximising it = minimising weighted Gini)
///       split at the best: threshold = midpoint (double), so x &lt; t ⇔ x ≤ a_p for every node sample
/// </code>
/// Samples drawn k times are kept once with weight k (what scikit-learn does with its bootstrap counts):
/// the tree sees ~63% distinct rows, sorting is cheaper, and leaves hold bootstrap class frequencies,
/// so the forest's prediction, the mean of leaf distributions, is predict_proba's. MinSamplesLeaf counts
/// distinct samples, as scikit-learn does.
/// <para>
/// Feature draws follow scikit-learn's rule: draw FeaturesPerSplit features; a feature constant on the
/// node counts as drawn, but while none of the drawn ones was non-constant drawing goes on, until one is
/// found or all F are spent (then the node becomes a leaf). Unlike scikit-learn, which treats values
/// closer than 1e-7 as equal, any two distinct float32 values are a candidate split here.
/// </para>
/// <para>
/// Each worker thread owns one <see cref="TreeGrower"/> with every buffer sized once for n samples, so
/// growing a node allocates nothing; trees are stored by index, so the thread count cannot change them.
/// </para>
/// </summary>
public static class ForestTrainer
{
    /// <summary>
    /// Trains a forest. <paramref name="samples"/>: row-major [sample][feature] (n × featureCount), finite;
    /// <paramref name="labels"/>: class index 0..classLabels.Length−1 per sample. A class without samples is
    /// allowed: it gets zero votes everywhere.
    /// </summary>
    public static RandomForest Train(ReadOnlySpan<float> samples, int featureCount, ReadOnlySpan<int> labels, int[] classLabels, ForestTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(classLabels);
        ArgumentNullException.ThrowIfNull(options);
        if (featureCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(featureCount), featureCount, "featureCount must be at least 1");
        if (classLabels.Length == 0)
            throw new ArgumentException("classLabels must name at least one class", nameof(classLabels));
        int n = labels.Length;
        if (n == 0)
            throw new ArgumentException("training needs at least one labelled sample; got 0", nameof(labels));
        if ((long)n * featureCount != samples.Length)
            throw new ArgumentException(
                $"samples holds {samples.Length} values but {n} labels × {featureCount} features need {(long)n * featureCount}", nameof(samples));
        if (options.Trees <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.Trees, "Trees must be at least 1");
        int mtry = options.FeaturesPerSplit ?? Math.Max(1, (int)Math.Sqrt(featureCount));
        if (mtry < 1 || mtry > featureCount)
            throw new ArgumentOutOfRangeException(nameof(options), mtry, $"FeaturesPerSplit must be in 1..{featureCount} (the feature count)");
        if (options.MaxDepth is < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxDepth, "MaxDepth must be 0 or more (0 = a single leaf), or null for no limit");
        if (options.MinSamplesLeaf < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MinSamplesLeaf, "MinSamplesLeaf must be at least 1");
        if (options.MaxThreads < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxThreads, "MaxThreads must be at least 1");

        int k = classLabels.Length;
        for (int i = 0; i < n; i++)
        {
            if ((uint)labels[i] >= (uint)k)
                throw new ArgumentOutOfRangeException(nameof(labels), labels[i], $"label of sample {i} must be a class index in 0..{k - 1}");
        }

        // Feature-major copy: a node's keys for one feature are then one gather from one contiguous row.
        var columns = new float[(long)n * featureCount];
        for (int i = 0; i < n; i++)
        {
            var row = samples.Slice(i * featureCount, featureCount);
            for (int f = 0; f < featureCount; f++)
            {
                float v = row[f];
                if (!float.IsFinite(v))
                    throw new ArgumentException($"sample {i}, feature {f} is {v}; features must be finite", nameof(samples));
                columns[(long)f * n + i] = v == 0 ? 0f : v;   // −0 → +0: same routing, and radix keys then order like ==
            }
        }

        var data = new TrainingData(columns, labels.ToArray(), n, featureCount, k, mtry,
            options.MaxDepth ?? int.MaxValue, options.MinSamplesLeaf);
        var trees = new DecisionTree[options.Trees];
        Parallel.For(0, options.Trees, new ParallelOptions { MaxDegreeOfParallelism = options.MaxThreads },
            () => new TreeGrower(data),
            (t, _, grower) => { trees[t] = grower.Grow(TreeRandom.ForTree(options.Seed, t)); return grower; },
            _ => { });
        return new RandomForest(trees, featureCount, classLabels);
    }
}

/// <summary>Read-only inputs shared by all growers.</summary>
internal sealed record TrainingData(float[] Columns, int[] Labels, int SampleCount, int FeatureCount, int ClassCount,
    int FeaturesPerSplit, int MaxDepth, int MinSamplesLeaf);

/// <summary>Grows one tree at a time, reusing its buffers; one per worker thread.</summary>
internal sealed class TreeGrower
{
    private readonly TrainingData _d;
    private readonly int[] _weight;      // bootstrap count per sample
    private readonly int[] _index;       // node segments of distinct bootstrap samples
    private readonly int[] _sorted;      // a node's samples sorted by the current candidate feature
    private readonly float[] _keys;      // their feature values, sorted alongside
    private readonly int[] _spill;       // right-hand side while partitioning
    private readonly int[] _features;    // feature draw order (partial Fisher–Yates)
    private readonly uint[] _radixKeys, _radixKeys2;
    private readonly int[] _histogram = new int[3 * 2048];
    private readonly long[] _total, _left;
    private readonly Stack<(int Start, int End, int Depth, int Parent, bool IsLeft)> _stack = new();

    // Growing node arrays, trimmed into each DecisionTree.
    private int[] _feature = new int[64], _child0 = new int[64], _child1 = new int[64];
    private double[] _threshold = new double[64];
    private double[] _values = new double[64];
    private int _nodes, _valueCount;

    public TreeGrower(TrainingData data)
    {
        _d = data;
        int n = data.SampleCount;
        _weight = new int[n];
        _index = new int[n];
        _sorted = new int[n];
        _keys = new float[n];
        _spill = new int[n];
        _radixKeys = new uint[n];
        _radixKeys2 = new uint[n];
        _features = new int[data.FeatureCount];
        _total = new long[data.ClassCount];
        _left = new long[data.ClassCount];
    }

    public DecisionTree Grow(TreeRandom rng)
    {
        int n = _d.SampleCount, k = _d.ClassCount;
        Array.Clear(_weight);
        for (int i = 0; i < n; i++) _weight[rng.Next(n)]++;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (_weight[i] > 0) _index[m++] = i;

        _nodes = 0;
        _valueCount = 0;
        _stack.Clear();
        _stack.Push((0, m, 0, -1, false));
        while (_stack.Count > 0)
        {
            var (start, end, depth, parent, isLeft) = _stack.Pop();
            int node = NewNode();
            if (parent >= 0) (isLeft ? _child0 : _child1)[parent] = node;

            CountClasses(start, end, _total);
            bool leaf = IsPure(_total) || depth >= _d.MaxDepth || end - start < 2 * _d.MinSamplesLeaf;
            if (!leaf && FindSplit(start, end, ref rng, out int feature, out double threshold))
            {
                int mid = Partition(start, end, feature, threshold);
                Debug.Assert(mid > start && mid < end);
                _feature[node] = feature;
                _threshold[node] = threshold;
                _stack.Push((mid, end, depth + 1, node, false));   // popped second: left subtree first, preorder
                _stack.Push((start, mid, depth + 1, node, true));
                continue;
            }

            _feature[node] = -1;
            _child0[node] = _valueCount;
            _child1[node] = -1;
            EnsureValues(_valueCount + k);
            double sum = 0;
            for (int c = 0; c < k; c++) sum += _total[c];
            for (int c = 0; c < k; c++) _values[_valueCount + c] = _total[c] / sum;
            _valueCount += k;
        }

        return new DecisionTree(_feature[.._nodes], _threshold[.._nodes], _child0[.._nodes], _child1[.._nodes], _values[.._valueCount], k);
    }

    private bool FindSplit(int start, int end, ref TreeRandom rng, out int bestFeature, out double bestThreshold)
    {
        int fc = _d.FeatureCount, k = _d.ClassCount, minLeaf = _d.MinSamplesLeaf;
        int m = end - start;
        var labels = _d.Labels;
        var weight = _weight;
        var keys = _keys.AsSpan(0, m);
        var sorted = _sorted.AsSpan(0, m);
        var left = _left.AsSpan();
        var total = _total.AsSpan();

        long totalWeight = 0, totalSq = 0;
        for (int c = 0; c < k; c++) { totalWeight += total[c]; totalSq += total[c] * total[c]; }

        for (int f = 0; f < fc; f++) _features[f] = f;
        bestFeature = -1;
        bestThreshold = 0;
        double bestScore = double.NegativeInfinity;
        int drawn = 0, nonConstant = 0;
        while (drawn < fc && (drawn < _d.FeaturesPerSplit || nonConstant == 0))
        {
            int j = drawn + rng.Next(fc - drawn);
            (_features[drawn], _features[j]) = (_features[j], _features[drawn]);
            int f = _features[drawn++];

            SortByFeature(start, m, f);
            if (keys[0] == keys[m - 1]) continue;  // constant here: counts as drawn, not as found
            nonConstant++;

            // Score Σ L_c²/|L| + Σ R_c²/|R| with the squares kept as exact integers, updated per sample.
            left.Clear();
            long leftWeight = 0, leftSq = 0, rightSq = totalSq;
            for (int p = 0; p < m - 1; p++)
            {
                int s = sorted[p];
                int c = labels[s];
                long w = weight[s];
                long l = left[c], r = total[c] - l;
                leftSq += (2 * l + w) * w;           // (l+w)² − l²
                rightSq -= (2 * r - w) * w;          // r² − (r−w)²
                left[c] = l + w;
                leftWeight += w;
                if (keys[p] == keys[p + 1] || p + 1 < minLeaf || m - p - 1 < minLeaf) continue;
                double score = (double)leftSq / leftWeight + (double)rightSq / (totalWeight - leftWeight);
                if (score > bestScore)
                {
                    bestScore = score;
                    bestFeature = f;
                    bestThreshold = Midpoint(keys[p], keys[p + 1]);
                }
            }
        }
        return bestFeature >= 0;
    }

    /// <summary>
    /// Fills _sorted[0..m) with the node's samples ordered by feature f and _keys with their values. Small
    /// nodes use introsort; large ones an LSD radix sort (3 passes of 11 bits, O(m) instead of O(m log m):
    /// the root and the first levels, where most of the sorting work is).
    /// </summary>
    private void SortByFeature(int start, int m, int f)
    {
        var column = _d.Columns.AsSpan(f * _d.SampleCount, _d.SampleCount);
        var keys = _keys.AsSpan(0, m);
        var sorted = _sorted.AsSpan(0, m);
        if (m < RadixThreshold)
        {
            for (int p = 0; p < m; p++)
            {
                int s = _index[start + p];
                sorted[p] = s;
                keys[p] = column[s];
            }
            keys.Sort(sorted);
            return;
        }

        var k0 = _radixKeys.AsSpan(0, m);
        var k1 = _radixKeys2.AsSpan(0, m);
        var i0 = sorted;
        var i1 = _spill.AsSpan(0, m);
        var hist = _histogram.AsSpan();
        hist.Clear();
        for (int p = 0; p < m; p++)
        {
            int s = _index[start + p];
            uint key = SortableKey(column[s]);
            k0[p] = key;
            i0[p] = s;
            hist[(int)(key & 0x7FF)]++;
            hist[2048 + (int)((key >> 11) & 0x7FF)]++;
            hist[4096 + (int)(key >> 22)]++;
        }
        for (int pass = 0; pass < 3; pass++)
        {
            var h = hist.Slice(pass * 2048, 2048);
            int shift = pass * 11;
            if (h[(int)((k0[0] >> shift) & 0x7FF)] == m) continue;   // one bucket: this digit is already sorted
            int sum = 0;
            for (int b = 0; b < 2048; b++) { int c = h[b]; h[b] = sum; sum += c; }
            for (int p = 0; p < m; p++)
            {
                uint key = k0[p];
                int dst = h[(int)((key >> shift) & 0x7FF)]++;
                k1[dst] = key;
                i1[dst] = i0[p];
            }
            var tk = k0; k0 = k1; k1 = tk;
            var ti = i0; i0 = i1; i1 = ti;
        }
        if (i0 != sorted) i0.CopyTo(sorted);   // compares the spans' starts: odd pass counts end in _spill
        for (int p = 0; p < m; p++) keys[p] = FromSortableKey(k0[p]);
    }

    private const int RadixThreshold = 512;

    /// <summary>float → uint with the same order (finite values, no −0): negatives flipped, positives offset.</summary>
    private static uint SortableKey(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
    }

    private static float FromSortableKey(uint key) =>
        BitConverter.UInt32BitsToSingle((key & 0x80000000u) != 0 ? key & 0x7FFFFFFFu : ~key);

    /// <summary>A double t with a &lt; t ≤ b, so (double)x &lt; t routes x ≤ a left and x ≥ b right.</summary>
    internal static double Midpoint(float a, float b)
    {
        double t = ((double)a + b) * 0.5;
        return t > a && t <= b ? t : b;        // rounding when exponents differ by ~30 could land on a
    }

    /// <summary>Stable partition of the node's segment: x &lt; threshold first; returns the first right index.</summary>
    private int Partition(int start, int end, int feature, double threshold)
    {
        var column = _d.Columns.AsSpan(feature * _d.SampleCount, _d.SampleCount);
        int write = start, spilled = 0;
        for (int p = start; p < end; p++)
        {
            int s = _index[p];
            if (column[s] < threshold) _index[write++] = s;
            else _spill[spilled++] = s;
        }
        _spill.AsSpan(0, spilled).CopyTo(_index.AsSpan(write));
        return write;
    }

    private void CountClasses(int start, int end, long[] counts)
    {
        Array.Clear(counts);
        var labels = _d.Labels;
        for (int p = start; p < end; p++)
        {
            int s = _index[p];
            counts[labels[s]] += _weight[s];
        }
    }

    private static bool IsPure(long[] counts)
    {
        int nonZero = 0;
        foreach (long c in counts)
            if (c > 0) nonZero++;
        return nonZero <= 1;
    }

    private int NewNode()
    {
        if (_nodes == _feature.Length)
        {
            int size = _nodes * 2;
            Array.Resize(ref _feature, size);
            Array.Resize(ref _child0, size);
            Array.Resize(ref _child1, size);
            Array.Resize(ref _threshold, size);
        }
        _threshold[_nodes] = 0;
        return _nodes++;
    }

    private void EnsureValues(int size)
    {
        if (size > _values.Length) Array.Resize(ref _values, Math.Max(size, _values.Length * 2));
    }
}

/// <summary>
/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64 from (seed, tree index): each tree's
/// stream is independent of which thread grows it and when.
/// </summary>
internal struct TreeRandom
{
    private ulong _s0, _s1, _s2, _s3;

    public static TreeRandom ForTree(ulong seed, int tree)
    {
        ulong x = seed ^ (0xD1B54A32D192ED03UL * (ulong)(tree + 1));
        var r = new TreeRandom { _s0 = SplitMix(ref x), _s1 = SplitMix(ref x), _s2 = SplitMix(ref x), _s3 = SplitMix(ref x) };
        return r;
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, bound), bound ≥ 1: Lemire's multiply-shift with rejection (no modulo bias).</summary>
    public int Next(int bound)
    {
        Debug.Assert(bound > 0);
        ulong b = (ulong)bound;
        ulong threshold = (0UL - b) % b;
        while (true)
        {
            ulong hi = Math.BigMul(NextUInt64(), b, out ulong lo);
            if (lo >= threshold) return (int)hi;
        }
    }
}
