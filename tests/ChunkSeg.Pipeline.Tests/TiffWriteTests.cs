using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Tiff;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg convert IN OUT.tif` writes an ImageJ hyperstack that tifffile reads with the same values, axes and voxel
/// size (pages c fastest, then z, then t), and that ChunkSeg's own TIFF reader reads back identically.
/// </summary>
public sealed class TiffWriteTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "chunkseg-tests", Guid.NewGuid().ToString("N"));

    public TiffWriteTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>Source address, its axes and shape, dtype; expected tifffile axes (ImageJ letters) and OME axes.</summary>
    public static TheoryData<string, string, long[], DataType, string, string, string> Cases() => new()
    {
        { "czyx-u16.zarr", "czyx", [2, 5, 19, 23], DataType.UInt16, "ZCYX", "czyx", "none" },
        { "zyx-u8.zarr", "zyx", [4, 17, 13], DataType.UInt8, "ZYX", "zyx", "zlib" },
        { "yx-f32.zarr", "yx", [21, 34], DataType.Float32, "YX", "yx", "none" },
        { "tczyx-u16.zarr", "tczyx", [2, 2, 3, 9, 11], DataType.UInt16, "TZCYX", "tczyx", "none" },
        { "labels.h5/data", "zyx", [6, 15, 14], DataType.UInt32, "ZYX", "zyx", "none" },
        { "prob.h5/data", "zyxc", [3, 10, 12, 2], DataType.Float32, "ZCYX", "czyx", "gzip" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Convert_writes_an_imagej_hyperstack_tifffile_and_chunkseg_read_back(
        string source, string axes, long[] shape, DataType type, string tiffAxes, string omeAxes, string codec)
    {
        var order = AxisOrder.Parse(axes);
        long count = shape.Aggregate(1L, (a, b) => a * b);
        byte[] data = RandomBytes(type, count, seed: shape.Length * 7 + (int)type);
        var voxel = new VoxelSize(2.5, 0.5, 0.25);
        using (var v = VolumeStore.Create(VolumeAddress.Parse(P(source)),
                   new VolumeCreateOptions(order, shape, type, shape.Select(s => (int)Math.Min(s, 4)).ToArray(), voxel, CodecSpec.Gzip())))
            v.Write(NdBox.Whole(shape), data);

        string tif = P("out.tif");
        var (code, _, err) = await Cli.Run("convert", P(source), tif, "--codec", codec);
        Assert.True(code == 0, err);
        Assert.False(File.Exists(tif + TiffWriter.WritingSuffix));

        // The expected data in OME order (the one source with another order is zyxc: channels last).
        byte[] expected = axes == "zyxc" ? ChannelsFirst(data, shape, type.SizeInBytes()) : data;

        PythonReference.Run("tiff_read.py", tif, P("read.npy"), P("read.json"));
        var npy = NpyFile.Read(P("read.npy"));
        Assert.Equal(type, npy.DataType);
        Assert.True(expected.AsSpan().SequenceEqual(npy.Data), "tifffile read other values");
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("read.json"))))
        {
            var root = doc.RootElement;
            Assert.Equal(tiffAxes, root.GetProperty("axes").GetString());
            Assert.True(root.GetProperty("is_imagej").GetBoolean());
            Assert.False(root.GetProperty("is_bigtiff").GetBoolean());
            Assert.Equal(codec == "none" ? 1 : 8, root.GetProperty("compression").GetInt32());
            var ij = root.GetProperty("imagej_metadata");
            Assert.Equal("micron", ij.GetProperty("unit").GetString());
            if (order.HasZ) Assert.Equal(2.5, ij.GetProperty("spacing").GetDouble(), 6);
            var res = root.GetProperty("resolution");
            Assert.Equal(4.0, res[0].GetDouble(), 5);    // 1 / x
            Assert.Equal(2.0, res[1].GetDouble(), 5);    // 1 / y
        }

        using var back = VolumeStore.Open(tif);
        Assert.Equal(omeAxes, back.Info.Axes.Names);
        Assert.Equal(type, back.Info.DataType);
        var read = new byte[back.Info.SizeInBytes];
        back.Read(NdBox.Whole(back.Info.Shape), read);
        Assert.True(expected.AsSpan().SequenceEqual(read), "ChunkSeg TIFF reader read other values");
        if (order.HasZ) Assert.Equal(2.5, back.Info.VoxelSize.Z, 6);
        Assert.Equal(0.5, back.Info.VoxelSize.Y, 6);
        Assert.Equal(0.25, back.Info.VoxelSize.X, 6);
    }

    [Fact]
    public async Task Existing_output_needs_overwrite_and_a_failed_write_leaves_no_tif()
    {
        long[] shape = [3, 8, 9];
        using (var v = VolumeStore.Create(VolumeAddress.Parse(P("a.zarr")),
                   new VolumeCreateOptions(AxisOrder.Parse("zyx"), shape, DataType.UInt8, [3, 8, 9], VoxelSize.Isotropic, CodecSpec.None)))
            v.Write(NdBox.Whole(shape), RandomBytes(DataType.UInt8, 3 * 8 * 9, 1));
        Assert.Equal(0, (await Cli.Run("convert", P("a.zarr"), P("a.tif"))).Code);
        var (code, _, err) = await Cli.Run("convert", P("a.zarr"), P("a.tif"));
        Assert.Equal(2, code);
        Assert.Contains("--overwrite", err);
        Assert.Equal(0, (await Cli.Run("convert", P("a.zarr"), P("a.tif"), "--overwrite")).Code);
        (code, _, err) = await Cli.Run("convert", P("a.zarr"), P("b.tif"), "--codec", "zstd");
        Assert.Equal(2, code);
        Assert.Contains("deflate", err);

        // Cancelled mid-write: neither out.tif nor the staging file remains.
        using var source = VolumeStore.Open(P("a.zarr"));
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(_ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() => TiffWriter.Write(source, P("c.tif"), progress: progress, ct: cts.Token));
        Assert.False(File.Exists(P("c.tif")));
        Assert.False(File.Exists(P("c.tif") + TiffWriter.WritingSuffix));
    }

    [Fact]
    public void BigTiff_output_reads_back_in_tifffile_and_chunkseg()
    {
        long[] shape = [2, 3, 8, 9];
        byte[] data = RandomBytes(DataType.UInt16, 2 * 3 * 8 * 9, 3);
        using (var v = VolumeStore.Create(VolumeAddress.Parse(P("b.zarr")),
                   new VolumeCreateOptions(AxisOrder.Parse("czyx"), shape, DataType.UInt16, [1, 3, 8, 9], VoxelSize.Isotropic, CodecSpec.None)))
            v.Write(NdBox.Whole(shape), data);
        using (var source = VolumeStore.Open(P("b.zarr")))
            TiffWriter.Write(source, P("b.tif"), bigTiff: true, ct: TestContext.Current.CancellationToken);
        PythonReference.Run("tiff_read.py", P("b.tif"), P("b.npy"), P("b.json"));
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("b.json"))))
            Assert.True(doc.RootElement.GetProperty("is_bigtiff").GetBoolean());
        Assert.Equal(data, NpyFile.Read(P("b.npy")).Data);
        using var back = VolumeStore.Open(P("b.tif"));
        var read = new byte[back.Info.SizeInBytes];
        back.Read(NdBox.Whole(back.Info.Shape), read);
        Assert.Equal(data, read);
    }

    /// <summary>Random bytes; float types get finite values (random bit patterns may be NaN, which compare by bits here anyway).</summary>
    private static byte[] RandomBytes(DataType type, long count, int seed)
    {
        var rng = new Random(seed);
        var bytes = new byte[count * type.SizeInBytes()];
        if (type == DataType.Float32)
        {
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
            for (int i = 0; i < f.Length; i++) f[i] = (float)(rng.NextDouble() * 1000 - 500);
        }
        else rng.NextBytes(bytes);
        return bytes;
    }

    private static byte[] ChannelsFirst(byte[] zyxc, long[] shape, int elem)
    {
        long z = shape[0], y = shape[1], x = shape[2], c = shape[3];
        var result = new byte[zyxc.Length];
        for (long ci = 0; ci < c; ci++)
        for (long i = 0; i < z * y * x; i++)
            Array.Copy(zyxc, (i * c + ci) * elem, result, (ci * z * y * x + i) * elem, elem);
        return result;
    }

    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
