using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage;

/// <summary>Reads a box of one time point in the volume's own axis order and lays it out c, z, y, x, so each channel's block is contiguous.</summary>
public static class PlanarRead
{
    /// <summary>A pooled buffer (return it to <see cref="ChunkBufferPool{T}.Shared"/>) whose first <paramref name="bytes"/> hold the box.</summary>
    public static byte[] Rent(IVolume input, long timePoint, Box3 box, out int bytes)
    {
        var info = input.Info;
        var readBox = BoxLayout.ForChunk(info.Axes, info.Shape, timePoint, box);
        int elementSize = info.DataType.SizeInBytes();
        bytes = checked((int)(box.VoxelCount * info.Channels * elementSize));
        byte[] raw = ChunkBufferPool<byte>.Shared.Rent(bytes);
        byte[] planar = ChunkBufferPool<byte>.Shared.Rent(bytes);
        try
        {
            input.Read(readBox, raw.AsSpan(0, bytes));
            BoxLayout.Transpose(raw.AsSpan(0, bytes), readBox.Shape, info.Axes, planar.AsSpan(0, bytes), info.Axes.ToOmeOrder(), elementSize);
            return planar;
        }
        catch
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
            throw;
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(raw);
        }
    }
}
