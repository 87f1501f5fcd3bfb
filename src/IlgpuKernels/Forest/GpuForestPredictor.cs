using ChunkSeg.IlgpuKernels.Kernels;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Kernels.Forest;
using ILGPU;
using ILGPU.Runtime;

namespace ChunkSeg.IlgpuKernels.Forest;

/// <summary>
/// Random-forest probabilities on an ILGPU accelerator, bit-identical to the CPU: a <see cref="RandomForest"/> as
/// <see cref="ForestPredictor.PredictProbabilities(RandomForest, ReadOnlySpan{float}, int, Span{float}, int)"/> computes
/// them (class c of voxel v at <c>output[v * ClassCount + c]</c>), or an <see cref="IlastikClassifier"/> as its
/// <see cref="IlastikClassifier.PredictProbabilities"/> does (forests weighted by tree count, classes mapped to label
/// channels, <c>output[v * LabelCount + channel]</c>). The kernel and its arithmetic are described in
/// <c>Kernels/ForestKernels.cs</c>.
/// <code>
///   constructor:   flatten every tree into one node table (+ roots, votes) and upload it once
///   host path:     features (planar, f·voxelCount + v) → batches of ≤ BatchVoxels voxels:
///                    upload the batch's slice of each feature plane → kernel → read the batch's rows of the output
///   device path:   Enqueue(call, features, voxelCount, output, scratch): one launch on the call's stream, nothing copied
/// </code>
/// Device memory: the tables stay resident; a host-path call additionally holds one batch of features, probabilities
/// and the kernel's scratch, at most <see cref="BatchBudgetBytes"/> (default: a quarter of the device's memory).
/// Thread-safe: each call runs on its own stream.
/// </summary>
public sealed class GpuForestPredictor : IDisposable
{
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _ints;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _floats;
    private readonly MemoryBuffer1D<double, Stride1D.Dense> _votes;
    private readonly ForestLaunch _launch;

    /// <summary>One forest: class index c → output channel c (ChunkSeg's own models, <c>ForestClassifier</c>).</summary>
    public GpuForestPredictor(GpuDevice device, RandomForest forest, long? batchBudgetBytes = null)
        : this(device, [forest ?? throw new ArgumentNullException(nameof(forest))], forest.ClassCount, Enumerable.Range(0, forest.ClassCount).ToArray(),
            combine: false, batchBudgetBytes)
    {
    }

    /// <summary>ilastik's forest of forests: forests weighted by tree count, class i → channel knownLabels[i] − 1.</summary>
    public GpuForestPredictor(GpuDevice device, IlastikClassifier classifier, long? batchBudgetBytes = null)
        : this(device, (classifier ?? throw new ArgumentNullException(nameof(classifier))).Forests, classifier.LabelCount,
            classifier.KnownLabels.Select(l => (int)l - 1).ToArray(), combine: true, batchBudgetBytes)
    {
    }

    private GpuForestPredictor(GpuDevice device, IReadOnlyList<RandomForest> forests, int channels, int[] channelOf, bool combine, long? batchBudgetBytes)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        FeatureCount = forests[0].FeatureCount;
        ClassCount = forests[0].ClassCount;
        OutputChannels = channels;

        long bytesPerVoxel = (long)(FeatureCount + channels + 2 * ClassCount) * sizeof(float);
        long budget = batchBudgetBytes ?? device.MemoryBytes / 4;
        if (budget < bytesPerVoxel)
            throw new ArgumentOutOfRangeException(nameof(batchBudgetBytes), budget,
                $"a batch budget of {budget} bytes does not hold one voxel ({FeatureCount} features + {channels} probabilities + {2 * ClassCount} scratch = {bytesPerVoxel} bytes); give at least {bytesPerVoxel}");
        BatchBudgetBytes = budget;
        BatchVoxels = (int)Math.Max(1, Math.Min(budget / bytesPerVoxel, int.MaxValue / Math.Max(FeatureCount, 2 * ClassCount + channels)));

        var flat = FlatForests.Build(forests);
        int roots = flat.Nodes.Length, treeFirst = roots + flat.Roots.Length, channelMap = treeFirst + flat.TreeFirst.Length;
        int[] ints = [.. flat.Nodes, .. flat.Roots, .. flat.TreeFirst, .. channelOf];
        float[] floats = [.. flat.Votes.Select(w => (float)w), .. forests.Select(f => (float)f.Trees.Count)];
        using var binding = device.Bind();
        _ints = device.Accelerator.Allocate1D(ints);
        _floats = device.Accelerator.Allocate1D(floats);
        _votes = device.Accelerator.Allocate1D(flat.Votes.Length == 0 ? [0.0] : flat.Votes);
        _launch = new ForestLaunch(0, 0, FeatureCount, forests.Count, ClassCount, channels, combine ? 1 : 0, forests.Sum(f => f.Trees.Count),
            roots, treeFirst, channelMap, flat.Votes.Length, 0);
        TreeBytes = _ints.LengthInBytes + _floats.LengthInBytes + _votes.LengthInBytes;
    }

    /// <summary>The device the trees live on.</summary>
    public GpuDevice Device { get; }

    /// <summary>Features per voxel the forests read.</summary>
    public int FeatureCount { get; }

    /// <summary>Classes of the forests.</summary>
    public int ClassCount { get; }

    /// <summary>Probabilities per voxel in the output: the class count for a forest, the label count for an ilastik classifier.</summary>
    public int OutputChannels { get; }

    /// <summary>Device bytes a host-path call may use for its batch of features, probabilities and scratch.</summary>
    public long BatchBudgetBytes { get; }

    /// <summary>Voxels per batch of the host path.</summary>
    public int BatchVoxels { get; }

    /// <summary>Device bytes of the resident trees, votes and tables.</summary>
    public long TreeBytes { get; }

    /// <summary>
    /// Probabilities of <paramref name="voxelCount"/> voxels from host memory, in the CPU layout:
    /// <paramref name="planarFeatures"/>[f * voxelCount + v] → <paramref name="output"/>[v * OutputChannels + c].
    /// Returns when the output is written. Runs in batches of <see cref="BatchVoxels"/>.
    /// </summary>
    public void PredictProbabilities(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> output)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(voxelCount);
        ForestPredictor.CheckLengths(FeatureCount, OutputChannels, planarFeatures.Length, voxelCount, output.Length);
        if (voxelCount == 0) return;
        int batch = Math.Min(voxelCount, BatchVoxels);
        using var call = new DeviceCall(Device);
        var features = call.Rent((long)batch * FeatureCount);
        var probabilities = call.Rent((long)batch * OutputChannels);
        var scratch = RentScratch(call, batch);
        for (int start = 0; start < voxelCount; start += batch)
        {
            int count = Math.Min(batch, voxelCount - start);
            if (count == voxelCount)
                features.View.CopyFromCPU(call.Stream, planarFeatures);
            else
                for (int f = 0; f < FeatureCount; f++)         // the batch's slice of each plane; planes `count` apart on the device
                    features.View.SubView((long)f * count, count).CopyFromCPU(call.Stream, planarFeatures.Slice((int)((long)f * voxelCount + start), count));
            Enqueue(call, features.View.SubView(0, (long)count * FeatureCount), count, probabilities.View, scratch.View);
            probabilities.View.SubView(0, (long)count * OutputChannels).CopyToCPU(call.Stream, output.Slice((int)((long)start * OutputChannels), count * OutputChannels));
        }
    }

    /// <summary>Room for the kernel's per-voxel sums of <paramref name="voxels"/> voxels (<see cref="Enqueue"/>'s scratch).</summary>
    internal DeviceArray RentScratch(DeviceCall call, int voxels) => call.Rent(Math.Max(1L, 2L * ClassCount * voxels));

    /// <summary>
    /// Launches the probabilities of <paramref name="voxelCount"/> voxels whose features are already on the device:
    /// <paramref name="features"/> planar (feature f of voxel v at f * voxelCount + v) → <paramref name="output"/>[v *
    /// OutputChannels + c], on the call's stream; nothing is copied.
    /// </summary>
    internal void Enqueue(DeviceCall call, ArrayView<float> features, int voxelCount, ArrayView<float> output, ArrayView<float> scratch)
    {
        if (features.Length < (long)FeatureCount * voxelCount)
            throw new ArgumentException($"the feature view holds {features.Length} floats; {FeatureCount} features of {voxelCount} voxels need {(long)FeatureCount * voxelCount}", nameof(features));
        if (output.Length < (long)OutputChannels * voxelCount)
            throw new ArgumentException($"the output view holds {output.Length} floats; {OutputChannels} channels of {voxelCount} voxels need {(long)OutputChannels * voxelCount}", nameof(output));
        if (voxelCount == 0) return;
        call.Kernels.Forest(call.Stream, new Index1D(voxelCount), features, _ints.View, _floats.View, _votes.View, scratch, output,
            _launch with { Stride = voxelCount });
    }

    public void Dispose()
    {
        _ints.Dispose();
        _floats.Dispose();
        _votes.Dispose();
    }
}

/// <summary>
/// Every tree of a list of forests in the kernel's layout (<c>Kernels/ForestKernels.cs</c>): nodes as 4 ints each
/// (split: feature, threshold bits, left, right with absolute indices; leaf: −1, first vote, 0, 0), each tree's root,
/// each forest's first tree (plus one past the last), and the distinct leaf vote vectors (ClassCount doubles each,
/// compared bit for bit, so a forest grown to purity stores a handful).
/// </summary>
internal sealed record FlatForests(int[] Nodes, int[] Roots, int[] TreeFirst, double[] Votes)
{
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
