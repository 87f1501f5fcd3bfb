using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using static ChunkSeg.Storage.Tests.Hdf5.Hdf5TestSupport;

namespace ChunkSeg.Storage.Tests.Tiff;

/// <summary>
/// TIFF files written by tifffile (Pillow for LZW and PackBits) are read by <c>TiffVolume</c> exactly as NumPy holds the
/// data: whole and in random boxes, with the axes and voxel size the metadata says.
/// </summary>
public sealed class TiffReadTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    /// <param name="Axes">the data's natural axes in tifffile letters (pages slowest, then Y, X, then S)</param>
    /// <param name="Open">what to open, relative to the case's file (null: the file itself)</param>
    private sealed record Case(
        string Name, string Writer, string File, string Dtype, long[] Shape, string Axes, Dictionary<string, object>? Kwargs,
        DataType Expected, string ExpectedAxes, string ExpectedCodec = "none", double[]? Voxel = null, string? Open = null);

    private static Dictionary<string, object> Kw(params (string Key, object Value)[] items) => items.ToDictionary(i => i.Key, i => i.Value);

    private static List<Case> Cases() =>
    [
        // Plain multi-page files: pages are z; every dtype; strips, tiles, compressions, BigTIFF, big-endian.
        new("u8", "tifffile", "u8.tif", "uint8", [5, 13, 17], "ZYX", null, DataType.UInt8, "zyx"),
        new("u16-zlib-strips", "tifffile", "u16.tif", "uint16", [4, 19, 23], "ZYX", Kw(("compression", "zlib"), ("rowsperstrip", 3)),
            DataType.UInt16, "zyx", "deflate"),
        new("u16-predictor", "tifffile", "pred.tiff", "uint16", [3, 10, 21], "ZYX", Kw(("compression", "zlib"), ("predictor", true)),
            DataType.UInt16, "zyx", "deflate"),
        new("f32-tiled", "tifffile", "f32.tif", "float32", [4, 37, 41], "ZYX", Kw(("compression", "zlib"), ("tile", new[] { 16, 16 })),
            DataType.Float32, "zyx", "deflate"),
        new("i16-bigtiff", "tifffile", "i16.btf", "int16", [3, 11, 9], "ZYX", Kw(("bigtiff", true)), DataType.Int16, "zyx"),
        new("u32-be-tiled", "tifffile", "u32.tif", "uint32", [2, 20, 33], "ZYX", Kw(("byteorder", ">"), ("tile", new[] { 16, 32 })), DataType.UInt32, "zyx"),
        new("u16-be-strips", "tifffile", "u16be.tif", "uint16", [3, 17, 13], "ZYX", Kw(("byteorder", ">"), ("rowsperstrip", 5)), DataType.UInt16, "zyx"),
        new("f64-be", "tifffile", "f64be.tif", "float64", [2, 9, 10], "ZYX", Kw(("byteorder", ">")), DataType.Float64, "zyx"),
        new("rgb16-be", "tifffile", "rgbbe.tif", "uint16", [2, 9, 10, 3], "ZYXS", Kw(("byteorder", ">"), ("photometric", "rgb"), ("rowsperstrip", 4)),
            DataType.UInt16, "czyx"),
        new("f64-adobe", "tifffile", "f64.tif", "float64", [3, 7, 8], "ZYX", Kw(("compression", "adobe_deflate")), DataType.Float64, "zyx", "deflate"),
        // Deflate inflated by .NET's zlib (no predictor): big-endian samples swapped after inflating; contiguous samples.
        new("u16-be-zlib-tiled", "tifffile", "u16bez.tif", "uint16", [3, 20, 37], "ZYX", Kw(("byteorder", ">"), ("compression", "zlib"), ("tile", new[] { 16, 16 })),
            DataType.UInt16, "zyx", "deflate"),
        new("rgb-zlib-strips", "tifffile", "rgbz.tif", "uint8", [2, 11, 9, 3], "ZYXS", Kw(("photometric", "rgb"), ("compression", "zlib"), ("rowsperstrip", 4)),
            DataType.UInt8, "czyx", "deflate"),
        new("single-page", "tifffile", "one.tif", "uint16", [15, 14], "YX", null, DataType.UInt16, "yx"),
        new("resolution-cm", "tifffile", "res.tif", "uint8", [2, 6, 7], "ZYX", Kw(("resolution", new[] { 2.0, 4.0 }), ("resolutionunit", "CENTIMETER")),
            DataType.UInt8, "zyx", Voxel: [1, 2500, 5000]),
        // tifffile's JSON description {"axes": ..., "shape": ...} names the page axes of a plain file.
        new("tifffile-axes", "tifffile", "ax.tif", "uint16", [2, 3, 4, 8, 9], "TCZYX", Kw(("metadata", new Dictionary<string, object> { ["axes"] = "TCZYX" })),
            DataType.UInt16, "tczyx"),
        new("tifffile-axes-zc", "tifffile", "axzc.tif", "uint8", [4, 2, 8, 9], "ZCYX", Kw(("metadata", new Dictionary<string, object> { ["axes"] = "ZCYX" })),
            DataType.UInt8, "czyx"),
        // Samples as channels: RGB contiguous, separate planes, tiled separate, two-sample minisblack.
        new("rgb", "tifffile", "rgb.tif", "uint8", [3, 10, 12, 3], "ZYXS", Kw(("photometric", "rgb")), DataType.UInt8, "czyx"),
        new("rgb-separate", "tifffile", "rgbsep.tif", "uint16", [2, 3, 10, 12], "ZSYX", Kw(("photometric", "rgb"), ("planarconfig", "separate")),
            DataType.UInt16, "czyx"),
        new("rgb-separate-tiled", "tifffile", "rgbtile.tif", "uint8", [2, 3, 40, 35], "ZSYX",
            Kw(("photometric", "rgb"), ("planarconfig", "separate"), ("tile", new[] { 16, 16 }), ("compression", "zlib")), DataType.UInt8, "czyx", "deflate"),
        new("two-samples", "tifffile", "two.tif", "float32", [3, 9, 10, 2], "ZYXS", Kw(("photometric", "minisblack"), ("planarconfig", "contig")),
            DataType.Float32, "czyx"),
        // Pillow: LZW and PackBits, which tifffile cannot write here.
        new("lzw-u16", "pil", "lzw.tif", "uint16", [4, 21, 19], "ZYX", Kw(("compression", "tiff_lzw")), DataType.UInt16, "zyx", "lzw"),
        new("lzw-f32", "pil", "lzwf.tif", "float32", [3, 12, 13], "ZYX", Kw(("compression", "tiff_lzw")), DataType.Float32, "zyx", "lzw"),
        new("packbits-u8", "pil", "pack.tif", "uint8", [4, 30, 33], "ZYX", Kw(("compression", "packbits")), DataType.UInt8, "zyx", "packbits"),
        new("lzw-rgb", "pil", "lzwrgb.tif", "uint8", [2, 14, 15, 3], "ZYXS", Kw(("compression", "tiff_lzw")), DataType.UInt8, "czyx", "lzw"),
        // ImageJ hyperstacks: pages c fastest, then z, then t; voxel size from resolution, spacing and unit.
        new("imagej-tzcyx", "tifffile", "ij.tif", "uint16", [2, 3, 4, 19, 23], "TZCYX",
            Kw(("imagej", true), ("resolution", new[] { 2.0, 4.0 }), ("metadata", new Dictionary<string, object> { ["spacing"] = 2.5, ["unit"] = "um", ["axes"] = "TZCYX" })),
            DataType.UInt16, "tczyx", Voxel: [2.5, 0.25, 0.5]),
        new("imagej-zcyx-nm", "tifffile", "ijnm.tif", "float32", [5, 2, 8, 9], "ZCYX",
            Kw(("imagej", true), ("resolution", new[] { 0.01, 0.02 }), ("metadata", new Dictionary<string, object> { ["spacing"] = 300.0, ["unit"] = "nm", ["axes"] = "ZCYX" })),
            DataType.Float32, "czyx", Voxel: [0.3, 0.05, 0.1]),
        new("imagej-tyx-micron", "tifffile", "ijt.tif", "uint8", [6, 8, 9], "TYX",
            Kw(("imagej", true), ("resolution", new[] { 5.0, 5.0 }), ("metadata", new Dictionary<string, object> { ["unit"] = "micron", ["axes"] = "TYX" })),
            DataType.UInt8, "tyx", Voxel: [1, 0.2, 0.2]),
        new("imagej-one-ifd", "tifffile", "ij1.tif", "uint16", [3, 4, 17, 19], "ZCYX",
            Kw(("imagej", true), ("single_ifd", true), ("metadata", new Dictionary<string, object> { ["axes"] = "ZCYX" })), DataType.UInt16, "czyx"),
        new("imagej-rgb", "tifffile", "ijrgb.tif", "uint8", [4, 10, 12, 3], "ZYXS", Kw(("imagej", true), ("photometric", "rgb"), ("metadata", new Dictionary<string, object> { ["axes"] = "ZYXS" })),
            DataType.UInt8, "czyx"),
        // OME-TIFF: DimensionOrder XYZCT and XYCZT, physical sizes with units, tiles, RGB.
        new("ome-czyx", "tifffile", "a.ome.tif", "uint16", [2, 3, 19, 23], "CZYX",
            Kw(("metadata", new Dictionary<string, object> { ["axes"] = "CZYX", ["PhysicalSizeX"] = 0.5, ["PhysicalSizeY"] = 0.25, ["PhysicalSizeZ"] = 2.0 })),
            DataType.UInt16, "czyx", Voxel: [2, 0.25, 0.5]),
        new("ome-tzcyx-tiled", "tifffile", "b.ome.tiff", "float32", [2, 3, 2, 33, 20], "TZCYX",
            Kw(("tile", new[] { 16, 16 }), ("compression", "zlib"),
                ("metadata", new Dictionary<string, object> { ["axes"] = "TZCYX", ["PhysicalSizeX"] = 250.0, ["PhysicalSizeXUnit"] = "nm", ["PhysicalSizeY"] = 250.0, ["PhysicalSizeYUnit"] = "nm" })),
            DataType.Float32, "tczyx", "deflate", Voxel: [1, 0.25, 0.25]),
        new("ome-rgb", "tifffile", "c.ome.tif", "uint8", [3, 8, 9, 3], "ZYXS", Kw(("photometric", "rgb"), ("metadata", new Dictionary<string, object> { ["axes"] = "ZYXS" })),
            DataType.UInt8, "czyx"),
        new("ome-multifile", "omefiles", "omeseries", "uint16", [3, 4, 9, 11], "TZYX", null, DataType.UInt16, "tzyx", Voxel: [2, 0.25, 0.25],
            Open: "tp0.ome.tif"),
        // Many files: a folder of slices (natural name order: img10 after img9), a glob of slices, a glob of stacks as t.
        new("folder", "series", "slices", "uint16", [12, 9, 11], "ZYX", null, DataType.UInt16, "zyx", Open: ""),
        new("glob", "series", "slices2", "uint8", [11, 7, 6], "ZYX", Kw(("compression", "zlib")), DataType.UInt8, "zyx", "deflate", Open: "img*.tif"),
        new("glob-stacks", "series", "stacks", "float32", [3, 4, 9, 11], "TZYX", null, DataType.Float32, "tzyx", Open: "*.tif"),
    ];

    [Fact]
    public void Reads_every_layout_dtype_and_compression_like_numpy()
    {
        var cases = Cases();
        var specs = cases.Select((c, i) => new Dictionary<string, object?>
        {
            ["writer"] = c.Writer, ["file"] = dir[c.File], ["npy"] = dir[$"{c.Name}.npy"], ["dtype"] = c.Dtype,
            ["shape"] = c.Shape, ["axes"] = c.Axes, ["seed"] = 200 + i, ["kwargs"] = c.Kwargs,
        }).ToList();
        RunWithCases("tiff_reference.py", dir, specs);

        foreach (var c in cases)
        {
            var expected = NpyFile.Read(dir[$"{c.Name}.npy"]);
            string address = c.Open is null ? dir[c.File] : c.Open.Length == 0 ? dir[c.File] : Path.Combine(dir[c.File], c.Open);
            using var volume = VolumeStore.Open(address);
            var info = volume.Info;
            Assert.True(info.Format == VolumeFormat.Tiff, c.Name);
            Assert.True(c.Expected == info.DataType, $"{c.Name}: dtype {info.DataType}");
            Assert.True(c.ExpectedAxes == info.Axes.Names, $"{c.Name}: axes {info.Axes}");
            Assert.True(expected.Shape.SequenceEqual(info.Shape), $"{c.Name}: shape [{string.Join(",", info.Shape)}], numpy [{string.Join(",", expected.Shape)}]");
            Assert.True(c.ExpectedCodec == info.Codec, $"{c.Name}: codec {info.Codec}");
            var voxel = c.Voxel ?? [1, 1, 1];
            // LibTiff.NET hands rationals (XResolution) over as float: 1e-6 relative.
            static bool Near(double a, double b) => Math.Abs(a - b) <= 1e-6 * Math.Abs(a);
            Assert.True(Near(voxel[0], info.VoxelSize.Z) && Near(voxel[1], info.VoxelSize.Y) && Near(voxel[2], info.VoxelSize.X),
                $"{c.Name}: voxel {info.VoxelSize}");

            int size = info.DataType.SizeInBytes();
            var whole = new byte[info.SizeInBytes];
            volume.Read(NdBox.Whole(info.Shape), whole);
            Assert.True(expected.Data.AsSpan().SequenceEqual(whole), $"{c.Name}: whole volume differs from numpy");
            foreach (var box in RandomBoxes(info.Shape, seed: c.Name.Length * 31 + 7, count: 25))
            {
                var part = new byte[box.ElementCount * size];
                volume.Read(box, part);
                Assert.True(Slice(expected.Data, info.Shape, box, size).AsSpan().SequenceEqual(part), $"{c.Name}: box {box} differs (seed {c.Name.Length * 31 + 7})");
            }
        }
    }

    [Fact]
    public void Concurrent_reads_of_one_volume_agree_with_a_serial_read()
    {
        var spec = new Dictionary<string, object?>
        {
            ["writer"] = "tifffile", ["file"] = dir["c.tif"], ["npy"] = dir["c.npy"], ["dtype"] = "uint16", ["shape"] = new long[] { 24, 40, 50 },
            ["axes"] = "ZYX", ["seed"] = 5, ["kwargs"] = Kw(("compression", "zlib"), ("tile", new[] { 16, 16 })),
        };
        RunWithCases("tiff_reference.py", dir, new[] { spec });
        var expected = NpyFile.Read(dir["c.npy"]);
        using var volume = VolumeStore.Open(dir["c.tif"]);
        var boxes = RandomBoxes(volume.Info.Shape, seed: 11, count: 200).ToArray();
        Parallel.ForEach(boxes, new ParallelOptions { MaxDegreeOfParallelism = 8 }, box =>
        {
            var part = new byte[box.ElementCount * 2];
            volume.Read(box, part);
            Assert.True(Slice(expected.Data, volume.Info.Shape, box, 2).AsSpan().SequenceEqual(part), $"box {box}");
        });
    }

    [Fact]
    public void Axes_override_renames_the_natural_axes()
    {
        var spec = new Dictionary<string, object?>
        {
            ["writer"] = "tifffile", ["file"] = dir["t.tif"], ["npy"] = dir["t.npy"], ["dtype"] = "uint8", ["shape"] = new long[] { 4, 5, 6, 3 },
            ["axes"] = "ZYXS", ["seed"] = 6, ["kwargs"] = Kw(("photometric", "rgb")),
        };
        RunWithCases("tiff_reference.py", dir, new[] { spec });
        using (var v = VolumeStore.Open(dir["t.tif"], AxisOrder.Parse("tyxc")))
        {
            Assert.Equal("tcyx", v.Info.Axes.Names);
            Assert.Equal(new long[] { 4, 3, 5, 6 }, v.Info.Shape);
            var whole = new byte[v.Info.SizeInBytes];
            v.Read(NdBox.Whole(v.Info.Shape), whole);
            // numpy holds czyx (samples, pages, y, x); with the pages named t the volume is tcyx: pages, samples, y, x.
            var czyx = NpyFile.Read(dir["t.npy"]).Data;
            for (int t = 0; t < 4; t++)
                for (int c = 0; c < 3; c++)
                    Assert.True(czyx.AsSpan((c * 4 + t) * 30, 30).SequenceEqual(whole.AsSpan((t * 3 + c) * 30, 30)), $"t {t} c {c}");
        }
        var wrongRank = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["t.tif"], AxisOrder.Parse("zyx")));
        Assert.Contains("has 3 axes but the file has 4", wrongRank.Message);
        var moved = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["t.tif"], AxisOrder.Parse("yxzc")));
        Assert.Contains("must keep y and x", moved.Message);
    }

    [Fact]
    public void Errors_name_the_file_and_the_problem()
    {
        var missing = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["absent.tif"]));
        Assert.Contains("absent.tif: no such file", missing.Message);

        File.WriteAllText(dir["junk.tif"], "not a tiff at all");
        var junk = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["junk.tif"]));
        Assert.Contains("junk.tif: is not a readable TIFF file", junk.Message);

        var specs = new[]
        {
            new Dictionary<string, object?> { ["writer"] = "tifffile", ["file"] = dir["be.btf"], ["npy"] = dir["be.npy"], ["dtype"] = "int16",
                ["shape"] = new long[] { 2, 5, 6 }, ["axes"] = "ZYX", ["seed"] = 1, ["kwargs"] = Kw(("bigtiff", true), ("byteorder", ">")) },
            new Dictionary<string, object?> { ["writer"] = "tifffile", ["file"] = dir["lzma.tif"], ["npy"] = dir["lzma.npy"], ["dtype"] = "uint8",
                ["shape"] = new long[] { 2, 5, 6 }, ["axes"] = "ZYX", ["seed"] = 1, ["kwargs"] = Kw(("compression", "lzma")) },
            new Dictionary<string, object?> { ["writer"] = "tifffile", ["file"] = dir["bits.tif"], ["npy"] = dir["bits.npy"], ["dtype"] = "bool",
                ["shape"] = new long[] { 5, 16 }, ["axes"] = "YX", ["seed"] = 1, ["kwargs"] = null },
            new Dictionary<string, object?> { ["writer"] = "series", ["file"] = dir["mixed"], ["npy"] = dir["mixed.npy"], ["dtype"] = "uint8",
                ["shape"] = new long[] { 2, 5, 6 }, ["axes"] = "ZYX", ["seed"] = 1, ["kwargs"] = null },
        };
        RunWithCases("tiff_reference.py", dir, specs);

        // LibTiff.NET cannot read big-endian BigTIFF (classic big-endian TIFF is read above): refused with the remedy.
        var be = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["be.btf"]));
        Assert.Contains("be.btf: is a big-endian BigTIFF", be.Message);

        using (var lzma = VolumeStore.Open(dir["lzma.tif"]))
        {
            Assert.StartsWith("lzma", lzma.Info.Codec);
            var e = Assert.Throws<VolumeException>(() => lzma.Read(NdBox.Whole(lzma.Info.Shape), new byte[lzma.Info.SizeInBytes]));
            Assert.Contains("lzma.tif: page 0 is compressed with lzma", e.Message);
            Assert.Contains("compression='zlib'", e.Message);
        }

        var bits = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["bits.tif"]));
        Assert.Contains("bits.tif: unsupported pixel type: 1-bit", bits.Message);

        // A slice of another size in a folder: named when read.
        File.Copy(dir["bits.tif"], Path.Combine(dir["mixed"], "img9.tif"));
        using var mixed = VolumeStore.Open(dir["mixed"]);
        var m = Assert.Throws<VolumeException>(() => mixed.Read(NdBox.Whole(mixed.Info.Shape), new byte[mixed.Info.SizeInBytes]));
        Assert.Contains("img9.tif", m.Message);

        var inner = Assert.Throws<UsageException>(() => VolumeStore.ParseAddress("x.tif/data"));
        Assert.Contains("a TIFF file has no inner paths", inner.Message);
        var create = Assert.Throws<UsageException>(() => VolumeStore.Create(VolumeStore.ParseAddress(dir["out.tif"]),
            new VolumeCreateOptions(AxisOrder.Parse("zyx"), [1, 2, 2], DataType.UInt8, [1, 2, 2], new VoxelSize(1, 1, 1), CodecSpec.Default)));
        Assert.Contains("cannot write TIFF", create.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_read_decodes_only_the_pages_and_strips_or_tiles_its_box_meets(bool tiled)
    {
        // Page 1's strip 2 (rows 8..11 of 16 × 10) or tile 2 (rows 16..31, columns 0..15 of 32 × 24) is overwritten with garbage.
        var spec = new Dictionary<string, object?>
        {
            ["writer"] = "tifffile", ["file"] = dir["bad.tif"], ["npy"] = dir["bad.npy"], ["dtype"] = "uint16", ["shape"] = tiled ? new long[] { 3, 32, 24 } : new long[] { 3, 16, 10 },
            ["axes"] = "ZYX", ["seed"] = 9,
            ["kwargs"] = tiled
                ? Kw(("compression", "zlib"), ("tile", new[] { 16, 16 }), ("corrupt", new[] { 1, 2 }))
                : Kw(("compression", "zlib"), ("rowsperstrip", 4), ("corrupt", new[] { 1, 2 })),
        };
        RunWithCases("tiff_reference.py", dir, new[] { spec });
        var expected = NpyFile.Read(dir["bad.npy"]);
        using var volume = VolumeStore.Open(dir["bad.tif"]);
        long h = volume.Info.Shape[1], w = volume.Info.Shape[2], top = tiled ? 16 : 8;
        var clean = new[]
        {
            new NdBox([0, 0, 0], [1, h, w]), new NdBox([2, 0, 0], [1, h, w]),               // other pages, whole
            new NdBox([0, 0, 0], [3, top, w]),                                              // rows above the bad segment on every page
            tiled ? new NdBox([1, 16, 16], [1, 16, 8]) : new NdBox([1, 12, 0], [1, 4, 10]), // beside or below it
        };
        foreach (var box in clean)
        {
            var part = new byte[box.ElementCount * 2];
            volume.Read(box, part);
            Assert.True(Slice(expected.Data, volume.Info.Shape, box, 2).AsSpan().SequenceEqual(part), $"box {box}");
        }
        var bad = new NdBox([1, top + 1, 3], [1, 2, 2]);
        var e = Assert.ThrowsAny<ChunkSegException>(() => volume.Read(bad, new byte[bad.ElementCount * 2]));
        Assert.Contains("bad.tif", e.Message);
        Assert.Contains("page 1", e.Message);
        Assert.Contains($"cannot decode the {(tiled ? "tile" : "strip")} at row {top}", e.Message);
    }

    [Fact]
    public void Addresses_recognise_tiff_files_folders_and_globs()
    {
        Assert.Equal(VolumeFormat.Tiff, VolumeAddress.Parse("a/b.TIF").Format);
        Assert.Equal(VolumeFormat.Tiff, VolumeAddress.Parse("a/b.ome.tiff").Format);
        Assert.Equal(VolumeFormat.Tiff, VolumeAddress.Parse("a/b.btf").Format);
        Assert.Equal(new VolumeAddress(VolumeFormat.Tiff, "a/slices/*.tif", ""), VolumeAddress.Parse("a/slices/*.tif"));
        Directory.CreateDirectory(dir["folder"]);
        File.WriteAllText(Path.Combine(dir["folder"], "z0.tif"), "");
        Assert.Equal(VolumeFormat.Tiff, VolumeAddress.Parse(dir["folder"]).Format);
    }
}
