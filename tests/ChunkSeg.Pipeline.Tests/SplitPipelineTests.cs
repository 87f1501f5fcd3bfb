using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Pipelines;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg label --voronoi-otsu` chunk by chunk against the whole image labelled at once (VoronoiOtsu.Label, itself
/// equal to tools/reference/voronoi_otsu.py voxel for voxel): the same regions, for any chunk shape and worker count,
/// floods many chunks wide included; and time series, every time point split as its own image (2D frames against
/// tools/reference/voronoi_otsu.py, 3D frames against VoronoiOtsu.Label), numbered across time points as `label` does;
/// and `--split voronoi` of segmented probabilities.
/// </summary>
public sealed class SplitPipelineTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Blobs on a noisy background, some touching, as uint16.</summary>
    internal static ushort[] Blobs(int sz, int sy, int sx, int count, double radius, int seed)
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

    // Time series: every time point is its own image (its own Otsu threshold, its own flood and stop), as napari's
    // assistant applies clEsperanto frame by frame, 2D per frame for tyx and 3D per frame for tzyx; the objects are
    // then numbered as `label` numbers a time series: by first voxel in (t, z, y, x) order, ids continuing across t.

    /// <summary>A frame with its brightness changed: offset + gain · value.</summary>
    private static ushort[] Scaled(ushort[] frame, double gain, double offset) =>
        frame.Select(v => (ushort)Math.Clamp(Math.Round(offset + gain * v), 0, 65535)).ToArray();

    /// <summary>
    /// One long noise-free ridge along x (z and y sigma <paramref name="sigmaYz"/>): a single seed in a foreground
    /// that spans most of the frame, so its flood runs many more iterations than a frame of small blobs.
    /// </summary>
    private static ushort[] Ridge(int sz, int sy, int sx, double sigmaYz, double sigmaX)
    {
        double cz = (sz - 1) / 2.0, cy = sy * 0.45, cx = sx * 0.5;
        var image = new ushort[sz * sy * sx];
        for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++)
                {
                    double d = ((z - cz) * (z - cz) + (y - cy) * (y - cy)) / (2 * sigmaYz * sigmaYz) + (x - cx) * (x - cx) / (2 * sigmaX * sigmaX);
                    image[(z * sy + y) * sx + x] = (ushort)Math.Round(100 + 1500 * Math.Exp(-d));
                }
        return image;
    }

    /// <summary>The frames' labels one after the other, each frame's ids moved past the previous frames' (0 stays 0).</summary>
    private static uint[] Series(IEnumerable<uint[]> frames)
    {
        var result = new List<uint>();
        uint offset = 0;
        foreach (var frame in frames)
        {
            result.AddRange(frame.Select(l => l == 0 ? 0 : l + offset));
            offset += frame.Length == 0 ? 0 : frame.Max();
        }
        return [.. result];
    }

    private string RunSeries(ushort[][] frames, string axes, long[] shape, string sigmas, string chunk, int workers, string name, params string[] extra)
    {
        string input = TestVolumes.WriteZarr(_dir, name + "-in.zarr", axes, shape, DataType.UInt16,
            MemoryMarshal.AsBytes(frames.SelectMany(f => f).ToArray().AsSpan()).ToArray());
        string output = _dir[name + "-out.zarr"];
        var (code, _, err) = Cli.Run(["label", input, output, "--voronoi-otsu", sigmas, "--chunk", chunk, "--chunks", chunk,
            "--workers", workers.ToString(CultureInfo.InvariantCulture), .. extra]).GetAwaiter().GetResult();
        Assert.True(code == 0, $"{name}: {err}");
        Assert.False(Directory.Exists(output + ".work"), "the workspace is removed after the job commits");
        return output;
    }

    /// <summary>tools/reference/voronoi_otsu.py (--otsu-trim, ChunkSeg's Otsu) on one 2D frame: labels, threshold, seeds, passes.</summary>
    private (uint[] Labels, double Threshold, int Seeds, int Passes) Reference2D(ushort[] frame, int sy, int sx, string spot, string outline, string name)
    {
        NpyFile.Write(_dir[name + ".npy"], DataType.UInt16, [sy, sx], MemoryMarshal.AsBytes(frame.AsSpan()));
        string json = PythonReference.Run("voronoi_otsu.py", _dir[name + ".npy"], _dir[name + "-labels.npy"], spot, outline, "--otsu-trim");
        var info = System.Text.Json.JsonDocument.Parse(json).RootElement;
        var labels = MemoryMarshal.Cast<byte, uint>(NpyFile.Read(_dir[name + "-labels.npy"]).Data).ToArray();
        return (labels, info.GetProperty("threshold").GetDouble(), info.GetProperty("seeds").GetInt32(), info.GetProperty("iterations").GetInt32());
    }

    private static void AssertFrames(uint[] expected, uint[] actual, int frames, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int n = expected.Length / frames;
        var differ = Enumerable.Range(0, frames).Select(t => Enumerable.Range(t * n, n).Count(i => expected[i] != actual[i])).ToArray();
        Assert.True(differ.All(d => d == 0), $"{what}: voxels that differ per time point: {string.Join(", ", differ)}");
    }

    [Theory]
    [InlineData(9, 11, 2)]      // rounds of 8 iterations; frames cut into 5 x 6 chunks
    [InlineData(16, 20, 3)]     // rounds of 16
    [InlineData(7, 64, 1)]      // rows of chunks, rounds of 6
    public void A_2D_time_series_is_split_frame_by_frame_as_the_reference_splits_each_frame(int cy, int cx, int workers)
    {
        const int st = 4, sy = 40, sx = 64;
        var frames = new[]
        {
            Blobs(1, sy, sx, 9, 3.0, seed: 21),
            Scaled(Blobs(1, sy, sx, 7, 3.5, seed: 22), 0.2, 0),         // dim
            Ridge(1, sy, sx, 3, 20),                                    // one seed, a long flood
            Scaled(Blobs(1, sy, sx, 10, 2.5, seed: 23), 3, 500),        // bright
        };
        var reference = frames.Select((f, t) => Reference2D(f, sy, sx, "2", "1", $"frame{t}")).ToList();

        // The case: each frame needs its own threshold (one threshold for all would empty the dim frame or fill the
        // bright one), and the ridge's flood stops rounds after the others' (the reference counts the pass that
        // changed nothing: passes − 1 is the stopping iteration, in round (passes − 1) / K).
        Assert.True(reference.Select(r => r.Threshold).Distinct().Count() == st, "every frame has its own Otsu threshold");
        Assert.True(frames[1].Max() < reference[3].Threshold && frames[3].Min() > reference[1].Threshold,
            $"the dim frame (max {frames[1].Max()}, cut {reference[1].Threshold}) and the bright one (min {frames[3].Min()}, cut {reference[3].Threshold}) cannot share a threshold");
        Assert.Equal(1, reference[2].Seeds);
        int k = SplitJob.RoundIterations(new Long3(1, cy, cx), threeD: false);
        int ridgeRound = (reference[2].Passes - 1) / k;
        for (int t = 0; t < st; t++)
        {
            if (t == 2) continue;
            Assert.True(reference[t].Labels.Max() >= 3, $"frame {t} should hold several objects; it holds {reference[t].Labels.Max()}");
            Assert.True((reference[t].Passes - 1) / k < ridgeRound, $"frame {t}'s flood ({reference[t].Passes} passes) should stop rounds before the ridge's ({reference[2].Passes})");
        }

        string output = RunSeries(frames, "tyx", [st, sy, sx], "2,1", $"1,{cy},{cx}", workers, $"tyx-{cy}-{cx}");
        var expected = Series(reference.Select(r => FirstVoxelOrder(r.Labels)));
        AssertFrames(expected, TestVolumes.ReadUInt32(output), st, $"tyx, chunks 1,{cy},{cx}");
    }

    [Theory]
    [InlineData(3, 7, 8, 2)]        // rounds of 2 iterations
    [InlineData(8, 9, 10, 1)]       // whole z, rounds of 8
    public void A_3D_time_series_is_split_volume_by_volume_as_each_volume_alone(int cz, int cy, int cx, int workers)
    {
        const int st = 4, sz = 8, sy = 18, sx = 20;
        var frames = new[]
        {
            Blobs(sz, sy, sx, 6, 2.5, seed: 31),
            Scaled(Blobs(sz, sy, sx, 5, 3.0, seed: 32), 0.25, 0),
            Ridge(sz, sy, sx, 2, 7),
            Scaled(Blobs(sz, sy, sx, 7, 2.5, seed: 33), 2.5, 300),
        };
        var expected = frames.Select(f => Whole(f, sz, sy, sx, 1.5, 1)).ToList();
        Assert.All(expected, e => Assert.True(e.Max() >= 1, "every volume holds objects"));
        Assert.True(expected.Count(e => e.Max() >= 2) >= 3, "the blob volumes hold several objects");

        string output = RunSeries(frames, "tzyx", [st, sz, sy, sx], "1.5,1", $"{cz},{cy},{cx}", workers, $"tzyx-{cz}-{cy}-{cx}");
        AssertFrames(Series(expected), TestVolumes.ReadUInt32(output), st, $"tzyx, chunks {cz},{cy},{cx}");
    }

    /// <summary>
    /// A disk with a chain of pixels leaving it diagonally (each touching the next only at a corner), flat values on
    /// a flat background: with an outline sigma below 0.25 (one tap, no blur) the foreground is the drawing itself,
    /// and clEsperanto's flood stops at the first diamond pass that labels nothing, leaving the chain unreached but
    /// for its first pixel; a flood that ran on would take one more chain pixel every box pass.
    /// </summary>
    private static ushort[] DiagonalChain(int sy, int sx)
    {
        var image = Enumerable.Repeat((ushort)100, sy * sx).ToArray();
        const int cy = 14, cx = 20;
        for (int y = 0; y < sy; y++)
            for (int x = 0; x < sx; x++)
                if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= 24 || (y - 12) * (y - 12) + (x - 48) * (x - 48) <= 20) image[y * sx + x] = 1000;
        for (int k = 4; k < 14; k++) image[(cy + k) * sx + cx + k] = 1000;
        return image;
    }

    [Theory]
    [InlineData(9, 11, 2)]      // rounds of 8 iterations
    [InlineData(5, 6, 1)]       // rounds of 4
    public void Each_time_point_stops_its_flood_at_its_own_first_pass_that_changes_nothing(int cy, int cx, int workers)
    {
        const int st = 3, sy = 40, sx = 64;
        var frames = new[] { DiagonalChain(sy, sx), Ridge(1, sy, sx, 3, 20), DiagonalChain(sy, sx).Reverse().ToArray() };
        var reference = frames.Select((f, t) => Reference2D(f, sy, sx, "2", "0.2", $"stop{t}")).ToList();

        // The case: the chain frames stop with foreground left unreached, rounds before the ridge stops.
        int k = SplitJob.RoundIterations(new Long3(1, cy, cx), threeD: false);
        foreach (int t in new[] { 0, 2 })
        {
            int foreground = frames[t].Count(v => v > reference[t].Threshold), reached = reference[t].Labels.Count(l => l != 0);
            Assert.True(foreground - reached >= 8, $"frame {t}: the chain should stay unreached; {reached} of {foreground} foreground pixels are labelled");
            Assert.True((reference[t].Passes - 1) / k < (reference[1].Passes - 1) / k,
                $"frame {t}'s flood ({reference[t].Passes} passes) should stop rounds before the ridge's ({reference[1].Passes})");
        }

        string output = RunSeries(frames, "tyx", [st, sy, sx], "2,0.2", $"1,{cy},{cx}", workers, $"stop-{cy}-{cx}");
        AssertFrames(Series(reference.Select(r => FirstVoxelOrder(r.Labels))), TestVolumes.ReadUInt32(output), st, $"own stops, chunks 1,{cy},{cx}");
    }

    [Fact]
    public void Objects_of_a_time_series_are_numbered_across_time_points_as_label_numbers_them()
    {
        // An empty time point first (a constant frame: no objects), then two of blobs; --min-size drops the small
        // objects of every time point and the ids stay 1, 2, … by first voxel in (t, y, x) order.
        const int st = 3, sy = 30, sx = 36, minSize = 40;
        var frames = new[]
        {
            Enumerable.Repeat((ushort)300, sy * sx).ToArray(),
            Blobs(1, sy, sx, 8, 2.5, seed: 41),
            Scaled(Blobs(1, sy, sx, 9, 2.0, seed: 42), 0.5, 20),
        };
        var perFrame = frames.Select(f => Whole(f, 1, sy, sx, 1.5, 1)).ToList();
        var kept = perFrame.Select(labels =>
        {
            var sizes = labels.Where(l => l != 0).GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
            var ids = new Dictionary<uint, uint>();
            foreach (uint l in sizes.Keys.Order()) if (sizes[l] >= minSize) ids[l] = (uint)ids.Count + 1;
            return labels.Select(l => ids.TryGetValue(l, out uint id) ? id : 0u).ToArray();
        }).ToList();
        Assert.Equal(0u, perFrame[0].Max());
        Assert.True(Enumerable.Range(1, 2).All(t => perFrame[t].Max() > kept[t].Max()), "the filter drops objects in both frames: sizes " + string.Join(" | ", perFrame.Select(f => string.Join(",", f.Where(l => l != 0).GroupBy(l => l).OrderBy(g => g.Key).Select(g => g.Count())))));
        Assert.True(kept.Skip(1).All(k => k.Max() >= 2), "both frames keep several objects");

        string objects = _dir["series-objects.csv"];
        string output = RunSeries(frames, "tyx", [st, sy, sx], "1.5,1", "1,11,13", 2, "series",
            "--min-size", minSize.ToString(CultureInfo.InvariantCulture), "--objects", objects);
        var expected = Series(kept);
        AssertFrames(expected, TestVolumes.ReadUInt32(output), st, "numbered series");

        // The table: one row per object, in id order, with its time point and size.
        var rows = File.ReadAllLines(objects);
        Assert.StartsWith("id,t,voxels,", rows[0]);
        int n = sy * sx;
        var want = expected.Select((id, i) => (Id: id, T: i / n)).Where(v => v.Id != 0).GroupBy(v => v.Id).OrderBy(g => g.Key)
            .Select(g => $"{g.Key},{g.First().T},{g.Count()}").ToList();
        Assert.Equal(want, rows.Skip(1).Select(r => string.Join(',', r.Split(',').Take(3))).ToList());
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
