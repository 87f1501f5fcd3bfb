using ChunkSeg.GpuNode.Backends;
using ChunkSeg.Contracts.Memory;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// Pass 1 of `chunkseg run`, fused in one worker with no intermediate files: a chunk's raw read box →
/// features → classifier → probabilities → segmentation → local labels and the chunk's summary (through
/// <see cref="LabelStage"/>). The output is the local labels; the core's probabilities also go to an export
/// volume when one is given (any axis order; `predict` writes channels last, OME-Zarr wants c before z).
/// <code>
///   read box  = core grown by the segmentation's smoothing halo, grown by the features' halo (clipped)
///   label box = core grown by the smoothing halo (clipped): where probabilities are needed
///   core      = what this chunk labels (and exports)
/// </code>
/// Each voxel's features, and so its probabilities, do not depend on the box they are computed in (halos
/// cover the filters' support), so every value equals what `predict` then `label` compute separately.
/// </summary>
public sealed class ClassifyAndLabelStage : IChunkStage
{
    private readonly ChunkFeatures _features;
    private readonly LabelStage _label;
    private readonly IVolume? _probabilities;
    private readonly Box3 _bounds;
    private readonly AxisOrder? _interleavedAxes;

    /// <param name="probabilities">Where to export the core's probabilities (float32, one channel per class), or null.</param>
    /// <param name="backend">Where features and forest run (default: the CPU).</param>
    public ClassifyAndLabelStage(FeatureSet features, Long3 volumeShape, int inputChannels, IPixelClassifier classifier, LabelStage label,
        IVolume? probabilities, ComputeBackend? backend = null)
    {
        _features = new ChunkFeatures(features, volumeShape.Z, inputChannels, backend, classifier);
        _label = label;
        _probabilities = probabilities;
        _bounds = new Box3(Long3.Zero, volumeShape);
        if (probabilities is not null)
        {
            // The classifier's layout: the export's time and spatial axes in OME order, then the classes.
            var axes = probabilities.Info.Axes;
            _interleavedAxes = AxisOrder.Parse(AxisOrder.Parse(axes.Names.Replace("c", "", StringComparison.Ordinal)).ToOmeOrder().Names + "c");
        }
        RequiredHalo = _features.RequiredHalo + label.RequiredHalo;
    }

    public int Classes => _features.OutputChannels;

    public Halo RequiredHalo { get; }

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var labelBox = chunk.Core.Grow(_label.RequiredHalo, _bounds);
        var featureChunk = chunk with { Core = labelBox };     // features of the label box, from the grid's read box
        var labelChunk = chunk with { Read = labelBox };
        int voxels = checked((int)labelBox.VoxelCount), classes = Classes;
        float[] probabilities = ChunkBufferPool<float>.Shared.Rent(checked(voxels * classes));
        try
        {
            _features.Classify(featureChunk, input, probabilities.AsSpan(0, voxels * classes));
            if (_probabilities is not null) Export(labelChunk, probabilities);

            var labels = MemoryMarshal.Cast<byte, uint>(coreOutput.Span)[..checked((int)chunk.Core.VoxelCount)];
            _label.SegmentAndLabel(labelChunk, classes, (c, destination) =>
            {
                for (int v = 0, i = c; v < destination.Length; v++, i += classes) destination[v] = probabilities[i];
            }, labels);
        }
        finally
        {
            ChunkBufferPool<float>.Shared.Return(probabilities);
        }
    }

    /// <summary>Writes the core's rows of the label box's interleaved probabilities (voxel-major, class-minor) to the export volume.</summary>
    private void Export(ChunkSpec labelChunk, float[] probabilities)
    {
        int classes = Classes;
        var core = labelChunk.Core.Size;
        var size = labelChunk.Read.Size;
        var offset = labelChunk.CoreOffsetInRead;
        var interleaved = new float[checked(core.Volume * classes)];
        int rowLength = (int)core.X * classes, target = 0;
        for (long z = 0; z < core.Z; z++)
        for (long y = 0; y < core.Y; y++, target += rowLength)
        {
            long first = ((offset.Z + z) * size.Y + offset.Y + y) * size.X + offset.X;
            probabilities.AsSpan(checked((int)(first * classes)), rowLength).CopyTo(interleaved.AsSpan(target));
        }
        var info = _probabilities!.Info;
        var box = BoxLayout.ForChunk(info.Axes, info.Shape, labelChunk.TimePoint, labelChunk.Core);
        var bytes = MemoryMarshal.AsBytes(interleaved.AsSpan());
        var interleavedAxes = _interleavedAxes!;
        if (info.Axes.Equals(interleavedAxes))
        {
            _probabilities.Write(box, bytes);
            return;
        }
        var ordered = new byte[bytes.Length];
        var shape = interleavedAxes.Names.Select(info.Extent).ToArray();
        BoxLayout.Transpose(bytes, BoxLayout.ForChunk(interleavedAxes, shape, labelChunk.TimePoint, labelChunk.Core).Shape,
            interleavedAxes, ordered, info.Axes, sizeof(float));
        _probabilities.Write(box, ordered);
    }
}
