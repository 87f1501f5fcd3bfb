using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Zarr;

// PLACEHOLDER until the Zarr layer lands (replaced in the same series of commits).
internal sealed class ZarrVolume : IVolume
{
    public VolumeInfo Info => throw new NotImplementedException();
    public static ZarrVolume Open(string storePath, string innerPath, AxisOrder? axes, bool writable) => throw new NotImplementedException();
    public static ZarrVolume Create(string storePath, string innerPath, VolumeCreateOptions options) => throw new NotImplementedException();
    public void Read(NdBox box, Span<byte> destination) => throw new NotImplementedException();
    public void Write(NdBox box, ReadOnlySpan<byte> source) => throw new NotImplementedException();
    public void Flush() => throw new NotImplementedException();
    public void Dispose() { }
}
