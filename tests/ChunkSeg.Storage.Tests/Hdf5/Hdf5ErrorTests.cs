using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using static ChunkSeg.Storage.Tests.Hdf5.Hdf5TestSupport;

namespace ChunkSeg.Storage.Tests.Hdf5;

/// <summary>Every failure names the file and dataset and says what to do.</summary>
public sealed class Hdf5ErrorTests(Hdf5ErrorTests.Files files) : IClassFixture<Hdf5ErrorTests.Files>
{
    private readonly TempDir dir = files.Dir;

    /// <summary>The h5py-written files every test here reads (written once per class, read-only).</summary>
    public sealed class Files : IDisposable
    {
        internal TempDir Dir { get; } = new();

        public Files()
        {
            var dir = Dir;
            RunWithCases("h5_write.py", dir, new object[]
            {
                new { file = dir["e.h5"], dataset = "raw/volume", dtype = "|u1", shape = new[] { 3, 4, 5 } },
                new { file = dir["e.h5"], dataset = "labels", dtype = "<u4", shape = new[] { 3, 4, 5 } },
                new { file = dir["e.h5"], dataset = "four", dtype = "|u1", shape = new[] { 2, 3, 4, 5 } },
                new { file = dir["e.h5"], dataset = "compound", kind = "compound", shape = new[] { 4, 4 } },
                new { file = dir["e.h5"], dataset = "strings", kind = "string" },
                new { file = dir["e.h5"], dataset = "one_d", dtype = "<f4", shape = new[] { 8 } },
                new { file = dir["lzf.h5"], dataset = "data", dtype = "<u2", shape = new[] { 6, 7 }, chunks = new[] { 3, 3 }, compression = "lzf" },
            });
        }

        public void Dispose() => Dir.Dispose();
    }

    private string E => dir["e.h5"];

    [Fact]
    public void Missing_file()
    {
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["nope.h5"] + "/data"));
        Assert.Contains("file not found", e.Message, StringComparison.Ordinal);
        Assert.Contains("nope.h5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Not_an_hdf5_file()
    {
        File.WriteAllText(dir["text.h5"], "just some text, not HDF5");
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["text.h5"] + "/data"));
        Assert.Contains("not an HDF5 file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_dataset_lists_the_existing_ones()
    {
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open(E + "/raw/volum"));
        Assert.Contains("e.h5/raw/volum", e.Message, StringComparison.Ordinal);
        Assert.Contains("no such dataset", e.Message, StringComparison.Ordinal);
        Assert.Contains("raw/volume", e.Message, StringComparison.Ordinal);
        Assert.Contains("labels", e.Message, StringComparison.Ordinal);

        var g = Assert.Throws<VolumeException>(() => VolumeStore.Open(E + "/raw"));
        Assert.Contains("not a dataset", g.Message, StringComparison.Ordinal);

        var several = Assert.Throws<VolumeException>(() => VolumeStore.Open(E));
        Assert.Contains("datasets", several.Message, StringComparison.Ordinal);
        Assert.Contains("raw/volume", several.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("compound", "compound")]
    [InlineData("strings", "string")]
    public void Unsupported_dtype(string dataset, string kind)
    {
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open($"{E}/{dataset}"));
        Assert.Contains("unsupported dtype", e.Message, StringComparison.Ordinal);
        Assert.Contains(kind, e.Message, StringComparison.Ordinal);
        Assert.Contains(dataset, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_dimensional_dataset_is_rejected()
    {
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open($"{E}/one_d"));
        Assert.Contains("1-dimensional", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Four_dimensional_without_axistags_is_ambiguous()
    {
        var e = Assert.Throws<UsageException>(() => VolumeStore.Open($"{E}/four"));
        Assert.Contains("ambiguous", e.Message, StringComparison.Ordinal);
        Assert.Contains("--axes", e.Message, StringComparison.Ordinal);
        Assert.Contains("zyxc", e.Message, StringComparison.Ordinal);
        using var v = VolumeStore.Open($"{E}/four", AxisOrder.Parse("zyxc"));
        Assert.Equal("zyxc", v.Info.Axes.Names);
    }

    [Fact]
    public void Axes_rank_mismatch()
    {
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open($"{E}/labels", AxisOrder.Parse("zyxc")));
        Assert.Contains("zyxc", e.Message, StringComparison.Ordinal);
        Assert.Contains("4 axes", e.Message, StringComparison.Ordinal);
        Assert.Contains("3 dimensions", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Box_outside_the_volume()
    {
        using var v = VolumeStore.Open($"{E}/labels");
        var buffer = new byte[1000];
        var e = Assert.Throws<VolumeException>(() => v.Read(new NdBox([2, 0, 0], [2, 4, 5]), buffer));
        Assert.Contains("[2:4, 0:4, 0:5]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[3, 4, 5]", e.Message, StringComparison.Ordinal);
        Assert.Throws<VolumeException>(() => v.Read(new NdBox([0, 0], [1, 1]), buffer));
    }

    [Fact]
    public void Write_to_read_only_volume()
    {
        using var v = VolumeStore.Open($"{E}/labels");
        var e = Assert.Throws<VolumeException>(() => v.Write(new NdBox([0, 0, 0], [1, 1, 1]), new byte[4]));
        Assert.Contains("read-only", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_filter_PureHDF_cannot_decode_fails_reads_clearly()
    {
        using var v = VolumeStore.Open(dir["lzf.h5"] + "/data");
        Assert.Equal("lzf", v.Info.Codec);
        var e = Assert.Throws<VolumeException>(() => v.Read(new NdBox([0, 0], [2, 2]), new byte[8]));
        Assert.Contains("lzf", e.Message, StringComparison.Ordinal);
        Assert.Contains("gzip", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_rejects_existing_dataset_and_unsupported_codec()
    {
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), [3, 4, 5], DataType.UInt8, [2, 2, 2], VoxelSize.Isotropic, CodecSpec.None);
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Create(new VolumeAddress(VolumeFormat.Hdf5, E, "labels"), options));
        Assert.Contains("already exists", e.Message, StringComparison.Ordinal);

        var u = Assert.Throws<UsageException>(() => VolumeStore.Create(new VolumeAddress(VolumeFormat.Hdf5, dir["z.h5"], "d"), options with { Codec = CodecSpec.Default }));
        Assert.Contains("none and gzip", u.Message, StringComparison.Ordinal);
        Assert.Contains("blosc-lz4", u.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(dir["z.h5"]));

        // The failed attempt left the existing file usable.
        using var v = VolumeStore.Open($"{E}/labels");
        Assert.Equal(DataType.UInt32, v.Info.DataType);
    }

    [Fact]
    public void Creating_a_dataset_in_an_existing_file_says_why()
    {
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), [3, 4, 5], DataType.UInt8, [2, 2, 2], VoxelSize.Isotropic, CodecSpec.None);
        using var input = VolumeStore.Open($"{E}/labels");
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Create(new VolumeAddress(VolumeFormat.Hdf5, E, "output"), options));
        Assert.True(e.Message.Contains("already exists", StringComparison.Ordinal) && e.Message.Contains("new file", StringComparison.Ordinal), e.Message);
    }
}
