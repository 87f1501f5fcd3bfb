using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage;

/// <summary>Whole-volume copies that keep memory to one chunk.</summary>
public static class VolumeCopy
{
    /// <summary>
    /// Creates <paramref name="target"/> with <paramref name="options"/> and copies <paramref name="source"/> into it one
    /// target chunk at a time, in C order over the chunk grid: every chunk is complete when it is written, which is
    /// what a write-once format (HDF5 through PureHDF) needs, and memory holds one chunk.
    /// </summary>
    public static void ChunkByChunk(IVolume source, VolumeAddress target, VolumeCreateOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!source.Info.Shape.SequenceEqual(options.Shape) || source.Info.DataType != options.DataType)
            throw new ArgumentException($"{source.Info.Location} ({source.Info.DataType} [{string.Join(", ", source.Info.Shape)}]) cannot be copied " +
                $"to a {options.DataType} volume of shape [{string.Join(", ", options.Shape)}]");
        using var output = VolumeStore.Create(target, options);
        var shape = output.Info.Shape;
        var chunks = output.Info.StorageChunks;
        int rank = shape.Length;
        long chunkElements = chunks.Aggregate(1L, (n, c) => n * c);
        var buffer = new byte[checked(chunkElements * options.DataType.SizeInBytes())];
        var grid = shape.Select((n, d) => (n + chunks[d] - 1) / chunks[d]).ToArray();
        var at = new long[rank];
        if (grid.Any(g => g == 0)) return;
        while (true)
        {
            var start = new long[rank];
            var size = new long[rank];
            for (int d = 0; d < rank; d++)
            {
                start[d] = at[d] * chunks[d];
                size[d] = Math.Min(chunks[d], shape[d] - start[d]);
            }
            var box = new NdBox(start, size);
            var bytes = buffer.AsSpan(0, checked((int)(box.ElementCount * options.DataType.SizeInBytes())));
            source.Read(box, bytes);
            output.Write(box, bytes);
            int k = rank - 1;
            for (; k >= 0; k--)
            {
                if (++at[k] < grid[k]) break;
                at[k] = 0;
            }
            if (k < 0) break;
        }
    }
}
