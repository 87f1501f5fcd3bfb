using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Labeling;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg label --dilate r` / `--erode r` chunk by chunk against the whole volume (labelled whole, then
/// LabelMorphology on the whole, itself equal to tools/reference/expand_shrink.py): the same labels for any chunk shape
/// and worker count, and an object table that describes the objects as written (none for an object erosion erased).
/// </summary>
public sealed class LabelMorphologyPipelineTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A binary mask of random balls (radius 1 to 4), some touching, over roughly <paramref name="fill"/> of the volume.</summary>
    private static byte[] Balls(int sz, int sy, int sx, double fill, int seed)
    {
        var rng = new Random(seed);
        var mask = new byte[sz * sy * sx];
        int count = Math.Max(1, (int)(fill * mask.Length / 30));
        for (int k = 0; k < count; k++)
        {
            int cz = rng.Next(sz), cy = rng.Next(sy), cx = rng.Next(sx);
            double radius = 1 + rng.NextDouble() * 3;
            for (int z = 0; z < sz; z++)
                for (int y = 0; y < sy; y++)
                    for (int x = 0; x < sx; x++)
                        if ((z - cz) * (z - cz) + (y - cy) * (y - cy) + (x - cx) * (x - cx) <= radius * radius)
                            mask[(z * sy + y) * sx + x] = 1;
        }
        return mask;
    }

    public sealed record Case(int Seed, int Sz, int Sy, int Sx, double Fill, int Cz, int Cy, int Cx, int Connectivity, int Workers, long MinSize,
        bool Erode, double Radius);

    private static Gen<Case> Cases =>
        from seed in Gen.Choose(0, 1 << 20)
        from twoD in Gen.Elements(false, false, true)
        from sz in twoD ? Gen.Constant(1) : Gen.Choose(2, 16)
        from sy in Gen.Choose(3, 24)
        from sx in Gen.Choose(3, 24)
        from fill in Gen.Elements(0.05, 0.2, 0.5)
        from cz in Gen.Choose(1, sz)
        from cy in Gen.Choose(1, sy)
        from cx in Gen.Choose(1, sx)
        from connectivity in Gen.Elements(6, 26)
        from workers in Gen.Choose(1, 3)
        from minSize in Gen.Elements(0L, 0L, 4L)
        from erode in Gen.Elements(false, true)
        from radius in Gen.Elements(1.0, 1.5, 2.5, 4.0)
        select new Case(seed, sz, sy, sx, fill, cz, cy, cx, connectivity, workers, minSize, erode, radius);

    private static ulong[] Expected(byte[] mask, Case c)
    {
        bool twoD = c.Sz == 1;
        var labels = LabelPipelineTests.WholeVolume(mask, c.Sz, c.Sy, c.Sx, (Connectivity)c.Connectivity, c.MinSize, excludeBorder: false, twoD);
        var morphology = new LabelMorphology(c.Erode ? LabelMorphologyMode.Erode : LabelMorphologyMode.Dilate, c.Radius);
        return morphology.Apply(labels.Select(l => (ulong)l).ToArray(), new Long3(c.Sz, c.Sy, c.Sx));
    }

    [Fact]
    public void Chunked_dilation_and_erosion_equal_the_whole_volume_for_any_chunk_shape_and_worker_count()
    {
        int run = 0;
        var property = Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var mask = Balls(c.Sz, c.Sy, c.Sx, c.Fill, c.Seed);
            bool twoD = c.Sz == 1;
            string input = TestVolumes.WriteZarr(_dir, $"in{run}.zarr", twoD ? "yx" : "zyx", twoD ? [c.Sy, c.Sx] : [c.Sz, c.Sy, c.Sx], DataType.UInt8, mask);
            string output = _dir[$"out{run}.zarr"], table = _dir[$"objects{run++}.csv"];
            string chunk = $"{c.Cz},{c.Cy},{c.Cx}";
            var args = new List<string> { "label", input, output, "--chunk", chunk, "--chunks", chunk, "--workers", c.Workers.ToString(CultureInfo.InvariantCulture),
                "--connectivity", (twoD ? (c.Connectivity == 6 ? 4 : 8) : c.Connectivity).ToString(CultureInfo.InvariantCulture),
                c.Erode ? "--erode" : "--dilate", c.Radius.ToString(CultureInfo.InvariantCulture), "--objects", table };
            if (c.MinSize > 0) args.AddRange(["--min-size", c.MinSize.ToString(CultureInfo.InvariantCulture)]);
            var (code, _, err) = Cli.Run([.. args]).GetAwaiter().GetResult();
            Assert.True(code == 0, $"{c}: {err}");

            var expected = Expected(mask, c);
            var actual = TestVolumes.ReadUInt32(output);
            for (int i = 0; i < expected.Length; i++)
                if (expected[i] != actual[i]) Assert.Fail($"{c}: voxel {i} is {actual[i]}, the whole volume gives {expected[i]}");
            AssertTable(table, expected, c.Sz, c.Sy, c.Sx, null, $"{c}");
            Assert.False(Directory.Exists(output + ".work"), "the workspace is removed after the job commits");
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(24).WithReplay(4, 9), property);
    }

    /// <summary>The table holds one row per id present in <paramref name="labels"/>, in id order, with its voxels, box, centroid (and mean intensity).</summary>
    private static void AssertTable(string path, ulong[] labels, int sz, int sy, int sx, float[]? intensity, string context)
    {
        var objects = new SortedDictionary<ulong, (long N, long[] Min, long[] Max, double[] Sum, double I)>();
        for (int z = 0, i = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++, i++)
                {
                    if (labels[i] == 0) continue;
                    if (!objects.TryGetValue(labels[i], out var o)) o = (0, [z, y, x], [z, y, x], new double[3], 0);
                    long[] p = [z, y, x];
                    for (int a = 0; a < 3; a++) { o.Min[a] = Math.Min(o.Min[a], p[a]); o.Max[a] = Math.Max(o.Max[a], p[a]); o.Sum[a] += p[a]; }
                    objects[labels[i]] = (o.N + 1, o.Min, o.Max, o.Sum, o.I + (intensity?[i] ?? 0));
                }
        var rows = File.ReadAllLines(path);
        bool threeD = sz > 1;
        Assert.True(objects.Count == rows.Length - 1, $"{context}: the table has {rows.Length - 1} rows; the labels hold {objects.Count} objects");
        int r = 1, first = threeD ? 0 : 1, axes = threeD ? 3 : 2;
        foreach (var (id, o) in objects)
        {
            var v = rows[r++].Split(',').Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal((double)id, v[0]);
            Assert.Equal(o.N, v[1]);
            for (int a = first; a < 3; a++)
            {
                int k = a - first;
                Assert.Equal(o.Sum[a] / o.N, v[3 + k], 1e-9);
                Assert.Equal(o.Min[a], v[3 + 2 * axes + k]);
                Assert.Equal(o.Max[a] + 1, v[3 + 3 * axes + k]);
            }
            if (intensity is not null) Assert.Equal(o.I / o.N, v[^1], Math.Abs(o.I / o.N) * 1e-5);
        }
    }

    [Theory]
    [InlineData(false, 2.5)]
    [InlineData(true, 1.5)]
    public async Task The_table_reports_the_mean_intensity_over_the_reshaped_objects(bool erode, double radius)
    {
        const int sz = 14, sy = 20, sx = 22;
        var mask = Balls(sz, sy, sx, 0.4, seed: 3);
        var rng = new Random(8);
        var intensity = new float[mask.Length];
        for (int i = 0; i < intensity.Length; i++) intensity[i] = (float)(rng.NextDouble() * 100);
        string input = TestVolumes.WriteZarr(_dir, "in.zarr", "zyx", [sz, sy, sx], DataType.UInt8, mask);
        string intensityPath = TestVolumes.WriteZarr(_dir, "intensity.zarr", "zyx", [sz, sy, sx], DataType.Float32, MemoryMarshal.AsBytes(intensity.AsSpan()).ToArray());
        var (code, stdout, err) = await Cli.Run("label", input, _dir["out.zarr"], "--chunk", "5,7,6", "--chunks", "5,7,6", "--workers", "2", "--connectivity", "26",
            erode ? "--erode" : "--dilate", radius.ToString(CultureInfo.InvariantCulture), "--intensity", intensityPath, "--objects", _dir["objects.csv"]);
        Assert.True(code == 0, err);
        var c = new Case(3, sz, sy, sx, 0.4, 5, 7, 6, 26, 2, 0, erode, radius);
        var expected = Expected(mask, c);
        Assert.Equal(expected.Select(l => (uint)l).ToArray(), TestVolumes.ReadUInt32(_dir["out.zarr"]));
        AssertTable(_dir["objects.csv"], expected, sz, sy, sx, intensity, "intensity");
        Assert.Contains(erode ? "eroded by" : "dilated by", stdout);
    }

    [Fact]
    public async Task Erosion_that_erases_objects_drops_them_from_the_table_and_keeps_the_other_ids()
    {
        // Three objects: a speck (erased by r = 1), a 5x5x5 cube (keeps its centre) and a line (erased).
        const int sz = 9, sy = 9, sx = 16;
        var mask = new byte[sz * sy * sx];
        int I(int z, int y, int x) => (z * sy + y) * sx + x;
        mask[I(0, 0, 0)] = 1;
        for (int z = 2; z < 7; z++) for (int y = 2; y < 7; y++) for (int x = 2; x < 7; x++) mask[I(z, y, x)] = 1;
        for (int x = 9; x < 15; x++) mask[I(4, 4, x)] = 1;
        string input = TestVolumes.WriteZarr(_dir, "erase.zarr", "zyx", [sz, sy, sx], DataType.UInt8, mask);
        var (code, stdout, err) = await Cli.Run("label", input, _dir["erase-out.zarr"], "--chunk", "4,4,4", "--chunks", "4,4,4", "--erode", "1",
            "--objects", _dir["erase.csv"]);
        Assert.True(code == 0, err);
        var labels = TestVolumes.ReadUInt32(_dir["erase-out.zarr"]);
        Assert.Equal([0u, 2u], labels.Distinct().Order().ToArray());          // ids as numbered before: the cube stays 2
        var rows = File.ReadAllLines(_dir["erase.csv"]);
        Assert.Equal(2, rows.Length);
        Assert.StartsWith("2,27,", rows[1], StringComparison.Ordinal);        // the cube's 3x3x3 centre
        Assert.Contains("2 of 3 erased", stdout);
    }

    [Fact]
    public void Chunked_voronoi_otsu_with_dilation_equals_one_chunk()
    {
        const int sz = 10, sy = 24, sx = 26;
        var rng = new Random(2);
        var image = new ushort[sz * sy * sx];
        var centres = Enumerable.Range(0, 5).Select(_ => (Z: rng.NextDouble() * sz, Y: rng.NextDouble() * sy, X: rng.NextDouble() * sx)).ToArray();
        for (int z = 0, i = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++, i++)
                {
                    double v = 100 + rng.Next(0, 30);
                    foreach (var c in centres) v += 800 * Math.Exp(-((z - c.Z) * (z - c.Z) + (y - c.Y) * (y - c.Y) + (x - c.X) * (x - c.X)) / 8);
                    image[i] = (ushort)v;
                }
        string input = TestVolumes.WriteZarr(_dir, "vo.zarr", "zyx", [sz, sy, sx], DataType.UInt16, MemoryMarshal.AsBytes(image.AsSpan()).ToArray());
        uint[] Run(string chunk, string workers, string name)
        {
            var (code, _, err) = Cli.Run("label", input, _dir[name], "--voronoi-otsu", "2,1", "--dilate", "3", "--chunk", chunk, "--chunks", chunk,
                "--workers", workers, "--objects", _dir[name + ".csv"]).GetAwaiter().GetResult();
            Assert.True(code == 0, err);
            return TestVolumes.ReadUInt32(_dir[name]);
        }
        var whole = Run($"{sz},{sy},{sx}", "1", "vo-whole.zarr");
        var chunked = Run("3,5,4", "3", "vo-chunked.zarr");
        Assert.True(whole.Max() >= 2, "the scene should hold several objects");
        Assert.Equal(whole, chunked);
        Assert.Equal(File.ReadAllLines(_dir["vo-whole.zarr.csv"]).Length, File.ReadAllLines(_dir["vo-chunked.zarr.csv"]).Length);
    }

    [Fact]
    public async Task Bad_dilate_and_erode_options_are_refused_with_the_option_named()
    {
        var mask = Balls(4, 8, 8, 0.3, 1);
        string input = TestVolumes.WriteZarr(_dir, "bad.zarr", "zyx", [4, 8, 8], DataType.UInt8, mask);
        async Task Refused(string expected, params string[] options)
        {
            var (code, _, err) = await Cli.Run(["label", input, _dir["bad-out.zarr"], .. options]);
            Assert.Equal(2, code);
            Assert.Contains(expected, err);
            Assert.False(Directory.Exists(_dir["bad-out.zarr"]), "nothing is written");
        }
        await Refused("--dilate -1", "--dilate", "-1");
        await Refused("--erode 0", "--erode", "0");
        await Refused("--dilate two", "--dilate", "two");
        await Refused("--dilate NaN", "--dilate", "NaN");
        await Refused("--erode 1000", "--erode", "1000");
        await Refused("give one of them", "--dilate", "2", "--erode", "1");
    }
}
