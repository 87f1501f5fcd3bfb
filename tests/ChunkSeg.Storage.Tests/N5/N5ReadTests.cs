using System.Buffers.Binary;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Tests.N5;

/// <summary>
/// N5 datasets written by two independent writers (tools/reference/n5_write.py: zarr-python's N5Store, and a writer from
/// the N5 spec with Java-style cut edge blocks and varlength headers) read by ChunkSeg whole and in boxes, compared with
/// NumPy; axes and voxel sizes from BigStitcher, n5-viewer and neuroglancer metadata; errors that name the file.
/// </summary>
public sealed class N5ReadTests(N5ReadTests.Reference reference) : IClassFixture<N5ReadTests.Reference>
{
    /// <summary>The reference datasets (written once per class, read-only) and their manifest.</summary>
    public sealed class Reference : IDisposable
    {
        internal TempDir Dir { get; } = new();
        internal JsonElement Cases { get; }
        internal JsonElement Refused { get; }

        public Reference()
        {
            PythonReference.Run("n5_write.py", Dir.Path);
            using var manifest = JsonDocument.Parse(File.ReadAllBytes(Dir["manifest.json"]));
            Cases = manifest.RootElement.GetProperty("cases").Clone();
            Refused = manifest.RootElement.GetProperty("refused").Clone();
        }

        internal JsonElement Case(string name) => Cases.EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

        public void Dispose() => Dir.Dispose();
    }

    private static string AddressOf(JsonElement c) =>
        c.GetProperty("open").ValueKind == JsonValueKind.String
            ? c.GetProperty("open").GetString()!
            : $"{c.GetProperty("root").GetString()}/{c.GetProperty("inner").GetString()}";

    [Fact]
    public void Reads_every_case_the_reference_writers_wrote()
    {
        var failures = new List<string>();
        int cases = 0;
        foreach (var c in reference.Cases.EnumerateArray())
        {
            cases++;
            try
            {
                CheckCase(c);
            }
            catch (Exception e)
            {
                failures.Add($"{c.GetProperty("name").GetString()}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.True(cases >= 50, $"only {cases} cases");
        if (failures.Count > 0) Assert.Fail(string.Join("\n", failures));
    }

    private static void CheckCase(JsonElement c)
    {
        var expected = NpyFile.Read(c.GetProperty("npy").GetString()!);
        using var volume = VolumeStore.Open(AddressOf(c));
        var info = volume.Info;
        Assert.Equal(VolumeFormat.N5, info.Format);
        Assert.Equal(expected.Shape, info.Shape);
        Assert.Equal(expected.DataType, info.DataType);
        Assert.Equal(c.GetProperty("dtype").GetString(), info.DataType.Name());
        Assert.Equal(c.GetProperty("blocks").EnumerateArray().Select(e => e.GetInt32()), info.StorageChunks);
        Assert.Equal(c.GetProperty("axes").GetString(), info.Axes.Names);
        var vs = c.GetProperty("voxel_size").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(VoxelSize.Micrometer, info.VoxelSize.Unit);
        Assert.Equal(vs[0], info.VoxelSize.Z, 1e-9);
        Assert.Equal(vs[1], info.VoxelSize.Y, 1e-9);
        Assert.Equal(vs[2], info.VoxelSize.X, 1e-9);
        Assert.Equal(0, info.FillValue);

        ReferenceReads.AssertWholeAndBoxes(volume, expected, c, "whole dataset");
    }

    [Theory]
    [InlineData("zarr_raw_uint16", "raw")]
    [InlineData("zarr_gzip_uint16", "gzip(level 5)")]
    [InlineData("zarr_zlib_uint16", "zlib(level 3)")]
    [InlineData("zarr_zstd_uint16", "zstd(level 3)")]
    [InlineData("zarr_blosc-lz4_uint16", "blosc(lz4, clevel 5, shuffle)")]
    [InlineData("zarr_blosc-zstd-bitshuffle_uint16", "blosc(zstd, clevel 3, bitshuffle)")]
    [InlineData("spec_zstd_uint8", "zstd(level 5)")]
    public void Info_names_the_compression(string name, string codec)
    {
        using var volume = VolumeStore.Open(AddressOf(reference.Case(name)));
        Assert.Equal(codec, volume.Info.Codec);
    }

    [Fact]
    public void A_missing_block_reads_zero()
    {
        // spec_gzip_uint16 lost block (z 2, y 3, x 3), the far corner (cut to 3 x 2 x 1 voxels); zarr_* lost (0, 0, 0).
        using var corner = VolumeStore.Open(AddressOf(reference.Case("spec_gzip_uint16")));
        Assert.False(File.Exists(Path.Combine(corner.Info.Location, "3", "3", "2")));
        var box = new NdBox([8, 15, 18], [3, 2, 1]);
        var data = new byte[box.ElementCount * 2];
        data.AsSpan().Fill(0xAB);
        corner.Read(box, data);
        Assert.All(data, b => Assert.Equal(0, b));

        using var first = VolumeStore.Open(AddressOf(reference.Case("zarr_zstd_float32")));
        var origin = new NdBox([0, 0, 0], [4, 5, 6]);
        var floats = new byte[origin.ElementCount * 4];
        floats.AsSpan().Fill(0xAB);
        first.Read(origin, floats);
        Assert.All(floats, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Concurrent_reads_of_random_boxes_agree_with_numpy()
    {
        var c = reference.Case("spec_blosc_uint16");
        var expected = NpyFile.Read(c.GetProperty("npy").GetString()!);
        using var volume = VolumeStore.Open(AddressOf(c));
        const int seed = 27;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var rng = new Random(seed + i);
            var start = expected.Shape.Select(s => (long)rng.Next((int)s)).ToArray();
            var shape = expected.Shape.Select((s, d) => 1 + (long)rng.Next((int)(s - start[d]))).ToArray();
            var box = new NdBox(start, shape);
            var actual = new byte[box.ElementCount * 2];
            volume.Read(box, actual);
            var want = new byte[actual.Length];
            Internal.Strided.CopyBox(expected.Data, expected.Shape, start, want, shape, new long[3], shape, 2);
            if (TestArrays.Difference(DataType.UInt16, want, actual, shape) is { } diff) failures.Add($"box {box} (seed {seed + i}): {diff}");
        });
        Assert.Empty(failures);
    }

    [Fact]
    public void Unsupported_compressions_are_refused_naming_the_file_and_codec()
    {
        foreach (var r in reference.Refused.EnumerateArray())
        {
            string root = r.GetProperty("root").GetString()!, codec = r.GetProperty("codec").GetString()!;
            var e = Assert.Throws<VolumeException>(() => VolumeStore.Open($"{root}/data"));
            Assert.Equal(Path.Combine(root, "data", "attributes.json"), e.Location);
            Assert.Contains($"compression \"{codec}\" is not supported", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Addresses()
    {
        var a = VolumeAddress.Parse("/data/stitched.n5/setup0/timepoint0/s0");
        Assert.Equal(new VolumeAddress(VolumeFormat.N5, "/data/stitched.n5", "setup0/timepoint0/s0"), a);
        Assert.Equal(new VolumeAddress(VolumeFormat.N5, "rel/x.N5", ""), VolumeAddress.Parse("rel/x.N5/"));

        // Without the suffix: the root is the topmost folder whose attributes.json has "n5" (zarr-python writes it in every group).
        string plain = Path.Combine(reference.Dir.Path, "plain_container");
        var b = VolumeAddress.Parse(Path.Combine(plain, "group", "raw"));
        Assert.Equal(new VolumeAddress(VolumeFormat.N5, plain, "group/raw"), b);
    }

    [Fact]
    public void N5_is_input_only()
    {
        var c = reference.Case("zarr_gzip_uint16");
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open(AddressOf(c), writable: true));
        Assert.Contains("ChunkSeg reads N5; write Zarr or HDF5", e.Message, StringComparison.Ordinal);
        using var dir = new TempDir();
        var target = VolumeAddress.Parse(dir["out.n5"] + "/labels");
        var u = Assert.Throws<UsageException>(() => VolumeStore.Create(target,
            new VolumeCreateOptions(AxisOrder.Parse("zyx"), [4, 4, 4], DataType.UInt8, [4, 4, 4], VoxelSize.Isotropic, CodecSpec.Default)));
        Assert.Contains("ChunkSeg reads N5", u.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir["out.n5"]));
        using var volume = VolumeStore.Open(AddressOf(c));
        Assert.Throws<VolumeException>(() => volume.Write(new NdBox([0, 0, 0], [1, 1, 1]), new byte[2]));
    }

    [Fact]
    public void A_group_is_not_a_dataset_and_the_error_lists_datasets_inside()
    {
        string root = Path.Combine(reference.Dir.Path, "bigstitcher.n5");
        var e = Assert.Throws<VolumeException>(() => VolumeStore.Open($"{root}/setup0"));
        Assert.Contains("is an N5 group, not a dataset", e.Message, StringComparison.Ordinal);
        Assert.Contains("setup0/timepoint0/s0", e.Message, StringComparison.Ordinal);
    }

    // ---- corrupt datasets: a copy of one reference dataset, damaged -------------------------------------------------

    /// <summary>Copies spec_{kind}_uint16.n5 (Java-style blocks, 11 x 17 x 19 in 4 x 5 x 6 blocks) into a fresh folder.</summary>
    private (TempDir Dir, string Dataset) Copy(string kind)
    {
        var dir = new TempDir();
        string source = Path.Combine(reference.Dir.Path, $"spec_{kind}_uint16.n5");
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(dir.Path, "c.n5", Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return (dir, Path.Combine(dir.Path, "c.n5", "a", "b"));
    }

    private static VolumeException ReadAllFails(string dataset)
    {
        using var volume = VolumeStore.Open(dataset);
        return Assert.Throws<VolumeException>(() => volume.Read(NdBox.Whole(volume.Info.Shape), new byte[volume.Info.SizeInBytes]));
    }

    [Fact]
    public void Older_compressionType_and_a_newer_n5_version()
    {
        var (dir, dataset) = Copy("gzip");
        using (dir)
        {
            // N5 before 1.0 said "compressionType": "gzip" instead of a compression object.
            string attributes = Path.Combine(dataset, "attributes.json");
            var meta = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(attributes))!;
            meta.Remove("compression");
            meta["compressionType"] = JsonSerializer.SerializeToElement("gzip");
            File.WriteAllText(attributes, JsonSerializer.Serialize(meta));
            var expected = NpyFile.Read(reference.Case("spec_gzip_uint16").GetProperty("npy").GetString()!);
            using (var volume = VolumeStore.Open(dataset))
            {
                Assert.Equal("gzip(level 6)", volume.Info.Codec);
                var whole = new byte[expected.Data.Length];
                volume.Read(NdBox.Whole(volume.Info.Shape), whole);
                TestArrays.AssertEqual(DataType.UInt16, expected.Data, whole, expected.Shape, "compressionType gzip");
            }

            string root = Path.Combine(dir.Path, "c.n5", "attributes.json");
            File.WriteAllText(root, """{"n5": "5.0.0"}""");
            var e = Assert.Throws<VolumeException>(() => VolumeStore.Open(dataset));
            Assert.Equal(root, e.Location);
            Assert.Contains("N5 version 5.0.0 is newer than this reader", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Missing_attributes_json_is_named()
    {
        var (dir, dataset) = Copy("gzip");
        using (dir)
        {
            File.Delete(Path.Combine(dataset, "attributes.json"));
            var e = Assert.Throws<VolumeException>(() => global::ChunkSeg.Storage.N5.N5Volume.Open(Path.Combine(dir.Path, "c.n5"), "a/b", null, writable: false));
            Assert.Equal(Path.Combine(dataset, "attributes.json"), e.Location);
            Assert.Contains("is missing", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_block_whose_header_disagrees_with_the_grid_is_named()
    {
        var (dir, dataset) = Copy("gzip");
        using (dir)
        {
            // Block x 1, y 0, z 0 is a whole 6 x 5 x 4 block; say it is 3 wide.
            string block = Path.Combine(dataset, "1", "0", "0");
            var bytes = File.ReadAllBytes(block);
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), 3);
            File.WriteAllBytes(block, bytes);
            var e = ReadAllFails(dataset);
            Assert.Equal(block, e.Location);
            Assert.Contains("header says size [3, 5, 4] (x first) but the block grid expects [6, 5, 4]", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_block_with_the_wrong_rank_or_an_object_mode_is_named()
    {
        var (dir, dataset) = Copy("raw");
        using (dir)
        {
            string block = Path.Combine(dataset, "0", "1", "0");
            var bytes = File.ReadAllBytes(block);
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), 2);
            File.WriteAllBytes(block, bytes);
            var e = ReadAllFails(dataset);
            Assert.Equal(block, e.Location);
            Assert.Contains("header has 2 dimensions but the dataset has 3", e.Message, StringComparison.Ordinal);

            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(0), 2);
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), 3);
            File.WriteAllBytes(block, bytes);
            Assert.Contains("mode 2", ReadAllFails(dataset).Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    [InlineData("blosc")]
    public void Truncated_block_data_is_named(string kind)
    {
        var (dir, dataset) = Copy(kind);
        using (dir)
        {
            string block = Path.Combine(dataset, "0", "0", "1");
            var bytes = File.ReadAllBytes(block);
            File.WriteAllBytes(block, bytes[..(16 + (bytes.Length - 16) / 2)]);
            var e = ReadAllFails(dataset);
            Assert.Equal(block, e.Location);
            Assert.Contains("N5 block is corrupt", e.Message, StringComparison.Ordinal);

            File.WriteAllBytes(block, bytes[..10]);
            Assert.Contains("truncated", ReadAllFails(dataset).Message, StringComparison.Ordinal);
        }
    }
}
