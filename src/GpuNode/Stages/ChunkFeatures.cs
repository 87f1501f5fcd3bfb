using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Internal;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>Receives one feature image over a chunk's core (C order), for output channel <paramref name="channel"/> (ilastik's order).</summary>
public delegate void ChannelImageSink(int channel, ReadOnlySpan<float> image);

/// <summary>
/// The feature images of one chunk: its read box of every input channel, cast to float32 and run through
/// <see cref="FeatureEngine"/>, each image labelled with its channel in ilastik's feature-matrix order
/// (feature block, then input channel, then eigenvalue). Shared by the features and predict stages.
/// </summary>
public sealed class ChunkFeatures
{
    private readonly FeatureSet _set;
    private readonly long _volumeZ;
    private readonly FeatureMatrixLayout _layout;
    private readonly ComputeBackend _backend;
    private readonly IPixelClassifier? _classifier;        // what Classify applies, as the backend runs it on the host …
    private readonly IFusedClassifier? _fused;             // … or fused with the features on its device

    /// <param name="backend">Where the feature kernels run (default: the CPU).</param>
    /// <param name="classifier">What <see cref="Classify"/> applies to the features (null: features only); it must read
    /// as many features as the selection gives for <paramref name="inputChannels"/> channels.</param>
    public ChunkFeatures(FeatureSet set, long volumeZ, int inputChannels, ComputeBackend? backend = null, IPixelClassifier? classifier = null)
    {
        _set = set;
        _backend = backend ?? ComputeBackend.Cpu;
        _volumeZ = volumeZ;
        _layout = new FeatureMatrixLayout(set, volumeZ, inputChannels);
        if (classifier is null) return;
        if (Channels != classifier.FeatureCount)
            throw new ArgumentException($"the classifier reads {classifier.FeatureCount} features but the feature selection gives {Channels} " +
                $"for {inputChannels} input channel(s); was it trained on data with another channel count?");
        _fused = _backend.Fused(set, volumeZ, _layout, classifier);
        _classifier = _fused is null ? _backend.Classifier(classifier) : classifier;
        OutputChannels = classifier.OutputChannels;
    }

    /// <summary>Probability channels of <see cref="Classify"/> (0 without a classifier).</summary>
    public int OutputChannels { get; }

    public int Channels => _layout.Channels;
    public Halo RequiredHalo => _set.RequiredHalo(_volumeZ);

    public void Compute(ChunkSpec chunk, IVolume input, ChannelImageSink sink) =>
        Compute(chunk, input, (engine, block, size, core, channel) =>
            engine.Compute(block, (int)size.Z, (int)size.Y, (int)size.X, core, (entry, component, image) =>
                sink(_layout.ChannelOf(entry, channel, component), image)));

    private delegate void ChannelFeatures(IFeatureEngine engine, ReadOnlySpan<float> block, Long3 size, Box3 core, int channel);

    /// <summary>Each input channel's block of the chunk's read box, as float32, handed to <paramref name="compute"/>.</summary>
    private void Compute(ChunkSpec chunk, IVolume input, ChannelFeatures compute)
    {
        int elementSize = input.Info.DataType.SizeInBytes();
        int n = checked((int)chunk.Read.VoxelCount);
        // (any order of t, c, z, y, x) → c, z, y, x: each channel's block is then contiguous.
        byte[] planar = PlanarRead.Rent(input, chunk.TimePoint, chunk.Read, out _);
        float[] block = ChunkBufferPool<float>.Shared.Rent(n);
        try
        {
            var core = new Box3(chunk.CoreOffsetInRead, chunk.Core.Size);
            var engine = _backend.FeatureEngine(_set, _volumeZ);
            for (int c = 0; c < _layout.InputChannels; c++)
            {
                ToFloat.Convert(planar.AsSpan(c * n * elementSize, n * elementSize), input.Info.DataType, block.AsSpan(0, n));
                compute(engine, block.AsSpan(0, n), chunk.Read.Size, core, c);
            }
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
            ChunkBufferPool<float>.Shared.Return(block);
        }
    }

    /// <summary>
    /// The probabilities of <paramref name="chunk"/>'s core voxels, [v · classes + c] in the core's C order: the features,
    /// then the classifier given at construction. Where the backend fuses the two (the GPU with a forest), the feature
    /// matrix never leaves the device; otherwise it is assembled here, planar, core voxels only.
    /// </summary>
    public void Classify(ChunkSpec chunk, IVolume input, Span<float> probabilities)
    {
        if (_classifier is null) throw new InvalidOperationException("these chunk features were made without a classifier");
        int voxels = checked((int)chunk.Core.VoxelCount);
        if (_fused is not { } fused)
        {
            int length = checked(voxels * Channels);
            float[] planarFeatures = ChunkBufferPool<float>.Shared.Rent(length);
            try
            {
                // The planar matrix is written in place: each image straight into its channel's rows.
                Compute(chunk, input, (engine, block, size, core, channel) =>
                    engine.Compute(block, (int)size.Z, (int)size.Y, (int)size.X, core, (entry, component) =>
                        planarFeatures.AsMemory(_layout.ChannelOf(entry, channel, component) * voxels, voxels)));
                _classifier.Predict(planarFeatures.AsSpan(0, length), voxels, probabilities[..(voxels * OutputChannels)]);
            }
            finally
            {
                ChunkBufferPool<float>.Shared.Return(planarFeatures);
            }
            return;
        }

        int elementSize = input.Info.DataType.SizeInBytes();
        int n = checked((int)chunk.Read.VoxelCount), channels = _layout.InputChannels;
        byte[] planar = PlanarRead.Rent(input, chunk.TimePoint, chunk.Read, out _);
        float[] blocks = ChunkBufferPool<float>.Shared.Rent(checked(n * channels));
        try
        {
            for (int c = 0; c < channels; c++)
                ToFloat.Convert(planar.AsSpan(c * n * elementSize, n * elementSize), input.Info.DataType, blocks.AsSpan(c * n, n));
            fused.Classify(blocks.AsSpan(0, n * channels), chunk.Read.Size, new Box3(chunk.CoreOffsetInRead, chunk.Core.Size), probabilities);
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
            ChunkBufferPool<float>.Shared.Return(blocks);
        }
    }

    /// <summary>
    /// Visits the core voxels of a read-box image in raster order: <paramref name="visit"/>(row of the core, index of
    /// its first voxel among the core's voxels).
    /// </summary>
    public static void ForEachCoreRow(ChunkSpec chunk, ReadOnlySpan<float> image, CoreRowVisitor visit)
    {
        var size = chunk.Read.Size;
        var offset = chunk.CoreOffsetInRead;
        var core = chunk.Core.Size;
        int first = 0;
        for (long z = 0; z < core.Z; z++)
        for (long y = 0; y < core.Y; y++, first += (int)core.X)
            visit(image.Slice((int)(((offset.Z + z) * size.Y + offset.Y + y) * size.X + offset.X), (int)core.X), first);
    }

    /// <summary>The core's values of a read-box image, in the core's raster order.</summary>
    internal static void CropCore(ChunkSpec chunk, ReadOnlySpan<float> readBoxImage, float[] core) =>
        ForEachCoreRow(chunk, readBoxImage, (row, first) => row.CopyTo(core.AsSpan(first)));
}

public delegate void CoreRowVisitor(ReadOnlySpan<float> row, int firstCoreVoxel);
