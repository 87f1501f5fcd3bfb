using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Memory;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.IlgpuKernels.Labeling;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>
/// Labelling's segmentation step on an ILGPU accelerator (<see cref="GpuSegmenter"/>): the same mask as the CPU's
/// <see cref="BlockSegmenter"/>, from the same kernels (<see cref="BlockSmoothing.Kernels"/>) and the same channels.
/// </summary>
internal sealed class DeviceSegmenter : IChunkSegmenter
{
    private readonly GpuSegmenter _device;
    private readonly Segmentation _segmentation;
    private readonly FirKernel?[] _kernels;

    public DeviceSegmenter(GpuSegmenter device, Segmentation segmentation, bool is2D)
    {
        ArgumentNullException.ThrowIfNull(segmentation);
        if (segmentation.Mode == SegmentationMode.Labels)
            throw new ArgumentException("a label image is labelled as it is; only threshold and argmax segment", nameof(segmentation));
        _device = device;
        _segmentation = segmentation;
        _kernels = BlockSmoothing.Kernels(segmentation.Smoothing, is2D);
    }

    public void Segment(ChunkSpec chunk, int channels, ChannelReader readChannel, Span<byte> mask)
    {
        var size = chunk.Read.Size;
        int sz = (int)size.Z, sy = (int)size.Y, sx = (int)size.X;
        var core = new Box3(chunk.CoreOffsetInRead, chunk.Core.Size);
        if (_segmentation.Mode == SegmentationMode.Argmax)
        {
            _device.Argmax(channels, _segmentation.Channel, readChannel.Invoke, sz, sy, sx, core, _kernels, mask);
            return;
        }
        int n = checked((int)chunk.Read.VoxelCount);
        float[] image = ChunkBufferPool<float>.Shared.Rent(n);
        try
        {
            readChannel(_segmentation.Channel, image.AsSpan(0, n));
            _device.Threshold(image.AsSpan(0, n), sz, sy, sx, core, _kernels, _segmentation.Threshold, mask);
        }
        finally
        {
            ChunkBufferPool<float>.Shared.Return(image);
        }
    }
}
