using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `label --threshold otsu`: the channel's Otsu threshold over the whole volume, as tools/reference/voronoi_otsu.py
/// --otsu computes clEsperanto's threshold_otsu; the foreground is exactly the values above it, for any chunk shape.
/// </summary>
public sealed class OtsuThresholdTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Bright blobs on a dimmer noisy background, as uint16; frames (t) differ in brightness.</summary>
    private static ushort[] Image(int st, int sz, int sy, int sx, int seed)
    {
        var rng = new Random(seed);
        var image = new ushort[st * sz * sy * sx];
        for (int t = 0; t < st; t++)
        {
            var centres = Enumerable.Range(0, 6).Select(_ => (Z: rng.NextDouble() * sz, Y: rng.NextDouble() * sy, X: rng.NextDouble() * sx)).ToList();
            for (int z = 0; z < sz; z++)
                for (int y = 0; y < sy; y++)
                    for (int x = 0; x < sx; x++)
                    {
                        double v = 200 + 60 * t + rng.Next(0, 80);
                        foreach (var c in centres)
                            v += 900 * Math.Exp(-((z - c.Z) * (z - c.Z) * (sz == 1 ? 0 : 1) + (y - c.Y) * (y - c.Y) + (x - c.X) * (x - c.X)) / 18.0);
                        image[((t * sz + z) * sy + y) * sx + x] = (ushort)Math.Min(v, 65535);
                    }
        }
        return image;
    }

    private float ReferenceThreshold(float[] values, long[] shape)
    {
        NpyFile.Write(_dir["otsu-in.npy"], DataType.Float32, shape, MemoryMarshal.AsBytes(values.AsSpan()));
        double t = JsonDocument.Parse(PythonReference.Run("voronoi_otsu.py", _dir["otsu-in.npy"], "--otsu")).RootElement.GetProperty("threshold").GetDouble();
        return (float)t;
    }

    [Theory]
    [InlineData(1, 14, 40, 36, "zyx", "5,9,11", 2)]
    [InlineData(1, 1, 60, 50, "yx", "1,13,17", 3)]
    [InlineData(3, 8, 24, 28, "tzyx", "3,7,9", 2)]      // one threshold over every time point
    public async Task The_foreground_is_every_voxel_above_the_reference_otsu_threshold(int st, int sz, int sy, int sx, string axes, string chunk, int workers)
    {
        var image = Image(st, sz, sy, sx, seed: sy);
        long[] shape = axes switch { "yx" => [sy, sx], "zyx" => [sz, sy, sx], _ => [st, sz, sy, sx] };
        string input = TestVolumes.WriteZarr(_dir, "raw.zarr", axes, shape, DataType.UInt16, MemoryMarshal.AsBytes(image.AsSpan()).ToArray());
        float threshold = ReferenceThreshold(image.Select(v => (float)v).ToArray(), shape);

        string whole = _dir["whole.zarr"], chunked = _dir["chunked.zarr"];
        var (code, _, err) = await Cli.Run("label", input, whole, "--threshold", "otsu", "--workers", "1");
        Assert.True(code == 0, err);
        Assert.Contains("Otsu threshold of channel 0", err);
        (code, _, err) = await Cli.Run("label", input, chunked, "--threshold", "otsu", "--chunk", chunk, "--chunks", chunk,
            "--workers", workers.ToString(CultureInfo.InvariantCulture));
        Assert.True(code == 0, err);

        var labels = TestVolumes.ReadUInt32(whole);
        int wrong = image.Zip(labels).Count(p => p.First > threshold != (p.Second != 0));
        Assert.True(wrong == 0, $"{wrong} voxels disagree with value > {threshold}");
        Assert.True(labels.Max() >= 3, $"several objects expected; found {labels.Max()}");
        Assert.Equal(labels, TestVolumes.ReadUInt32(chunked));
    }

    [Fact]
    public async Task A_probability_channel_is_thresholded_at_its_otsu_threshold_and_can_be_split()
    {
        int sz = 12, sy = 36, sx = 40, n = sz * sy * sx;
        var nuclei = Image(1, sz, sy, sx, seed: 5).Select(v => Math.Clamp((v - 300f) / 700f, 0f, 1f)).ToArray();
        var probabilities = nuclei.Select(p => 1 - p).Concat(nuclei).ToArray();
        string input = TestVolumes.WriteZarr(_dir, "p.zarr", "czyx", [2, sz, sy, sx], DataType.Float32, MemoryMarshal.AsBytes(probabilities.AsSpan()).ToArray());
        float threshold = ReferenceThreshold(nuclei, [sz, sy, sx]);

        var (code, _, err) = await Cli.Run("label", input, _dir["p-labels.zarr"], "--threshold", "otsu", "--channel", "1", "--chunk", "6,16,16");
        Assert.True(code == 0, err);
        var labels = TestVolumes.ReadUInt32(_dir["p-labels.zarr"]);
        Assert.Equal(n, labels.Length);
        Assert.Equal(0, nuclei.Zip(labels).Count(p => p.First > threshold != (p.Second != 0)));

        // The split inside that foreground: chunked == one chunk.
        string[] split = ["--split", "voronoi", "--spot-sigma", "1,2,2", "--threshold", "otsu", "--channel", "1"];
        (code, _, err) = await Cli.Run(["label", input, _dir["one.zarr"], .. split, "--chunk", $"{sz},{sy},{sx}"]);
        Assert.True(code == 0, err);
        (code, _, err) = await Cli.Run(["label", input, _dir["many.zarr"], .. split, "--chunk", "5,9,11", "--workers", "3"]);
        Assert.True(code == 0, err);
        var one = TestVolumes.ReadUInt32(_dir["one.zarr"]);
        Assert.Equal(0, nuclei.Zip(one).Count(p => p.First > threshold != (p.Second != 0)));
        Assert.Equal(one, TestVolumes.ReadUInt32(_dir["many.zarr"]));
    }

    /// <summary>
    /// With --smooth-sigma the threshold is Otsu's of the values thresholded: the channel smoothed as the segmentation
    /// smooths it (BlockSmoothing over the whole volume here), against the reference on those values; chunked == one chunk.
    /// </summary>
    [Fact]
    public async Task With_smoothing_the_threshold_is_otsus_of_the_smoothed_channel()
    {
        int sz = 12, sy = 36, sx = 40;
        var nuclei = Image(1, sz, sy, sx, seed: 9).Select(v => Math.Clamp((v - 300f) / 700f, 0f, 1f)).ToArray();
        var probabilities = nuclei.Select(p => 1 - p).Concat(nuclei).ToArray();
        string input = TestVolumes.WriteZarr(_dir, "ps.zarr", "czyx", [2, sz, sy, sx], DataType.Float32, MemoryMarshal.AsBytes(probabilities.AsSpan()).ToArray());
        var kernels = GpuNode.Stages.BlockSmoothing.Kernels(new Kernels.Features.Sigma3(1, 1.5, 1.5));
        var smoothed = GpuNode.Stages.BlockSmoothing.Apply(kernels, new Contracts.Geometry.Long3(sz, sy, sx), (float[])nuclei.Clone(), new float[nuclei.Length]);
        float threshold = ReferenceThreshold(smoothed, [sz, sy, sx]);

        string[] options = ["--threshold", "otsu", "--channel", "1", "--smooth-sigma", "1,1.5,1.5"];
        var (code, _, err) = await Cli.Run(["label", input, _dir["s-one.zarr"], .. options, "--chunk", $"{sz},{sy},{sx}"]);
        Assert.True(code == 0, err);
        Assert.Contains("(smoothed)", err);
        (code, _, err) = await Cli.Run(["label", input, _dir["s-many.zarr"], .. options, "--chunk", "5,13,11", "--workers", "2"]);
        Assert.True(code == 0, err);
        var one = TestVolumes.ReadUInt32(_dir["s-one.zarr"]);
        Assert.Equal(0, smoothed.Zip(one).Count(p => p.First > threshold != (p.Second != 0)));
        Assert.True(one.Max() >= 2, $"several objects expected; found {one.Max()}");
        Assert.Equal(one, TestVolumes.ReadUInt32(_dir["s-many.zarr"]));
    }

    [Fact]
    public async Task Otsu_options_that_do_not_fit_are_refused_with_the_option_named()
    {
        var image = Image(1, 4, 8, 8, 1);
        string input = TestVolumes.WriteZarr(_dir, "bad.zarr", "zyx", [4, 8, 8], DataType.UInt16, MemoryMarshal.AsBytes(image.AsSpan()).ToArray());
        var values = image.Select(v => (float)v).ToArray();
        string floats = TestVolumes.WriteZarr(_dir, "bad-f.zarr", "zyx", [4, 8, 8], DataType.Float32, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        await Cli.Expect(2, "--threshold abc: give a number (e.g. 0.5) or otsu", "label", floats, _dir["o1.zarr"], "--threshold", "abc");
        await Cli.Expect(2, "--voronoi-otsu segments the raw image itself", "label", input, _dir["o3.zarr"], "--threshold", "otsu", "--voronoi-otsu", "2,1");
        string flat = TestVolumes.WriteZarr(_dir, "flat.zarr", "zyx", [4, 8, 8], DataType.UInt16, new byte[4 * 8 * 8 * 2]);
        await Cli.Expect(2, "is constant", "label", flat, _dir["o4.zarr"], "--threshold", "otsu");
    }
}
