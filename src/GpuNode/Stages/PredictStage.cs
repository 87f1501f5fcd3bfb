using ChunkSeg.GpuNode.Backends;
using ChunkSeg.Contracts.Memory;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>A pixel classifier over a planar feature matrix (feature f of voxel v at f·voxels + v).</summary>
public interface IPixelClassifier
{
    int FeatureCount { get; }

    /// <summary>Channels of the probability output (one per class, ilastik's label order).</summary>
    int OutputChannels { get; }

    /// <summary>Writes probabilities [v·OutputChannels + c] for <paramref name="voxelCount"/> voxels.</summary>
    void Predict(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> probabilities);
}

/// <summary>
/// Per-class probabilities of a chunk: the features of its read box, of which only the core's voxels are kept
/// (the read box's whole feature matrix never exists), then the classifier on the core
/// (<see cref="ChunkFeatures.Classify"/>). Output float32, channels last.
/// </summary>
public sealed class PredictStage : IChunkStage
{
    private readonly ChunkFeatures _features;

    /// <param name="backend">Where features and forest run (default: the CPU).</param>
    public PredictStage(FeatureSet set, long volumeZ, int inputChannels, IPixelClassifier classifier, ComputeBackend? backend = null)
    {
        _features = new ChunkFeatures(set, volumeZ, inputChannels, backend, classifier);
        PlanningBytesPerVoxel = 4L * (FeatureEngine.MaxScratchBuffers + 2 * inputChannels + OutputChannels + classifier.FeatureCount);
    }

    public int OutputChannels => _features.OutputChannels;

    /// <summary>What a chunk of this pass holds per voxel, for planning chunk sizes: the feature engine's scratch, the input
    /// (read box), the probabilities and the feature matrix, float32 each.</summary>
    public long PlanningBytesPerVoxel { get; }

    public Halo RequiredHalo => _features.RequiredHalo;

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        int voxels = checked((int)chunk.Core.VoxelCount);
        _features.Classify(chunk, input, MemoryMarshal.Cast<byte, float>(coreOutput.Span)[..(voxels * OutputChannels)]);
    }
}
