using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// ilastik's pixel-feature matrix for a chunk (<see cref="ChunkFeatures"/>): the core of each feature image
/// lands in the float32 output, channels last, in ilastik's order.
/// </summary>
/// <param name="backend">Where the feature kernels run (default: the CPU).</param>
public sealed class FeaturesStage(FeatureSet set, long volumeZ, int inputChannels, ComputeBackend? backend = null) : IChunkStage
{
    private readonly ChunkFeatures _features = new(set, volumeZ, inputChannels, backend);

    public int OutputChannels => _features.Channels;

    public Halo RequiredHalo => _features.RequiredHalo;

    /// <summary>The feature matrix's axes: the input's axes without c, then c.</summary>
    public static AxisOrder OutputAxes(AxisOrder input) => AxisOrder.Parse(input.Names.Replace("c", "", StringComparison.Ordinal) + "c");

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        int channels = OutputChannels;
        _features.Compute(chunk, input, (channel, image) =>
        {
            var cores = MemoryMarshal.Cast<byte, float>(coreOutput.Span);   // channels last: stride = channel count
            for (int v = 0, o = channel; v < image.Length; v++, o += channels)
                cores[o] = image[v];
        });
    }
}
