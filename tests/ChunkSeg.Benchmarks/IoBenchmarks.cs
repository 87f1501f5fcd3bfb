using BenchmarkDotNet.Attributes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// Whole-volume read and write of a 128x256x256 uint16 volume (16 MiB) in 64³ storage chunks: the same
/// data and layout `chunkseg bench io` hands to zarr-python and h5py. MB/s = 16.78 / mean milliseconds × 1000.
/// The handle stays open between reads, so HDF5 reads after the first are served by its chunk cache.
/// </summary>
public abstract class VolumeBenchmark
{
    private static readonly long[] Shape = [128, 256, 256];
    private static readonly NdBox Whole = NdBox.Whole(Shape);
    private readonly ushort[] _data = new ushort[Shape[0] * Shape[1] * Shape[2]];
    private readonly ushort[] _buffer = new ushort[Shape[0] * Shape[1] * Shape[2]];
    private string _dir = "";
    private IVolume? _volume;

    /// <summary>The codec under test, as `--codec` names it.</summary>
    public abstract string Codec { get; set; }

    /// <summary>An address for a new volume of this format named <paramref name="name"/> in <paramref name="dir"/>.</summary>
    protected abstract string AddressIn(string dir, string name);

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(7);
        for (int i = 0; i < _data.Length; i++) _data[i] = (ushort)(1000 + 200 * Math.Sin(i * 0.001) + rng.Next(0, 64));
        _dir = Path.Combine(Path.GetTempPath(), "chunkseg-bdn-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
        string address = AddressIn(_dir, "read");
        WriteVolume(address);
        _volume = VolumeStore.Open(address);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _volume?.Dispose();
        Directory.Delete(_dir, true);
    }

    [Benchmark]
    public void Read() => _volume!.Read<ushort>(Whole, _buffer);

    [Benchmark]
    public void Write()
    {
        string dir = Path.Combine(_dir, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        WriteVolume(AddressIn(dir, "write"));
        Directory.Delete(dir, true);
    }

    private void WriteVolume(string address)
    {
        using var v = VolumeStore.Create(VolumeAddress.Parse(address),
            new VolumeCreateOptions(AxisOrder.Parse("zyx"), Shape, DataType.UInt16, [64, 64, 64], VoxelSize.Isotropic, CodecSpec.Parse(Codec)));
        v.Write<ushort>(Whole, _data);
        v.Flush();
    }
}

[MemoryDiagnoser]
public class ZarrBenchmarks : VolumeBenchmark
{
    [Params("blosc-lz4:5", "zstd:3", "none")]
    public override string Codec { get; set; } = "blosc-lz4:5";

    protected override string AddressIn(string dir, string name) => Path.Combine(dir, name + ".zarr");
}

[MemoryDiagnoser]
public class Hdf5Benchmarks : VolumeBenchmark
{
    [Params("gzip:4", "none")]
    public override string Codec { get; set; } = "gzip:4";

    protected override string AddressIn(string dir, string name) => Path.Combine(dir, name + ".h5") + "/data";
}
