using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>`chunkseg label` on real shapes, probability maps, time series and bad input.</summary>
public sealed class LabelInputsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Platynereis_nuclei_give_the_same_objects_for_every_chunk_shape()
    {
        string gt = SharedData.Require("platynereis/nuclei_gt.h5");
        using var source = VolumeStore.Open(gt + "/labels");
        var shape = source.Info.Shape;
        var labels = new uint[source.Info.ElementCount];
        source.Read(NdBox.Whole(shape), MemoryMarshal.AsBytes(labels.AsSpan()));
        var mask = labels.Select(l => l == 0 ? (byte)0 : (byte)1).ToArray();
        string binary = TestVolumes.WriteZarr(_dir, "binary.zarr", "zyx", shape, DataType.UInt8, mask);
        NpyFile.Write(_dir["binary.npy"], DataType.UInt8, shape, mask);
        NpyFile.Write(_dir["gt.npy"], DataType.UInt32, shape, MemoryMarshal.AsBytes(labels.AsSpan()));
        string binaryRef = Directory.CreateDirectory(_dir["ref-binary"]).FullName, multiRef = Directory.CreateDirectory(_dir["ref-multi"]).FullName;
        PythonReference.Run("label_reference.py", "label", _dir["binary.npy"], binaryRef, "3");
        PythonReference.Run("label_reference.py", "label", _dir["gt.npy"], multiRef, "1", "--multilabel");
        var expectedBinary = NpyFile.Read(Path.Combine(binaryRef, "labels.npy")).Data;
        var expectedMulti = NpyFile.Read(Path.Combine(multiRef, "labels.npy")).Data;

        int run = 0;
        foreach (string chunk in new[] { "103,256,256", "32,64,64", "17,50,33", "64,128,40", "7,256,9" })
        {
            string outBinary = _dir[$"b{run}.zarr"], outMulti = _dir[$"m{run++}.zarr"];
            var (code, _, err) = await Cli.Run("label", binary, outBinary, "--chunk", chunk, "--chunks", chunk, "--connectivity", "26");
            Assert.True(code == 0, err);
            TestArrays.AssertEqual(DataType.UInt32, expectedBinary, MemoryMarshal.AsBytes(TestVolumes.ReadUInt32(outBinary).AsSpan()), shape, $"binary, chunks {chunk}");
            // The label image as it is: touching nuclei with different ids stay apart.
            (code, _, err) = await Cli.Run("label", gt + "/labels", outMulti, "--chunk", chunk, "--chunks", chunk);
            Assert.True(code == 0, err);
            TestArrays.AssertEqual(DataType.UInt32, expectedMulti, MemoryMarshal.AsBytes(TestVolumes.ReadUInt32(outMulti).AsSpan()), shape, $"label image, chunks {chunk}");
        }
        // 36 annotated nuclei; three of them fall into more than one 6-connected part, so there are 39 objects.
        Assert.Equal(39u, MemoryMarshal.Cast<byte, uint>(expectedMulti).ToArray().Max());
    }

    [Theory]
    [InlineData("threshold")]
    [InlineData("argmax")]
    [InlineData("smoothed")]
    public async Task Probability_maps_segment_the_same_chunked_and_whole(string mode)
    {
        const int sz = 20, sy = 30, sx = 26, channels = 3;
        var rng = new Random(11);
        var probabilities = new float[sz * sy * sx * channels];
        for (int v = 0; v < sz * sy * sx; v++)
        {
            int z = v / (sy * sx), y = v / sx % sy, x = v % sx;
            float a = (float)(0.5 + 0.45 * Math.Sin(z * 0.6) * Math.Cos(y * 0.45) * Math.Sin(x * 0.5 + 1) + 0.1 * (rng.NextDouble() - 0.5));
            float b = (float)rng.NextDouble() * (1 - a);
            probabilities[v * channels] = b;
            probabilities[v * channels + 1] = a;
            probabilities[v * channels + 2] = 1 - a - b;
        }
        string input = TestVolumes.WriteZarr(_dir, "p.zarr", "zyxc", [sz, sy, sx, channels], DataType.Float32, MemoryMarshal.AsBytes(probabilities.AsSpan()).ToArray());
        string[] options = mode switch
        {
            "threshold" => ["--threshold", "0.6", "--channel", "1"],
            "argmax" => ["--argmax", "--foreground", "1"],
            _ => ["--smooth-sigma", "1.5,1,2", "--channel", "1"],
        };
        var (code, _, err) = await Cli.Run(["label", input, _dir["whole.zarr"], .. options]);
        Assert.True(code == 0, err);
        var whole = TestVolumes.ReadUInt32(_dir["whole.zarr"]);
        Assert.True(whole.Max() > 3, "the segmentation should give several objects");
        (code, _, err) = await Cli.Run(["label", input, _dir["chunked.zarr"], "--chunk", "7,9,8", "--chunks", "7,9,8", "--workers", "3", .. options]);
        Assert.True(code == 0, err);
        Assert.Equal(whole, TestVolumes.ReadUInt32(_dir["chunked.zarr"]));

        if (mode == "smoothed") return;
        // Without smoothing the foreground is a plain expression of the probabilities: compare with the labeller on it.
        var mask = new byte[sz * sy * sx];
        for (int v = 0; v < mask.Length; v++)
        {
            var p = probabilities.AsSpan(v * channels, channels);
            bool foreground = mode == "threshold" ? p[1] >= 0.6f : p[1] > p[0] && p[1] >= p[2];
            mask[v] = foreground ? (byte)1 : (byte)0;
        }
        Assert.Equal(LabelPipelineTests.WholeVolume(mask, sz, sy, sx, Connectivity.Faces, 0, false, false), whole);
    }

    [Theory]
    [InlineData(6, "zyx")]
    [InlineData(26, "zyx")]
    [InlineData(4, "yx")]
    public async Task Filled_holes_equal_scipy_binary_fill_holes(int connectivity, string axes)
    {
        // Hollow shells (random spheres' surfaces) plus noise: many holes, some cut by chunk borders.
        long[] shape = axes == "zyx" ? [30, 34, 38] : [70, 90];
        int sz = axes == "zyx" ? 30 : 1, sy = (int)shape[^2], sx = (int)shape[^1];
        var mask = new byte[sz * sy * sx];
        var rng = new Random(connectivity);
        for (int k = 0; k < 14; k++)
        {
            double cz = rng.Next(sz), cy = rng.Next(sy), cx = rng.Next(sx), radius = rng.Next(3, 9);
            for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
            for (int x = 0; x < sx; x++)
            {
                double d = Math.Sqrt((z - cz) * (z - cz) * (sz == 1 ? 0 : 1) + (y - cy) * (y - cy) + (x - cx) * (x - cx));
                if (Math.Abs(d - radius) < 1.2) mask[(z * sy + y) * sx + x] = 1;
            }
        }
        for (int i = 0; i < mask.Length; i++) if (rng.NextDouble() < 0.03) mask[i] = 1;
        string input = TestVolumes.WriteZarr(_dir, "holes.zarr", axes, shape, DataType.UInt8, mask);
        NpyFile.Write(_dir["holes.npy"], DataType.UInt8, shape, mask);
        string reference = Directory.CreateDirectory(_dir["ref"]).FullName;
        PythonReference.Run("label_reference.py", "label", _dir["holes.npy"], reference, connectivity is 6 or 4 ? "1" : "3", "--fill-holes");
        string chunk = axes == "zyx" ? "9,11,13" : "1,17,23";
        var (code, _, err) = await Cli.Run("label", input, _dir["filled.zarr"], "--fill-holes", "--chunk", chunk, "--chunks", chunk,
            "--connectivity", connectivity.ToString(CultureInfo.InvariantCulture), "--workers", "2");
        Assert.True(code == 0, err);
        var filled = TestVolumes.ReadUInt32(_dir["filled.zarr"]);
        TestArrays.AssertEqual(DataType.UInt32, NpyFile.Read(Path.Combine(reference, "labels.npy")).Data, MemoryMarshal.AsBytes(filled.AsSpan()), shape, "filled");
        Assert.True(filled.Count(l => l != 0) > mask.Count(m => m != 0) + 100, "the case should have holes to fill");

        string labels = TestVolumes.WriteZarr(_dir, "nonbinary.zarr", axes, shape, DataType.UInt8, mask.Select(m => (byte)(m * 2)).ToArray());
        await Cli.Expect(1, "--fill-holes needs a binary image", "label", labels, _dir["x.zarr"], "--fill-holes");
    }

    [Fact]
    public async Task Time_series_label_each_time_point_with_ids_unique_across_time()
    {
        const int st = 3, sz = 6, sy = 14, sx = 12;
        var mask = LabelPipelineTests.RandomMask(st * sz * sy * sx, 0.3, seed: 3);
        string input = TestVolumes.WriteZarr(_dir, "t.zarr", "tzyx", [st, sz, sy, sx], DataType.UInt8, mask);
        var (code, _, err) = await Cli.Run("label", input, _dir["t-out.zarr"], "--chunk", "4,5,7", "--chunks", "4,5,7", "--objects", _dir["t.csv"]);
        Assert.True(code == 0, err);
        var actual = TestVolumes.ReadUInt32(_dir["t-out.zarr"]);
        int n = sz * sy * sx;
        uint offset = 0;
        for (int t = 0; t < st; t++)
        {
            var expected = LabelPipelineTests.WholeVolume(mask[(t * n)..((t + 1) * n)], sz, sy, sx, Connectivity.Faces, 0, false, false);
            for (int i = 0; i < n; i++)
                Assert.True((expected[i] == 0 ? 0 : expected[i] + offset) == actual[t * n + i], $"t {t}, voxel {i}");
            offset += expected.Max();
        }
        var rows = File.ReadAllLines(_dir["t.csv"]);
        Assert.StartsWith("id,t,voxels,", rows[0]);
        Assert.Equal((int)offset, rows.Length - 1);
        Assert.Equal("2", rows[^1].Split(',')[1]);
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_error_and_an_existing_output_is_kept()
    {
        string labels = TestVolumes.WriteZarr(_dir, "l.zarr", "zyx", [4, 5, 6], DataType.UInt16, new byte[4 * 5 * 6 * 2]);
        string probabilities = TestVolumes.WriteZarr(_dir, "pr.zarr", "zyxc", [4, 5, 6, 2], DataType.Float32, new byte[4 * 5 * 6 * 2 * 4]);
        string o = _dir["o.zarr"];
        await Cli.Expect(2, "--threshold applies to probability maps", "label", labels, o, "--threshold", "0.3");
        await Cli.Expect(2, "--channel 2: ", "label", probabilities, o, "--channel", "2");
        await Cli.Expect(2, "--connectivity 8", "label", labels, o, "--connectivity", "8");
        await Cli.Expect(2, "--max-size 3 is below --min-size 5", "label", labels, o, "--min-size", "5", "--max-size", "3");
        await Cli.Expect(2, "--foreground goes with --argmax", "label", probabilities, o, "--foreground", "1");
        await Cli.Expect(2, "needs at least", "label", probabilities, o, "--smooth-sigma", "3");
        string other = TestVolumes.WriteZarr(_dir, "other.zarr", "zyx", [4, 5, 7], DataType.Float32, new byte[4 * 5 * 7 * 4]);
        await Cli.Expect(2, "does not match", "label", labels, o, "--intensity", other);
        Assert.False(Directory.Exists(o));

        var (code, _, err) = await Cli.Run("label", labels, o);
        Assert.True(code == 0, err);
        await Cli.Expect(2, "already exists", "label", labels, o);
        (code, _, err) = await Cli.Run("label", labels, o, "--overwrite");
        Assert.True(code == 0, err);
    }


}
