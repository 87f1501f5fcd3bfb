using ChunkSeg.Contracts.Errors;
using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using static ChunkSeg.Storage.Tests.Hdf5.Hdf5TestSupport;

namespace ChunkSeg.Storage.Tests.Hdf5;

/// <summary>Files written by <c>Hdf5Volume</c> are read by h5py as written, with ilastik's metadata.</summary>
public sealed class Hdf5WriteTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    private static byte[] RandomBytes(long count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Random element bytes, with float NaNs (any bit pattern) replaced so comparisons stay exact.</summary>
    private static byte[] RandomData(DataType type, long elements, int seed)
    {
        var bytes = RandomBytes(elements * type.SizeInBytes(), seed);
        if (type == DataType.Float32)
        {
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
            for (int i = 0; i < f.Length; i++) if (!float.IsFinite(f[i])) f[i] = i;
        }
        if (type == DataType.Float64)
        {
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes.AsSpan());
            for (int i = 0; i < f.Length; i++) if (!double.IsFinite(f[i])) f[i] = i;
        }
        return bytes;
    }

    [Fact]
    public void H5py_reads_every_dtype_and_codec_with_requested_chunks_and_metadata()
    {
        var cases = new List<(string Name, VolumeCreateOptions Options)>();
        foreach (var type in Enum.GetValues<DataType>())
        {
            foreach (var codec in new[] { CodecSpec.Gzip(6), CodecSpec.None })
            {
                cases.Add(($"{type.Name()}-{codec.Name}", new VolumeCreateOptions(
                    AxisOrder.Parse("zyx"), [5, 9, 14], type, [2, 4, 20], new VoxelSize(2, 0.5, 0.25), codec, FillValue: 3)));
            }
        }
        cases.Add(("zyxc", new VolumeCreateOptions(AxisOrder.Parse("zyxc"), [4, 6, 7, 3], DataType.Float32, [3, 3, 3, 3], new VoxelSize(1.5, 0.4, 0.4), CodecSpec.Gzip())));
        cases.Add(("tczyx", new VolumeCreateOptions(AxisOrder.Parse("tczyx"), [2, 2, 3, 5, 4], DataType.UInt16, [1, 1, 2, 2, 2], VoxelSize.Isotropic, new CodecSpec("zlib", 1))));
        cases.Add(("yxc", new VolumeCreateOptions(AxisOrder.Parse("yxc"), [7, 5, 2], DataType.UInt8, [4, 4, 1], new VoxelSize(1, 0.3, 0.6), CodecSpec.None)));
        // 360 chunks, 180 completed by each half: far more compressions than run ahead at once, written oldest first.
        cases.Add(("many-chunks", new VolumeCreateOptions(AxisOrder.Parse("zyx"), [40, 24, 23], DataType.UInt16, [4, 4, 4], VoxelSize.Isotropic, CodecSpec.Gzip(4))));

        var expected = new Dictionary<string, byte[]>();
        for (int seed = 0; seed < cases.Count; seed++)
        {
            var (name, options) = cases[seed];
            string file = dir[$"{name}.h5"];
            using var volume = Hdf5VolumeFactory.Create(file, "results/" + name, options);
            var data = RandomData(options.DataType, NdBox.Whole(options.Shape).ElementCount, seed);
            // Write in two halves along the slowest axis, through chunk borders.
            long half = options.Shape[0] / 2;
            WriteSlab(volume, data, options.Shape, 0, half);
            WriteSlab(volume, data, options.Shape, half, options.Shape[0] - half);
            volume.Flush();
            expected[name] = data;
        }

        string output = RunWithCases("h5_read.py", dir, cases.Select(c => new { file = dir[$"{c.Name}.h5"], dataset = "results/" + c.Name, npy = dir[$"{c.Name}.npy"] }).ToList());
        var seen = JsonDocument.Parse(output).RootElement.EnumerateArray().ToList();
        for (int i = 0; i < cases.Count; i++)
        {
            var (name, options) = cases[i];
            var s = seen[i];
            Assert.True(options.DataType.Name() == s.GetProperty("dtype").GetString(), $"{name}: dtype {s.GetProperty("dtype")}");
            Assert.True(s.GetProperty("byteorder").GetString() is "<" or "|" or "=", $"{name}: byte order {s.GetProperty("byteorder")}");
            Assert.Equal(options.Shape, s.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
            Assert.Equal(options.Chunks.Select((c, d) => (int)Math.Min(c, options.Shape[d])), s.GetProperty("chunks").EnumerateArray().Select(e => e.GetInt32()));
            if (options.Codec.Name == "none")
                Assert.Equal(JsonValueKind.Null, s.GetProperty("compression").ValueKind);
            else
            {
                Assert.Equal("gzip", s.GetProperty("compression").GetString());
                Assert.Equal(options.Codec.Level, s.GetProperty("compression_opts").GetInt32());
            }
            // PureHDF writes no fill value (h5py says "undefined"); ChunkSeg writes every chunk, so none is ever read.
            Assert.Equal(JsonValueKind.Null, s.GetProperty("fillvalue").ValueKind);

            var tags = s.GetProperty("axistags").GetProperty("axes").EnumerateArray().ToList();
            Assert.True(s.GetProperty("axistags_is_vlen").GetBoolean(), "axistags must be a variable-length string like ilastik's");
            Assert.Equal(options.Axes.Names, string.Concat(tags.Select(t => t.GetProperty("key").GetString())));
            foreach (var t in tags)
            {
                char key = t.GetProperty("key").GetString()![0];
                Assert.Equal(key == 'c' ? 1 : key == 't' ? 8 : 2, t.GetProperty("typeFlags").GetInt32());
                Assert.Equal(AxisOrder.KindOf(key) == AxisKind.Space ? options.VoxelSize[key] : 0, t.GetProperty("resolution").GetDouble());
                Assert.Equal("", t.GetProperty("description").GetString());
            }
            double[] esu = options.Axes.HasZ ? [options.VoxelSize.Z, options.VoxelSize.Y, options.VoxelSize.X] : [options.VoxelSize.Y, options.VoxelSize.X];
            Assert.Equal(esu, s.GetProperty("element_size_um").EnumerateArray().Select(e => e.GetDouble()));

            var fromPython = NpyFile.Read(dir[$"{name}.npy"]);
            Assert.True(expected[name].AsSpan().SequenceEqual(fromPython.Data), $"{name}: h5py reads other values than were written");

            // And ChunkSeg reads its own metadata back.
            using var reopened = VolumeStore.Open($"{dir[$"{name}.h5"]}/results/{name}");
            Assert.Equal(options.Axes, reopened.Info.Axes);
            Assert.Equal(options.VoxelSize, reopened.Info.VoxelSize);
            Assert.Equal(options.DataType, reopened.Info.DataType);
        }
    }

    [Fact]
    public void Unwritten_regions_read_as_zero_once_the_file_is_complete()
    {
        var options = new VolumeCreateOptions(AxisOrder.Parse("yx"), [6, 6], DataType.Int16, [4, 4], VoxelSize.Isotropic, CodecSpec.Gzip(), FillValue: 0);
        using (var volume = Hdf5VolumeFactory.Create(dir["f.h5"], "d", options))
        {
            volume.Write(new NdBox([0, 0], [2, 2]), new short[] { 1, 2, 3, 4 }.AsSpan());
            // A file being written cannot be read: PureHDF writes it in one pass.
            var e = Assert.Throws<VolumeException>(() => volume.Read(NdBox.Whole([6, 6]), new short[36].AsSpan()));
            Assert.Contains("cannot be read until it is complete", e.Message);
        }
        using var done = VolumeStore.Open(dir["f.h5"] + "/d");
        var all = new short[36];
        done.Read(NdBox.Whole([6, 6]), all.AsSpan());
        Assert.Equal(1, all[0]);
        Assert.Equal(4, all[7]);
        Assert.Equal(36 - 4, all.Count(v => v == 0));
    }

    [Fact]
    public void A_second_dataset_is_not_added_to_an_existing_file()
    {
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), [2, 3, 4], DataType.UInt8, [2, 2, 2], VoxelSize.Isotropic, CodecSpec.None);
        using (Hdf5VolumeFactory.Create(dir["two.h5"], "a", options)) { }
        var e = Assert.Throws<VolumeException>(() => Hdf5VolumeFactory.Create(dir["two.h5"], "b/c", options));
        Assert.Contains("cannot add b/c to an existing one", e.Message);
        using var a = VolumeStore.Open(dir["two.h5"] + "/a");             // the file is untouched
        Assert.Equal([2L, 3, 4], a.Info.Shape);
    }

    [Fact]
    public void An_existing_h5py_dataset_is_never_opened_for_writing()
    {
        RunWithCases("h5_write.py", dir, new[]
        {
            new { file = dir["le.h5"], dataset = "g/d", dtype = "<u2", shape = new[] { 5, 6 }, chunks = new[] { 2, 4 }, compression = "gzip", npy = dir["before.npy"] },
        });
        var before = File.ReadAllBytes(dir["le.h5"]);
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["le.h5"] + "/g/d", writable: true));
        Assert.Contains("cannot be modified", e.Message);
        Assert.Equal(before, File.ReadAllBytes(dir["le.h5"]));
    }

    [Fact]
    public void Chunks_written_in_any_order_within_the_cache_are_all_in_the_file()
    {
        // Every chunk of a 3 x 4 grid written in reverse order, each in two halves: the cache completes them all.
        var options = new VolumeCreateOptions(AxisOrder.Parse("yx"), [12, 16], DataType.UInt16, [4, 4], VoxelSize.Isotropic, CodecSpec.Gzip(3));
        var values = Enumerable.Range(0, 12 * 16).Select(i => (ushort)(i * 7)).ToArray();
        using (var volume = Hdf5VolumeFactory.Create(dir["order.h5"], "d", options))
            for (int chunk = 11; chunk >= 0; chunk--)
                foreach (int half in new[] { 1, 0 })
                {
                    var box = new NdBox([chunk / 4 * 4 + half * 2, chunk % 4 * 4], [2, 4]);
                    var part = new ushort[8];
                    for (int k = 0; k < 8; k++) part[k] = values[(box.Start[0] + k / 4) * 16 + box.Start[1] + k % 4];
                    volume.Write(box, part.AsSpan());
                }
        RunWithCases("h5_read.py", dir, new[] { new { file = dir["order.h5"], dataset = "d", npy = dir["order.npy"] } });
        Assert.Equal(values, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(NpyFile.Read(dir["order.npy"]).Data.AsSpan()).ToArray());
    }

    private static void WriteSlab(IVolume volume, byte[] data, long[] shape, long start, long count)
    {
        var boxStart = new long[shape.Length];
        var boxShape = (long[])shape.Clone();
        boxStart[0] = start;
        boxShape[0] = count;
        var box = new NdBox(boxStart, boxShape);
        int size = volume.Info.DataType.SizeInBytes();
        volume.Write(box, Slice(data, shape, box, size));
    }
}

/// <summary>Creates through <see cref="VolumeStore"/>, as the pipeline does.</summary>
internal static class Hdf5VolumeFactory
{
    public static IVolume Create(string file, string dataset, VolumeCreateOptions options) =>
        VolumeStore.Create(new VolumeAddress(VolumeFormat.Hdf5, file, dataset), options);
}
