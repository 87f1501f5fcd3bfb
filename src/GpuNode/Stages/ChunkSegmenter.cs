using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Memory;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// The segmentation step of <see cref="LabelStage"/>: a chunk's probabilities over its read box → the foreground
/// mask of its core (smoothing, then threshold or argmax, as <see cref="Segmentation"/> says). Each compute backend
/// gives one (<see cref="Backends.ComputeBackend.Segmenter"/>); all give the CPU's mask. Thread-safe.
/// </summary>
public interface IChunkSegmenter
{
    /// <summary>
    /// Fills <paramref name="mask"/> (the core's voxels in raster order: 1 foreground, 0 background).
    /// <paramref name="readChannel"/>(c, destination) fills channel c's read-box image; it is called once per channel
    /// the mode reads (threshold: the thresholded one; argmax: 0 … <paramref name="channels"/> − 1), in order.
    /// </summary>
    void Segment(ChunkSpec chunk, int channels, ChannelReader readChannel, Span<byte> mask);
}

/// <summary>The CPU's segmentation: <see cref="BlockSmoothing"/> of each channel's read box, crop, then threshold or argmax.</summary>
internal sealed class BlockSegmenter : IChunkSegmenter
{
    private readonly Segmentation _segmentation;
    private readonly FirKernel?[] _kernels;

    public BlockSegmenter(Segmentation segmentation, bool is2D)
    {
        _segmentation = segmentation;
        _kernels = BlockSmoothing.Kernels(segmentation.Smoothing, is2D);
    }

    public void Segment(ChunkSpec chunk, int channels, ChannelReader readChannel, Span<byte> mask)
    {
        int n = checked((int)chunk.Read.VoxelCount), core = checked((int)chunk.Core.VoxelCount);
        float[] probability = ChunkBufferPool<float>.Shared.Rent(n);
        float[] smoothed = ChunkBufferPool<float>.Shared.Rent(n);
        float[] values = ChunkBufferPool<float>.Shared.Rent(core);
        float[] best = ChunkBufferPool<float>.Shared.Rent(core);
        try
        {
            bool threshold = _segmentation.Mode == SegmentationMode.Threshold;
            int foreground = _segmentation.Channel;
            int first = threshold ? foreground : 0, last = threshold ? foreground : channels - 1;
            for (int c = first; c <= last; c++)
            {
                readChannel(c, probability.AsSpan(0, n));
                var image = BlockSmoothing.Apply(_kernels, chunk.Read.Size, probability, smoothed);
                ChunkFeatures.CropCore(chunk, image.AsSpan(0, n), values);
                if (threshold)
                {
                    for (int i = 0; i < core; i++) mask[i] = values[i] >= _segmentation.Threshold ? (byte)1 : (byte)0;
                    continue;
                }
                // Argmax: the foreground channel wins only when strictly larger than every earlier channel
                // and at least as large as every later one (numpy's first-maximum rule).
                for (int i = 0; i < core; i++)
                {
                    float v = values[i];
                    if (c == 0) { best[i] = v; mask[i] = foreground == 0 ? (byte)1 : (byte)0; continue; }
                    if (v > best[i]) { best[i] = v; mask[i] = c == foreground ? (byte)1 : (byte)0; }
                }
            }
        }
        finally
        {
            ChunkBufferPool<float>.Shared.Return(probability);
            ChunkBufferPool<float>.Shared.Return(smoothed);
            ChunkBufferPool<float>.Shared.Return(values);
            ChunkBufferPool<float>.Shared.Return(best);
        }
    }
}
