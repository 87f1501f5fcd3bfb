using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Storage;

/// <summary>
/// A chunked n-dimensional array on disk. Boxes are in the volume's own axis order; buffers hold the box in
/// C order with elements in the machine's (little-endian) byte order, whatever the file's byte order.
/// <para>
/// Implementations are safe for concurrent calls on different boxes: parallel writers of disjoint boxes
/// never corrupt each other, even when the boxes share a storage chunk.
/// </para>
/// </summary>
public interface IVolume : IDisposable
{
    VolumeInfo Info { get; }

    /// <summary>Reads <paramref name="box"/>, which must lie inside the volume (see <see cref="VolumeExtensions.ReadPadded"/> otherwise).</summary>
    void Read(NdBox box, Span<byte> destination);

    /// <summary>Writes <paramref name="box"/>, which must lie inside the volume.</summary>
    void Write(NdBox box, ReadOnlySpan<byte> source);

    /// <summary>Makes every completed write durable (HDF5 flush; Zarr writes are durable when they return).</summary>
    void Flush();
}
