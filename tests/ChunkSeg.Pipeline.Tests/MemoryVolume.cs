using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// An in-memory volume for testing the spine without a file format. It counts how often each element is
/// written, so tests can assert that every voxel was written exactly once.
/// </summary>
internal sealed class MemoryVolume : IVolume
{
    private readonly byte[] _data;
    private readonly int[] _writes;
    private readonly object _gate = new();

    public MemoryVolume(AxisOrder axes, long[] shape, DataType type, int[]? chunks = null)
    {
        Info = new VolumeInfo("memory", VolumeFormat.Zarr, axes, shape, type, chunks ?? shape.Select(s => (int)s).ToArray(),
            VoxelSize.Isotropic, "none", 0);
        _data = new byte[Info.SizeInBytes];
        _writes = new int[Info.ElementCount];
    }

    public VolumeInfo Info { get; }
    public Span<byte> Data => _data;
    public IReadOnlyList<int> WriteCounts => _writes;

    public void Read(NdBox box, Span<byte> destination)
    {
        var copy = new byte[box.ElementCount * Elem];
        Walk(box, (offset, i) => _data.AsSpan(offset, Elem).CopyTo(copy.AsSpan(i * Elem, Elem)));
        copy.CopyTo(destination);
    }

    public void Write(NdBox box, ReadOnlySpan<byte> source)
    {
        var copy = source.ToArray();
        lock (_gate)
            Walk(box, (offset, i) =>
            {
                copy.AsSpan(i * Elem, Elem).CopyTo(_data.AsSpan(offset, Elem));
                _writes[offset / Elem]++;
            });
    }

    public void Flush() { }
    public void Dispose() { }

    private int Elem => Info.DataType.SizeInBytes();

    private void Walk(NdBox box, Action<int, int> visit)
    {
        if (!box.IsInside(Info.Shape))
            throw new VolumeException("memory", $"box {box} is outside [{string.Join(", ", Info.Shape)}]");
        int rank = box.Rank;
        var idx = new long[rank];
        long n = box.ElementCount;
        for (int i = 0; i < n; i++)
        {
            long linear = 0;
            for (int d = 0; d < rank; d++) linear = linear * Info.Shape[d] + box.Start[d] + idx[d];
            visit((int)(linear * Elem), i);
            for (int d = rank - 1; d >= 0 && ++idx[d] == box.Shape[d]; d--) idx[d] = 0;
        }
    }
}
