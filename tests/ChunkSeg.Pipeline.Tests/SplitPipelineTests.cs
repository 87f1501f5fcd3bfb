using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Splitting;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg label --voronoi-otsu` chunk by chunk against the whole image labelled at once (VoronoiOtsu.Label, itself
/// equal to tools/reference/voronoi_otsu.py voxel for voxel): the same regions, for any chunk shape and worker count,
/// floods many chunks wide included.
/// </summary>
public sealed class SplitPipelineTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Blobs on a noisy background, some touching, as uint16.</summary>
    private static ushort[] Blobs(int sz, int sy, int sx, int count, double radius, int seed)
    {
        var rng = new Random(seed);
        var centres = Enumerable.Range(0, count).Select(i => (Z: sz == 1 ? 0 : rng.NextDouble() * sz, Y: rng.NextDouble() * sy, X: rng.NextDouble() * sx)).ToList();
        for (int i = 1; i < count; i += 3)
            centres[i] = (sz == 1 ? 0 : centres[i - 1].Z, Math.Min(sy - 1, centres[i - 1].Y + 1.3 * radius), Math.Min(sx - 1, centres[i - 1].X + 0.8 * radius));
        var image = new ushort[sz * sy * sx];
        for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++)
                {
                    double v = 100 + rng.Next(0, 40);
                    foreach (var c in centres)
                        v += 800 * Math.Exp(-((z - c.Z) * (z - c.Z) + (y - c.Y) * (y - c.Y) + (x - c.X) * (x - c.X)) / (2 * radius * radius));
                    image[(z * sy + y) * sx + x] = (ushort)Math.Min(v, 65535);
                }
        return image;
    }

    /// <summary>The whole image labelled at once, renumbered 1, 2, … by first voxel in C order as `label` numbers objects.</summary>
    private static uint[] Whole(ushort[] image, int sz, int sy, int sx, double spot, double outline)
    {
        bool threeD = sz > 1;
        var labels = new uint[image.Length];
        VoronoiOtsu.Label(image.Select(v => (float)v).ToArray(), new Long3(sz, sy, sx), threeD,
            new VoronoiOtsuSigmas((threeD ? spot : 0, spot, spot), (threeD ? outline : 0, outline, outline)), labels);
        return FirstVoxelOrder(labels);
    }

    private static uint[] FirstVoxelOrder(uint[] labels)
    {
        var ids = new Dictionary<uint, uint>();
        return labels.Select(l => l == 0 ? 0u : ids.TryGetValue(l, out uint id) ? id : ids[l] = (uint)ids.Count + 1).ToArray();
    }

    private string Run(ushort[] image, int sz, int sy, int sx, string sigmas, string chunk, int workers, string name)
    {
        bool twoD = sz == 1;
        string input = TestVolumes.WriteZarr(_dir, name + "-in.zarr", twoD ? "yx" : "zyx", twoD ? [sy, sx] : [sz, sy, sx], DataType.UInt16,
            MemoryMarshal.AsBytes(image.AsSpan()).ToArray());
        string output = _dir[name + "-out.zarr"];
        var (code, _, err) = Cli.Run("label", input, output, "--voronoi-otsu", sigmas, "--chunk", chunk, "--chunks", chunk,
            "--workers", workers.ToString(CultureInfo.InvariantCulture)).GetAwaiter().GetResult();
        Assert.True(code == 0, $"{name}: {err}");
        Assert.False(Directory.Exists(output + ".work"), "the workspace is removed after the job commits");
        return output;
    }

    public sealed record Case(int Seed, int Sz, int Sy, int Sx, int Blobs, double Radius, double Spot, double Outline, int Cz, int Cy, int Cx, int Workers);

    private static Gen<Case> Cases =>
        from seed in Gen.Choose(0, 1 << 20)
        from twoD in Gen.Elements(false, false, true)
        from sz in twoD ? Gen.Constant(1) : Gen.Choose(6, 16)
        from sy in Gen.Choose(12, 30)
        from sx in Gen.Choose(12, 30)
        from blobs in Gen.Choose(2, 8)
        from radius in Gen.Elements(2.0, 3.0, 4.5)
        from spot in Gen.Elements(1.0, 1.5, 2.0)
        from outline in Gen.Elements(0.5, 1.0, 2.0)
        from cz in Gen.Choose(2, sz)
        from cy in Gen.Choose(2, sy)
        from cx in Gen.Choose(2, sx)
        from workers in Gen.Choose(1, 3)
        select new Case(seed, sz, sy, sx, blobs, radius, spot, outline, twoD ? 1 : cz, cy, cx, workers);

    [Fact]
    public void Chunked_split_equals_the_whole_image_for_any_chunk_shape_and_worker_count()
    {
        int run = 0;
        var property = Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var image = Blobs(c.Sz, c.Sy, c.Sx, c.Blobs, c.Radius, c.Seed);
            string sigmas = string.Create(CultureInfo.InvariantCulture, $"{c.Spot},{c.Outline}");
            string output = Run(image, c.Sz, c.Sy, c.Sx, sigmas, $"{c.Cz},{c.Cy},{c.Cx}", c.Workers, $"case{run++}");
            var expected = Whole(image, c.Sz, c.Sy, c.Sx, c.Spot, c.Outline);
            var actual = TestVolumes.ReadUInt32(output);
            int differ = expected.Zip(actual).Count(p => p.First != p.Second);
            Assert.True(differ == 0, $"{c}: {differ} voxels differ from the whole image labelled at once");
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(12).WithReplay(7, 11), property);
    }

    [Theory]
    [InlineData(16, 40, 44, 12, 4.0, "3,4,4")]      // big blobs, 4-voxel rounds: floods several rounds and chunks wide
    [InlineData(1, 60, 64, 8, 6.0, "1,5,4")]        // 2D
    public void Floods_longer_than_a_round_and_wider_than_a_chunk_are_exact(int sz, int sy, int sx, int blobs, double radius, string chunk)
    {
        var image = Blobs(sz, sy, sx, blobs, radius, seed: sz + sy);
        string output = Run(image, sz, sy, sx, "2,1", chunk, 2, "long");
        var expected = Whole(image, sz, sy, sx, 2, 1);
        Assert.True(expected.Max() >= 3, $"the scene should hold several objects; it holds {expected.Max()}");
        Assert.Equal(expected, TestVolumes.ReadUInt32(output));
    }

    /// <summary>Two-class probabilities (background, nuclei) of blobs, saturating at 1 inside them, channels first.</summary>
    private static float[] Probabilities(int sz, int sy, int sx, int count, double radius, int seed)
    {
        var nuclei = Blobs(sz, sy, sx, count, radius, seed).Select(v => Math.Clamp((v - 200f) / 600f, 0f, 1f)).ToArray();
        return nuclei.Select(p => 1 - p).Concat(nuclei).ToArray();
    }

    private string RunSplit(float[] probabilities, int sz, int sy, int sx, string chunk, int workers, string name, params string[] options)
    {
        bool twoD = sz == 1;
        string input = TestVolumes.WriteZarr(_dir, name + "-p.zarr", twoD ? "cyx" : "czyx", twoD ? [2, sy, sx] : [2, sz, sy, sx], DataType.Float32,
            MemoryMarshal.AsBytes(probabilities.AsSpan()).ToArray());
        string output = _dir[name + "-out.zarr"];
        var (code, _, err) = Cli.Run(["label", input, output, "--split", "voronoi", .. options, "--chunk", chunk, "--chunks", chunk,
            "--workers", workers.ToString(CultureInfo.InvariantCulture)]).GetAwaiter().GetResult();
        Assert.True(code == 0, $"{name}: {err}");
        Assert.False(Directory.Exists(output + ".work"), "the workspace is removed after the job commits");
        return output;
    }

    [Fact]
    public void Split_voronoi_of_thresholded_probabilities_in_chunks_equals_the_whole_image()
    {
        int run = 0;
        var property = Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var probabilities = Probabilities(c.Sz, c.Sy, c.Sx, c.Blobs, c.Radius, c.Seed);
            int n = c.Sz * c.Sy * c.Sx;
            var nuclei = probabilities.AsSpan(n, n).ToArray();
            bool threeD = c.Sz > 1;
            string spot = string.Create(CultureInfo.InvariantCulture, $"{c.Spot}");
            string output = RunSplit(probabilities, c.Sz, c.Sy, c.Sx, $"{c.Cz},{c.Cy},{c.Cx}", c.Workers, $"voronoi{run++}",
                "--spot-sigma", spot, "--channel", "1", "--threshold", "0.5");
            var whole = new uint[n];
            VoronoiOtsu.Split(nuclei, nuclei.Select(p => p >= 0.5f ? (byte)1 : (byte)0).ToArray(), new Long3(c.Sz, c.Sy, c.Sx), threeD,
                (threeD ? c.Spot : 0, c.Spot, c.Spot), whole);
            var expected = FirstVoxelOrder(whole);
            var actual = TestVolumes.ReadUInt32(output);
            int differ = expected.Zip(actual).Count(p => p.First != p.Second);
            Assert.True(differ == 0, $"{c}: {differ} voxels differ from the whole image split at once");
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(8).WithReplay(5, 3), property);
    }

    [Theory]
    [InlineData(14, 36, 40, "5,9,7", "--channel", "1", "--threshold", "0.4", "--smooth-sigma", "1")]
    [InlineData(14, 36, 40, "6,8,9", "--argmax", "--foreground", "1")]
    [InlineData(1, 60, 64, "1,11,13", "--channel", "1", "--threshold", "0.5")]
    public void Split_voronoi_in_chunks_equals_one_chunk_holding_everything(int sz, int sy, int sx, string chunk, params string[] segmentation)
    {
        var probabilities = Probabilities(sz, sy, sx, 10, 4.0, seed: sy + sx);
        string[] options = ["--spot-sigma", sz == 1 ? "2" : "1,2,2", .. segmentation];
        string whole = RunSplit(probabilities, sz, sy, sx, $"{sz},{sy},{sx}", 1, "one", options);
        string chunked = RunSplit(probabilities, sz, sy, sx, chunk, 3, "many", options);
        var expected = TestVolumes.ReadUInt32(whole);
        Assert.True(expected.Max() >= 4, $"the scene should hold several objects; it holds {expected.Max()}");
        Assert.Equal(expected, TestVolumes.ReadUInt32(chunked));
    }

    [Fact]
    public async Task Bad_seeded_split_options_are_refused_with_the_option_named()
    {
        var probabilities = Probabilities(4, 8, 8, 2, 2, 1);
        string input = TestVolumes.WriteZarr(_dir, "bad-p.zarr", "czyx", [2, 4, 8, 8], DataType.Float32, MemoryMarshal.AsBytes(probabilities.AsSpan()).ToArray());
        async Task Refused(string expected, params string[] options)
        {
            var (code, _, err) = await Cli.Run(["label", input, _dir["bad-out.zarr"], .. options]);
            Assert.True(code != 0 && err.Contains(expected, StringComparison.Ordinal), $"{string.Join(' ', options)}: exit {code}, {err}");
        }
        await Refused("--split voronoi needs --spot-sigma", "--split", "voronoi");
        await Refused("--split watershed", "--split", "watershed", "--spot-sigma", "2");
        await Refused("give one of them", "--split", "voronoi", "--spot-sigma", "2", "--voronoi-otsu", "2,1");
        await Refused("--connectivity does not apply", "--split", "voronoi", "--spot-sigma", "2", "--connectivity", "6");
        await Refused("--outline-sigma goes with --voronoi-otsu", "--split", "voronoi", "--spot-sigma", "2", "--outline-sigma", "1");
        await Refused("--spot-sigma 0,1,1", "--split", "voronoi", "--spot-sigma", "0,1,1");
        await Refused("--channel 2", "--split", "voronoi", "--spot-sigma", "2", "--channel", "2");
        var labels = Blobs(4, 8, 8, 2, 2, 1);
        string integers = TestVolumes.WriteZarr(_dir, "bad-int.zarr", "zyx", [4, 8, 8], DataType.UInt16, MemoryMarshal.AsBytes(labels.AsSpan()).ToArray());
        var (code, _, err) = await Cli.Run("label", integers, _dir["bad-out2.zarr"], "--split", "voronoi", "--spot-sigma", "2");
        Assert.True(code != 0 && err.Contains("probability map", StringComparison.Ordinal), err);
    }

    [Fact]
    public async Task Bad_split_options_are_refused_with_the_option_named()
    {
        var image = Blobs(4, 8, 8, 2, 2, 1);
        string input = TestVolumes.WriteZarr(_dir, "bad.zarr", "zyx", [4, 8, 8], DataType.UInt16, MemoryMarshal.AsBytes(image.AsSpan()).ToArray());
        var (code, _, err) = await Cli.Run("label", input, _dir["bad-out.zarr"], "--voronoi-otsu", "2");
        Assert.NotEqual(0, code);
        Assert.Contains("--voronoi-otsu 2", err);
        (code, _, err) = await Cli.Run("label", input, _dir["bad-out.zarr"], "--voronoi-otsu", "2,1", "--threshold", "0.5");
        Assert.NotEqual(0, code);
        Assert.Contains("--threshold", err);
    }
}
