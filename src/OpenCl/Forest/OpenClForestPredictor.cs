using System.Collections.Concurrent;
using ChunkSeg.Kernels.Forest;

namespace ChunkSeg.OpenCl.Forest;

/// <summary>
/// Random-forest probabilities on an OpenCL device, bit-identical to the CPU: a <see cref="RandomForest"/> as
/// <see cref="ForestPredictor.PredictProbabilities(RandomForest, ReadOnlySpan{float}, int, Span{float}, int)"/> computes
/// them (class c of voxel v at <c>output[v * ClassCount + c]</c>), or an <see cref="IlastikClassifier"/> as its
/// <see cref="IlastikClassifier.PredictProbabilities"/> does (forests weighted by tree count, classes mapped to label
/// channels, <c>output[v * LabelCount + channel]</c>). The kernel and its arithmetic are described in
/// <c>Kernels/random_forest.cl</c>.
/// <code>
///   constructor:   flatten every tree into one int4 node array (+ roots, votes) and upload it once; build the program
///   host path:     features (planar, f·voxelCount + v) → batches of ≤ BatchVoxels voxels:
///                    upload the batch's slice of each feature plane → kernel → read the batch's rows of the output
///   device path:   Enqueue(queue, features buffer, voxelCount, output buffer): one launch, nothing copied
/// </code>
/// <para>
/// Device memory: the trees stay resident (<see cref="TreeBytes"/>); a host-path call additionally holds one batch of
/// features and probabilities, at most <see cref="BatchBudgetBytes"/> (default: a quarter of the device's global memory,
/// at most its largest allocation). The device path allocates nothing: the caller's buffers are its budget.
/// </para>
/// <para>
/// Thread safety: every member may be called from several threads at once. A host-path call takes its own command
/// queue from a pool (created on demand, one per concurrent caller) and its own batch buffers, so calls overlap on the
/// device; only setting the kernel's arguments and enqueueing it (microseconds) is serialised by a lock, because
/// <c>clSetKernelArg</c> on a shared kernel object is not thread-safe. The device path runs on the caller's queue.
/// </para>
/// </summary>
public sealed class OpenClForestPredictor : IDisposable
{
    /// <summary>The embedded source file.</summary>
    public const string SourceFile = "random_forest.cl";

    private const int GroupSize = 64;

    private readonly OpenClKernel _predict;
    private readonly OpenClBuffer _nodes, _roots, _treeFirst, _treeWeight, _voteF, _voteD, _channelOf;
    private readonly int _forestCount;
    private readonly float _totalTrees;
    private readonly long _local;
    private readonly Lock _launch = new();
    private readonly ConcurrentBag<OpenClQueue> _queues = [];
    private bool _disposed;

    /// <summary>One forest: class index c → output channel c (ChunkSeg's own models, <c>ForestClassifier</c>).</summary>
    public OpenClForestPredictor(OpenClContext context, RandomForest forest, long? batchBudgetBytes = null, ProgramCache? cache = null)
        : this(context, [Checked(forest)], forest.ClassCount, Enumerable.Range(0, forest.ClassCount).ToArray(), combine: false, batchBudgetBytes, cache, false)
    {
    }

    /// <summary>ilastik's forest of forests: forests weighted by tree count, class i → channel knownLabels[i] − 1.</summary>
    public OpenClForestPredictor(OpenClContext context, IlastikClassifier classifier, long? batchBudgetBytes = null, ProgramCache? cache = null)
        : this(context, Checked(classifier).Forests, classifier.LabelCount, classifier.KnownLabels.Select(l => (int)l - 1).ToArray(), combine: true,
            batchBudgetBytes, cache, false)
    {
    }

    /// <summary>As the public constructors; <paramref name="floatTotals"/> builds the no-fp64 fallback on any device (tests).</summary>
    internal OpenClForestPredictor(OpenClContext context, IlastikClassifier classifier, bool floatTotals)
        : this(context, Checked(classifier).Forests, classifier.LabelCount, classifier.KnownLabels.Select(l => (int)l - 1).ToArray(), combine: true,
            null, null, floatTotals)
    {
    }

    private OpenClForestPredictor(OpenClContext context, IReadOnlyList<RandomForest> forests, int channels, int[] channelOf, bool combine,
        long? batchBudgetBytes, ProgramCache? cache, bool floatTotals)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
        FeatureCount = forests[0].FeatureCount;
        ClassCount = forests[0].ClassCount;
        OutputChannels = channels;
        _forestCount = forests.Count;
        _totalTrees = forests.Sum(f => f.Trees.Count);

        long bytesPerVoxel = (long)(FeatureCount + channels) * sizeof(float);
        long budget = batchBudgetBytes ?? Math.Min(context.Device.MaxAllocationBytes, context.Device.GlobalMemoryBytes / 4);
        if (budget < bytesPerVoxel)
            throw new ArgumentOutOfRangeException(nameof(batchBudgetBytes), budget,
                $"a batch budget of {budget} bytes does not hold one voxel ({FeatureCount} features + {channels} probabilities = {bytesPerVoxel} bytes); give at least {bytesPerVoxel}");
        BatchBudgetBytes = budget;
        long perBuffer = context.Device.MaxAllocationBytes / ((long)Math.Max(FeatureCount, channels) * sizeof(float));
        BatchVoxels = (int)Math.Max(1, Math.Min(Math.Min(budget / bytesPerVoxel, perBuffer), int.MaxValue / 2));

        string options = $"{KernelSources.StrictOptions} -D CLASSES={ClassCount} -D LABELS={channels} -D COMBINE={(combine ? 1 : 0)}{(floatTotals ? " -D FLOAT_TOTALS" : "")}";
        Program = context.BuildProgram(KernelSources.Load(SourceFile), options, cache, SourceFile);
        _predict = Program.CreateKernel("forest_predict");
        _local = _predict.MaxWorkGroupSize >= GroupSize ? GroupSize : 0;
        TotalIsDouble = ProbeDouble();

        var flat = FlatForests.Build(forests);
        _nodes = context.CreateBuffer<int>(flat.Nodes, OpenClAccess.ReadOnly);
        _roots = context.CreateBuffer<int>(flat.Roots, OpenClAccess.ReadOnly);
        _treeFirst = context.CreateBuffer<int>(flat.TreeFirst, OpenClAccess.ReadOnly);
        _treeWeight = context.CreateBuffer<float>(forests.Select(f => (float)f.Trees.Count).ToArray(), OpenClAccess.ReadOnly);
        _voteF = context.CreateBuffer<float>(flat.Votes.Select(w => (float)w).ToArray(), OpenClAccess.ReadOnly);
        _voteD = TotalIsDouble
            ? context.CreateBuffer<double>(flat.Votes, OpenClAccess.ReadOnly)
            : context.CreateBuffer<float>(flat.Votes.Select(w => (float)w).ToArray(), OpenClAccess.ReadOnly);
        _channelOf = context.CreateBuffer<int>(channelOf, OpenClAccess.ReadOnly);
        TreeBytes = _nodes.SizeBytes + _roots.SizeBytes + _treeFirst.SizeBytes + _treeWeight.SizeBytes + _voteF.SizeBytes + _voteD.SizeBytes + _channelOf.SizeBytes;
    }

    /// <summary>The context the trees live in.</summary>
    public OpenClContext Context { get; }

    /// <summary>The built program (<see cref="OpenClProgram.BuildTime"/>, <see cref="OpenClProgram.Origin"/>).</summary>
    public OpenClProgram Program { get; }

    /// <summary>Features per voxel the forests read.</summary>
    public int FeatureCount { get; }

    /// <summary>Classes of the forests.</summary>
    public int ClassCount { get; }

    /// <summary>Probabilities per voxel in the output: the class count for a forest, the label count for an ilastik classifier.</summary>
    public int OutputChannels { get; }

    /// <summary>Device bytes a host-path call may use for its batch of features and probabilities.</summary>
    public long BatchBudgetBytes { get; }

    /// <summary>Voxels per batch of the host path.</summary>
    public int BatchVoxels { get; }

    /// <summary>Device bytes of the resident trees, votes and tables.</summary>
    public long TreeBytes { get; }

    /// <summary>
    /// True when the device accumulates the vote totals in double (cl_khr_fp64): the output is then bit-identical to
    /// the CPU's. False on a device without fp64: float totals, within a few ulp.
    /// </summary>
    public bool TotalIsDouble { get; }

    /// <summary>
    /// Probabilities of <paramref name="voxelCount"/> voxels from host memory, in the CPU layout:
    /// <paramref name="planarFeatures"/>[f * voxelCount + v] → <paramref name="output"/>[v * OutputChannels + c].
    /// Returns when the output is written. Runs in batches of <see cref="BatchVoxels"/>.
    /// </summary>
    public void PredictProbabilities(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> output)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(voxelCount);
        CheckLengths(planarFeatures.Length, voxelCount, output.Length);
        if (voxelCount == 0) return;
        int batch = Math.Min(voxelCount, BatchVoxels);
        var queue = RentQueue();
        try
        {
            using var features = Context.CreateBuffer((long)batch * FeatureCount * sizeof(float), OpenClAccess.ReadOnly);
            using var probabilities = Context.CreateBuffer((long)batch * OutputChannels * sizeof(float), OpenClAccess.WriteOnly);
            for (int start = 0; start < voxelCount; start += batch)
            {
                int count = Math.Min(batch, voxelCount - start);
                if (count == voxelCount)
                {
                    queue.Write(features, planarFeatures);
                }
                else
                {
                    for (int f = 0; f < FeatureCount; f++)         // the batch's slice of each plane; planes `count` apart on the device
                        queue.Write(features, planarFeatures.Slice((int)((long)f * voxelCount + start), count), (long)f * count);
                }
                using var done = EnqueueRange(queue, features, count, 0, count, probabilities, 0, []);
                queue.Read(probabilities, output.Slice((int)((long)start * OutputChannels), count * OutputChannels), 0, done);
            }
        }
        finally
        {
            ReturnQueue(queue);
        }
    }

    /// <summary>
    /// Enqueues the probabilities of <paramref name="voxelCount"/> voxels whose features are already on the device:
    /// <paramref name="features"/> planar (feature f of voxel v at f * voxelCount + v, at least FeatureCount · voxelCount
    /// floats) → <paramref name="output"/>[v * OutputChannels + c] (at least OutputChannels · voxelCount floats). One
    /// launch on <paramref name="queue"/>, no copies; the returned event completes when the output is written. Both
    /// buffers must stay undisposed until then.
    /// </summary>
    public OpenClEvent Enqueue(OpenClQueue queue, OpenClBuffer features, int voxelCount, OpenClBuffer output, params ReadOnlySpan<OpenClEvent> waitFor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(voxelCount);
        if (queue.Context != Context || features.Context != Context || output.Context != Context)
            throw new ArgumentException("the queue and both buffers must belong to the context this predictor was built for.");
        if (features.Length<float>() < (long)FeatureCount * voxelCount)
            throw new ArgumentException(
                $"the feature buffer holds {features.Length<float>()} floats; {FeatureCount} features of {voxelCount} voxels need {(long)FeatureCount * voxelCount}", nameof(features));
        if (output.Length<float>() < (long)OutputChannels * voxelCount)
            throw new ArgumentException(
                $"the output buffer holds {output.Length<float>()} floats; {OutputChannels} channels of {voxelCount} voxels need {(long)OutputChannels * voxelCount}", nameof(output));
        if (voxelCount == 0) return queue.EnqueueMarker(waitFor);
        return EnqueueRange(queue, features, voxelCount, 0, voxelCount, output, 0, waitFor);
    }

    /// <summary>A device buffer for the probabilities of <paramref name="voxelCount"/> voxels (<see cref="Enqueue"/>'s output).</summary>
    public OpenClBuffer CreateOutputBuffer(int voxelCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(voxelCount);
        return Context.CreateBuffer((long)voxelCount * OutputChannels * sizeof(float), OpenClAccess.ReadWrite);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        while (_queues.TryTake(out var queue)) queue.Dispose();
        _predict.Dispose();
        foreach (var b in new[] { _nodes, _roots, _treeFirst, _treeWeight, _voteF, _voteD, _channelOf }) b.Dispose();
        Program.Dispose();
    }

    private OpenClEvent EnqueueRange(OpenClQueue queue, OpenClBuffer features, long stride, long first, int count, OpenClBuffer output, long outFirst,
        ReadOnlySpan<OpenClEvent> waitFor)
    {
        long global = _local > 0 ? (count + _local - 1) / _local * _local : count;
        lock (_launch)
        {
            _predict.SetArg(0, features).SetValue(1, (ulong)stride).SetValue(2, (ulong)first).SetArg(3, count).SetArg(4, FeatureCount)
                .SetArg(5, _nodes).SetArg(6, _roots).SetArg(7, _treeFirst).SetArg(8, _forestCount).SetArg(9, _treeWeight)
                .SetArg(10, _voteF).SetArg(11, _voteD).SetArg(12, _channelOf).SetArg(13, _totalTrees)
                .SetArg(14, output).SetValue(15, (ulong)outFirst);
            return queue.EnqueueKernel(_predict, new NDRange(global), _local > 0 ? new NDRange(_local) : null, waitFor);
        }
    }

    /// <summary>The CPU predictors' length checks, with their messages.</summary>
    private void CheckLengths(int featuresLength, int voxelCount, int outputLength)
    {
        if ((long)FeatureCount * voxelCount != featuresLength)
            throw new ArgumentException(
                $"the features hold {featuresLength} values; the forest reads {FeatureCount} features for each of {voxelCount} voxels " +
                $"({(long)FeatureCount * voxelCount}); the project's feature selection and the classifier's feature count must match");
        if ((long)OutputChannels * voxelCount > outputLength)
            throw new ArgumentException($"the output holds {outputLength} values; {OutputChannels} per voxel for {voxelCount} voxels need {(long)OutputChannels * voxelCount}");
    }

    private OpenClQueue RentQueue() => _queues.TryTake(out var queue) ? queue : Context.CreateQueue();

    /// <summary>Back to the pool, or disposed when the predictor was disposed meanwhile (callers must not overlap Dispose; this only avoids a leak).</summary>
    private void ReturnQueue(OpenClQueue queue)
    {
        if (_disposed) queue.Dispose();
        else _queues.Add(queue);
    }

    private bool ProbeDouble()
    {
        using var kernel = Program.CreateKernel("forest_total_is_double");
        using var result = Context.CreateBuffer(sizeof(int), OpenClAccess.WriteOnly);
        var queue = RentQueue();
        try
        {
            kernel.SetArg(0, result);
            using var done = queue.EnqueueKernel(kernel, new NDRange(1));
            Span<int> flag = stackalloc int[1];
            queue.Read(result, flag, 0, done);
            return flag[0] == 1;
        }
        finally
        {
            ReturnQueue(queue);
        }
    }

    private static RandomForest Checked(RandomForest forest)
    {
        ArgumentNullException.ThrowIfNull(forest);
        return forest;
    }

    private static IlastikClassifier Checked(IlastikClassifier classifier)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        return classifier;
    }
}

/// <summary>
/// Every tree of a list of forests in the kernel's layout (<c>Kernels/random_forest.cl</c>): nodes as 4 ints each
/// (split: feature, threshold bits, left, right with absolute indices; leaf: −1, first vote, 0, 0), each tree's root,
/// each forest's first tree (plus one past the last), and the distinct leaf vote vectors (ClassCount doubles each,
/// compared bit for bit, so a forest grown to purity stores a handful).
/// </summary>
internal sealed class FlatForests
{
    private FlatForests(int[] nodes, int[] roots, int[] treeFirst, double[] votes)
    {
        Nodes = nodes;
        Roots = roots;
        TreeFirst = treeFirst;
        Votes = votes;
    }

    public int[] Nodes { get; }
    public int[] Roots { get; }
    public int[] TreeFirst { get; }
    public double[] Votes { get; }

    public static FlatForests Build(IReadOnlyList<RandomForest> forests)
    {
        var nodes = new List<int>();
        var roots = new List<int>();
        var treeFirst = new List<int> { 0 };
        var votes = new List<double>();
        var voteOf = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var forest in forests)
        {
            foreach (var tree in forest.Trees)
            {
                int baseIndex = nodes.Count / 4;
                if ((long)baseIndex + tree.NodeCount > int.MaxValue / 4)
                    throw new ArgumentException($"the forests hold more than {int.MaxValue / 4} nodes; too many for one device array");
                roots.Add(baseIndex);
                int classes = tree.ClassCount;
                for (int k = 0; k < tree.NodeCount; k++)
                {
                    if (tree.Feature[k] >= 0)
                    {
                        nodes.Add(tree.Feature[k]);
                        // DecisionTree.FloatThreshold: the float compare then takes vigra's double decision, as on the CPU.
                        nodes.Add(BitConverter.SingleToInt32Bits(DecisionTree.FloatThreshold(tree.Threshold[k])));
                        nodes.Add(baseIndex + tree.Left[k]);
                        nodes.Add(baseIndex + tree.Right[k]);
                        continue;
                    }
                    var w = tree.LeafValues.AsSpan(tree.Left[k], classes);
                    string key = string.Join(',', w.ToArray().Select(BitConverter.DoubleToInt64Bits));
                    if (!voteOf.TryGetValue(key, out int first))
                    {
                        first = votes.Count;
                        voteOf.Add(key, first);
                        votes.AddRange(w);
                    }
                    nodes.Add(-1);
                    nodes.Add(first);
                    nodes.Add(0);
                    nodes.Add(0);
                }
            }
            treeFirst.Add(roots.Count);
        }
        return new FlatForests(nodes.ToArray(), roots.ToArray(), treeFirst.ToArray(), votes.ToArray());
    }
}
