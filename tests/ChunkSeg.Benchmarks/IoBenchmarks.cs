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
    protected static readonly long[] Shape = [128, 256, 256];
    protected static readonly NdBox Whole = NdBox.Whole(Shape);
    protected readonly ushort[] Data = new ushort[Shape[0] * Shape[1] * Shape[2]];
    protected readonly ushort[] Buffer = new ushort[Shape[0] * Shape[1] * Shape[2]];
    protected string Dir = "";

    protected void CreateData()
    {
        var rng = new Random(7);
        for (int i = 0; i < Data.Length; i++) Data[i] = (ushort)(1000 + 200 * Math.Sin(i * 0.001) + rng.Next(0, 64));
        Dir = Path.Combine(Path.GetTempPath(), "chunkseg-bdn-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Dir);
    }

    protected string NewPath(string extension) => Path.Combine(Dir, Guid.NewGuid().ToString("N")[..8] + extension);

    protected static VolumeCreateOptions Options(CodecSpec codec) =>
        new(AxisOrder.Parse("zyx"), Shape, DataType.UInt16, [64, 64, 64], VoxelSize.Isotropic, codec);
}

[MemoryDiagnoser]
public class ZarrBenchmarks : VolumeBenchmark
{
    private IVolume? _volume;

    [Params("blosc-lz4:5", "zstd:3", "none")]
    public string Codec { get; set; } = "blosc-lz4:5";

    [GlobalSetup]
    public void Setup()
    {
        CreateData();
        string path = Path.Combine(Dir, "read.zarr");
        using (var z = VolumeStore.Create(VolumeAddress.Parse(path), Options(CodecSpec.Parse(Codec))))
            z.Write<ushort>(Whole, Data);
        _volume = VolumeStore.Open(path);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _volume?.Dispose();
        Directory.Delete(Dir, true);
    }

    [Benchmark]
    public void Read() => _volume!.Read<ushort>(Whole, Buffer);

    [Benchmark]
    public void Write()
    {
        string path = NewPath(".zarr");
        using (var z = VolumeStore.Create(VolumeAddress.Parse(path), Options(CodecSpec.Parse(Codec))))
            z.Write<ushort>(Whole, Data);
        Directory.Delete(path, true);
    }
}

[MemoryDiagnoser]
public class Hdf5Benchmarks : VolumeBenchmark
{
    private IVolume? _volume;

    [Params("gzip:4", "none")]
    public string Codec { get; set; } = "gzip:4";

    [GlobalSetup]
    public void Setup()
    {
        CreateData();
        string path = Path.Combine(Dir, "read.h5") + "/data";
        using (var h = VolumeStore.Create(VolumeAddress.Parse(path), Options(CodecSpec.Parse(Codec))))
            h.Write<ushort>(Whole, Data);
        _volume = VolumeStore.Open(path);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _volume?.Dispose();
        Directory.Delete(Dir, true);
    }

    [Benchmark]
    public void Read() => _volume!.Read<ushort>(Whole, Buffer);

    [Benchmark]
    public void Write()
    {
        string path = NewPath(".h5");
        using (var h = VolumeStore.Create(VolumeAddress.Parse(path + "/data"), Options(CodecSpec.Parse(Codec))))
        {
            h.Write<ushort>(Whole, Data);
            h.Flush();
        }
        File.Delete(path);
    }
}
