using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage;

public enum VolumeFormat { Zarr, Hdf5, Tiff, N5 }

/// <summary>What a volume is: everything `chunkseg info` prints.</summary>
public sealed record VolumeInfo(
    string Location,
    VolumeFormat Format,
    AxisOrder Axes,
    long[] Shape,
    DataType DataType,
    int[] StorageChunks,
    VoxelSize VoxelSize,
    string Codec,
    double FillValue)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long SizeInBytes => ElementCount * DataType.SizeInBytes();

    /// <summary>Extent along <paramref name="axis"/>, or 1 when the volume has no such axis.</summary>
    public long Extent(char axis) => Axes.IndexOf(axis) is var i and >= 0 ? Shape[i] : 1;

    /// <summary>Storage chunk extent along <paramref name="axis"/>, or 1 when absent.</summary>
    public long StorageChunkExtent(char axis) => Axes.IndexOf(axis) is var i and >= 0 ? StorageChunks[i] : 1;

    public Long3 SpatialShape => new(Extent('z'), Extent('y'), Extent('x'));
    public Long3 SpatialStorageChunks => new(StorageChunkExtent('z'), StorageChunkExtent('y'), StorageChunkExtent('x'));
    public long TimePoints => Extent('t');
    public long Channels => Extent('c');
}

/// <summary>How a new volume is laid out on disk.</summary>
public sealed record VolumeCreateOptions(
    AxisOrder Axes,
    long[] Shape,
    DataType DataType,
    int[] Chunks,
    VoxelSize VoxelSize,
    CodecSpec Codec,
    double FillValue = 0,
    bool LabelImage = false)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming what does not fit together.</summary>
    public void Validate()
    {
        if (Shape.Length != Axes.Rank)
            throw new ArgumentException($"shape [{string.Join(", ", Shape)}] has {Shape.Length} dimensions but axes \"{Axes}\" has {Axes.Rank}");
        if (Chunks.Length != Axes.Rank)
            throw new ArgumentException($"chunks [{string.Join(", ", Chunks)}] has {Chunks.Length} dimensions but axes \"{Axes}\" has {Axes.Rank}");
        if (Shape.Any(s => s <= 0))
            throw new ArgumentException($"shape [{string.Join(", ", Shape)}] must be positive on every axis");
        if (Chunks.Any(c => c <= 0))
            throw new ArgumentException($"chunks [{string.Join(", ", Chunks)}] must be positive on every axis");
    }
}
