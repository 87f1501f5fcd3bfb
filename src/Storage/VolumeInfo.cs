using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage;

public enum VolumeFormat { Zarr, Hdf5, Tiff, N5 }

/// <summary>What a volume is: everything `chunkseg info` prints.</summary>
/// <param name="StorageChunks">The chunks a read decodes (a sharded Zarr v3 array's inner chunks).</param>
/// <param name="ShardShape">A sharded Zarr v3 array's shard shape (elements per axis, whole storage chunks); null when unsharded.</param>
public sealed record VolumeInfo(
    string Location,
    VolumeFormat Format,
    AxisOrder Axes,
    long[] Shape,
    DataType DataType,
    int[] StorageChunks,
    VoxelSize VoxelSize,
    string Codec,
    double FillValue,
    int[]? ShardShape = null)
{
    /// <summary>
    /// The smallest box a writer owns alone: the shard when sharded, else the storage chunk. A write that covers a
    /// unit only in part reads, merges and rewrites it, serialised only within one process, so writers in different
    /// processes must be given whole, disjoint write units.
    /// </summary>
    public int[] WriteUnit => ShardShape ?? StorageChunks;

    /// <summary>Write unit extent along <paramref name="axis"/>, or 1 when absent.</summary>
    public long WriteUnitExtent(char axis) => Axes.IndexOf(axis) is var i and >= 0 ? WriteUnit[i] : 1;

    public Long3 SpatialWriteUnit => new(WriteUnitExtent('z'), WriteUnitExtent('y'), WriteUnitExtent('x'));

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
/// <param name="ZarrFormat">Zarr output only: 2 (the default; OME-NGFF 0.4) or 3 (OME-NGFF 0.5, zarr.json).</param>
/// <param name="ShardShape">
/// Zarr v3 only: elements per axis of one shard, a multiple of <paramref name="Chunks"/> on every axis (the chunks become
/// the shard's inner chunks); null writes one file per chunk.
/// </param>
public sealed record VolumeCreateOptions(
    AxisOrder Axes,
    long[] Shape,
    DataType DataType,
    int[] Chunks,
    VoxelSize VoxelSize,
    CodecSpec Codec,
    double FillValue = 0,
    bool LabelImage = false,
    int ZarrFormat = 2,
    int[]? ShardShape = null)
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
        if (ZarrFormat is not (2 or 3))
            throw new ArgumentException($"Zarr format must be 2 or 3; got {ZarrFormat}");
        if (ShardShape is not null)
        {
            if (ZarrFormat != 3)
                throw new ArgumentException($"shards [{string.Join(", ", ShardShape)}] need Zarr format 3; Zarr v2 has no sharding");
            if (ShardShape.Length != Axes.Rank)
                throw new ArgumentException($"shards [{string.Join(", ", ShardShape)}] has {ShardShape.Length} dimensions but axes \"{Axes}\" has {Axes.Rank}");
            for (int d = 0; d < ShardShape.Length; d++)
                if (ShardShape[d] <= 0 || ShardShape[d] % Chunks[d] != 0)
                    throw new ArgumentException($"shards [{string.Join(", ", ShardShape)}] must be positive multiples of the chunks [{string.Join(", ", Chunks)}] on every axis " +
                        $"(axis {Axes.Names[d]}: {ShardShape[d]} is not a multiple of {Chunks[d]})");
        }
    }
}
