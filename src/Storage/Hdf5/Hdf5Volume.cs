using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Hdf5;

// PLACEHOLDER until the HDF5 layer lands (replaced in the same series of commits).
internal sealed class Hdf5Volume : IVolume
{
    public VolumeInfo Info => throw new NotImplementedException();
    public static Hdf5Volume Open(string filePath, string datasetPath, AxisOrder? axes, bool writable) => throw new NotImplementedException();
    public static Hdf5Volume Create(string filePath, string datasetPath, VolumeCreateOptions options) => throw new NotImplementedException();
    public void Read(NdBox box, Span<byte> destination) => throw new NotImplementedException();
    public void Write(NdBox box, ReadOnlySpan<byte> source) => throw new NotImplementedException();
    public void Flush() => throw new NotImplementedException();
    public void Dispose() { }
}
