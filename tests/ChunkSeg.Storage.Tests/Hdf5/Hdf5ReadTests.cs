using ChunkSeg.Contracts.Errors;
using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using static ChunkSeg.Storage.Tests.Hdf5.Hdf5TestSupport;

namespace ChunkSeg.Storage.Tests.Hdf5;

/// <summary>Files written by h5py are read by <c>Hdf5Volume</c> exactly as NumPy sees them.</summary>
public sealed class Hdf5ReadTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    private sealed record Case(
        string Name, string Dtype, long[] Shape, int[]? Chunks, string? Compression, bool Shuffle,
        DataType Expected, string Dataset = "data", string ExpectedCodec = "", double? Fill = null, bool Partial = false);

    private static readonly string[] AllDtypes = ["|u1", "<u2", "<u4", "<u8", "|i1", "<i2", "<i4", "<i8", "<f4", "<f8"];
    private static readonly DataType[] AllTypes =
        [DataType.UInt8, DataType.UInt16, DataType.UInt32, DataType.UInt64, DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64, DataType.Float32, DataType.Float64];

    private static List<Case> Cases()
    {
        var cases = new List<Case>();
        long[] odd = [7, 11, 13];
        for (int i = 0; i < AllDtypes.Length; i++)
        {
            cases.Add(new($"le-{AllTypes[i].Name()}", AllDtypes[i], odd, [3, 4, 5], "gzip", false, AllTypes[i], ExpectedCodec: "gzip(level 4)"));
            if (AllDtypes[i][0] == '<')   // the same, big-endian in the file
                cases.Add(new($"be-{AllTypes[i].Name()}", ">" + AllDtypes[i][1..], odd, [3, 4, 5], null, false, AllTypes[i], ExpectedCodec: "none"));
        }
        cases.Add(new("contiguous", "<u2", [5, 9, 17], null, null, false, DataType.UInt16, ExpectedCodec: "none"));
        cases.Add(new("contiguous-be-f4", ">f4", [3, 6, 10], null, null, false, DataType.Float32, ExpectedCodec: "none"));
        cases.Add(new("shuffle-gzip", "<f4", [9, 10, 11], [4, 4, 4], "gzip", true, DataType.Float32, ExpectedCodec: "shuffle+gzip(level 4)"));
        cases.Add(new("nested", "<i2", [6, 7], [4, 4], "gzip", false, DataType.Int16, Dataset: "group/sub group/deep", ExpectedCodec: "gzip(level 4)"));
        cases.Add(new("rank4", "|u1", [3, 5, 6, 2], [2, 2, 4, 1], "gzip", false, DataType.UInt8, ExpectedCodec: "gzip(level 4)"));
        cases.Add(new("fill", "<i4", [8, 5, 6], [3, 3, 3], "gzip", false, DataType.Int32, ExpectedCodec: "gzip(level 4)", Fill: 7, Partial: true));
        return cases;
    }

    [Fact]
    public void Reads_every_dtype_endianness_codec_and_layout_like_numpy()
    {
        var cases = Cases();
        var specs = cases.Select((c, i) => new Dictionary<string, object?>
        {
            ["file"] = dir[$"{c.Name}.h5"], ["dataset"] = c.Dataset, ["dtype"] = c.Dtype, ["shape"] = c.Shape,
            ["chunks"] = c.Chunks, ["compression"] = c.Compression, ["shuffle"] = c.Shuffle, ["fill"] = c.Fill,
            ["partial"] = c.Partial, ["npy"] = dir[$"{c.Name}.npy"], ["seed"] = 100 + i,
            ["attrs"] = c.Shape.Length == 4 ? new Dictionary<string, object> { ["axistags"] = AxisTagsJson("zyxc") } : null,
        }).ToList();
        RunWithCases("h5_write.py", dir, specs);

        foreach (var c in cases)
        {
            var expected = NpyFile.Read(dir[$"{c.Name}.npy"]);
            using var volume = VolumeStore.Open($"{dir[$"{c.Name}.h5"]}/{c.Dataset}");
            var info = volume.Info;
            Assert.True(c.Expected == info.DataType, $"{c.Name}: dtype {info.DataType}");
            Assert.Equal(c.Shape, info.Shape);
            Assert.Equal(VolumeFormat.Hdf5, info.Format);
            Assert.True(c.ExpectedCodec == info.Codec, $"{c.Name}: codec {info.Codec}");
            if (c.Chunks is not null) Assert.Equal(c.Chunks, info.StorageChunks);
            else Assert.Equal(c.Shape.Select(s => (int)s), info.StorageChunks);   // small contiguous: one block
            Assert.Equal(c.Fill ?? 0, info.FillValue);
            Assert.Equal(c.Shape.Length == 4 ? "zyxc" : c.Shape.Length == 3 ? "zyx" : "yx", info.Axes.Names);

            int size = info.DataType.SizeInBytes();
            var whole = new byte[info.SizeInBytes];
            if (c.Dtype.StartsWith('>'))
            {
                // PureHDF does not convert byte order: the dataset opens (dtype, shape, codec above), reading says why and what to do.
                var e = Assert.Throws<VolumeException>(() => volume.Read(NdBox.Whole(info.Shape), whole));
                Assert.Contains("big-endian", e.Message);
                Assert.Contains($"astype('<", e.Message);
                continue;
            }
            volume.Read(NdBox.Whole(info.Shape), whole);
            Assert.True(expected.Data.AsSpan().SequenceEqual(whole), $"{c.Name}: whole volume differs from h5py");
            foreach (var box in RandomBoxes(info.Shape, seed: c.Name.Length, count: 6))
            {
                var part = new byte[box.ElementCount * size];
                volume.Read(box, part);
                Assert.True(Slice(expected.Data, info.Shape, box, size).AsSpan().SequenceEqual(part), $"{c.Name}: box {box} differs");
            }
        }
    }

    [Fact]
    public void Fill_value_appears_where_h5py_wrote_nothing()
    {
        RunWithCases("h5_write.py", dir, new[]
        {
            new { file = dir["f.h5"], dataset = "d", dtype = "<f4", shape = new[] { 6, 4 }, chunks = new[] { 2, 2 }, fill = -2.5, partial = true, npy = "" },
        });
        using var volume = VolumeStore.Open(dir["f.h5"] + "/d");
        Assert.Equal(-2.5, volume.Info.FillValue);
        var last = new float[4];
        volume.Read(new NdBox([5, 0], [1, 4]), last.AsSpan());
        Assert.All(last, v => Assert.Equal(-2.5f, v));
    }

    [Fact]
    public void Axes_and_voxel_size_come_from_axistags_and_element_size_um()
    {
        RunWithCases("h5_write.py", dir, new object[]
        {
            // vlen axistags with resolutions, no element_size_um
            new { file = dir["a.h5"], dataset = "t", dtype = "|u1", shape = new[] { 2, 3, 4, 5 }, chunks = (int[]?)null,
                  attrs = new Dictionary<string, object> { ["axistags"] = AxisTagsJson("tyxc", y: 0.5, x: 0.25) } },
            // fixed-length axistags (numpy bytes) and element_size_um overriding the resolutions
            new { file = dir["a.h5"], dataset = "z", dtype = "|u1", shape = new[] { 3, 4, 5, 2 }, chunks = (int[]?)null,
                  attrs = new Dictionary<string, object>
                  {
                      ["axistags"] = new { fixed_string = AxisTagsJson("zyxc", z: 9, y: 9, x: 9) },
                      ["element_size_um"] = new[] { 2.0, 0.5, 0.25 },
                  } },
            // 2D element_size_um (y, x) with no axistags
            new { file = dir["a.h5"], dataset = "yx", dtype = "|u1", shape = new[] { 4, 5 }, chunks = (int[]?)null,
                  attrs = new Dictionary<string, object> { ["element_size_um"] = new[] { 0.5, 0.75 } } },
        });
        using (var v = VolumeStore.Open(dir["a.h5"] + "/t"))
        {
            Assert.Equal("tyxc", v.Info.Axes.Names);
            Assert.Equal(new VoxelSize(1, 0.5, 0.25), v.Info.VoxelSize);
        }
        using (var v = VolumeStore.Open(dir["a.h5"] + "/z"))
        {
            Assert.Equal("zyxc", v.Info.Axes.Names);
            Assert.Equal(new VoxelSize(2, 0.5, 0.25), v.Info.VoxelSize);
        }
        using (var v = VolumeStore.Open(dir["a.h5"] + "/yx"))
        {
            Assert.Equal("yx", v.Info.Axes.Names);
            Assert.Equal(new VoxelSize(1, 0.5, 0.75), v.Info.VoxelSize);
        }
        using (var v = VolumeStore.Open(dir["a.h5"] + "/z", AxisOrder.Parse("czyx")))   // --axes wins over axistags
            Assert.Equal("czyx", v.Info.Axes.Names);
    }

    [Fact]
    public void Empty_dataset_path_picks_the_only_dataset()
    {
        RunWithCases("h5_write.py", dir, new[]
        {
            new { file = dir["one.h5"], dataset = "deep/only", dtype = "<u2", shape = new[] { 3, 4 } },
        });
        using var v = VolumeStore.Open(dir["one.h5"]);
        Assert.EndsWith("one.h5/deep/only", v.Info.Location, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_ilastik_fixture_Data_3D()
    {
        string path = SharedData("ilastik/Data_3D.h5");
        using var v = VolumeStore.Open(path + "/data");
        Assert.Equal("zyxc", v.Info.Axes.Names);
        Assert.Equal([64L, 64, 64, 1], v.Info.Shape);
        Assert.Equal(DataType.UInt8, v.Info.DataType);
        Assert.Equal([16, 16, 32, 1], v.Info.StorageChunks);
        Assert.StartsWith("gzip", v.Info.Codec, StringComparison.Ordinal);
        Assert.Equal(VoxelSize.Isotropic, v.Info.VoxelSize);
        CompareWithH5py(v, path, "data");
    }

    [Fact]
    public void Reads_platynereis_labels()
    {
        string path = SharedData("platynereis/nuclei_gt.h5");
        using var v = VolumeStore.Open(path + "/labels");
        Assert.Equal("zyx", v.Info.Axes.Names);
        Assert.Equal([103L, 256, 256], v.Info.Shape);
        Assert.Equal(DataType.UInt32, v.Info.DataType);
        CompareWithH5py(v, path, "labels");
        var labels = new uint[v.Info.ElementCount];
        v.Read(NdBox.Whole(v.Info.Shape), labels.AsSpan());
        Assert.Equal(37, labels.Distinct().Count());   // 36 nuclei and background
    }

    private void CompareWithH5py(IVolume volume, string file, string dataset)
    {
        string npy = dir["ref.npy"];
        RunWithCases("h5_read.py", dir, new[] { new { file, dataset, npy } });
        var expected = NpyFile.Read(npy);
        var actual = new byte[volume.Info.SizeInBytes];
        volume.Read(NdBox.Whole(volume.Info.Shape), actual);
        Assert.True(expected.Data.AsSpan().SequenceEqual(actual), $"{file}/{dataset} differs from h5py");
        int size = volume.Info.DataType.SizeInBytes();
        foreach (var box in RandomBoxes(volume.Info.Shape, seed: 5, count: 4))
        {
            var part = new byte[box.ElementCount * size];
            volume.Read(box, part);
            Assert.True(Slice(expected.Data, volume.Info.Shape, box, size).AsSpan().SequenceEqual(part), $"box {box} differs");
        }
    }

    /// <summary>ilastik's compact axistags JSON (as in the shared fixtures).</summary>
    internal static string AxisTagsJson(string axes, double z = 0, double y = 0, double x = 0) => JsonSerializer.Serialize(new
    {
        axes = axes.Select(a => new
        {
            key = a.ToString(),
            typeFlags = a == 'c' ? 1 : a == 't' ? 8 : 2,
            resolution = a switch { 'z' => z, 'y' => y, 'x' => x, _ => 0.0 },
            description = "",
        }),
    });
}
