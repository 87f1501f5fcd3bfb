using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg label --split distance` chunk by chunk against the whole image split at once (DistanceWatershed.Split,
/// itself equal to tools/reference/distance_split.py voxel for voxel): the same objects for any chunk shape, worker
/// count and voxel size, objects many chunks wide (distance maps that outgrow the first halo, floods longer than a
/// round) included; a mask thresholded at 1 and probabilities thresholded at 0.5; time series frame by frame.
/// </summary>
public sealed class DistanceSplitPipelineTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A mask of blobs (some touching) from SplitPipelineTests' scene, cut where the blur is bright.</summary>
    private static byte[] Mask(int sz, int sy, int sx, int count, double radius, int seed) =>
        SplitPipelineTests.Blobs(sz, sy, sx, count, radius, seed).Select(v => v > 420 ? (byte)1 : (byte)0).ToArray();

    /// <summary>The whole image split at once, one time point after another, numbered 1, 2, … by first voxel in C order as `label` numbers objects.</summary>
    private static uint[] Whole(byte[] mask, int frames, int sz, int sy, int sx, VoxelSize size, Halo window)
    {
        int n = sz * sy * sx;
        var keys = new ulong[mask.Length];
        for (int t = 0; t < frames; t++)
            DistanceWatershed.Split(mask.AsSpan(t * n, n), sz, sy, sx, (size.Z, size.Y, size.X), window, sz > 1, keys.AsSpan(t * n, n));
        // Keys repeat across time points; a frame's objects are its own.
        var ids = new Dictionary<(int, ulong), uint>();
        return keys.Select((k, i) => k == 0 ? 0u : ids.TryGetValue((i / n, k), out uint id) ? id : ids[(i / n, k)] = (uint)ids.Count + 1).ToArray();
    }

    private string Label(byte[] mask, int frames, int sz, int sy, int sx, VoxelSize size, string chunk, int workers, string name, params string[] options)
    {
        string axes = (frames > 1 ? "t" : "") + (sz > 1 ? "zyx" : "yx");
        long[] shape = [.. (frames > 1 ? new long[] { frames } : []), .. (sz > 1 ? new long[] { sz } : []), sy, sx];
        string input = TestVolumes.WriteZarr(_dir, name + "-in.zarr", axes, shape, DataType.UInt8, mask, size);
        using (var written = VolumeStore.Open(input)) Assert.Equal(size.Y, written.Info.VoxelSize.Y);
        string output = _dir[name + "-out.zarr"];
        var (code, _, err) = Cli.Run(["label", input, output, "--split", "distance", "--threshold", "1", .. options, "--chunk", chunk, "--chunks", chunk,
            "--workers", workers.ToString(CultureInfo.InvariantCulture)]).GetAwaiter().GetResult();
        Assert.True(code == 0, $"{name}: {err}");
        Assert.False(Directory.Exists(output + ".work"), "the workspace is removed after the job commits");
        return output;
    }

    public sealed record Case(int Seed, int Sz, int Sy, int Sx, int Blobs, double Radius, int Window, double SizeZ, double SizeY, int Cz, int Cy, int Cx, int Workers);

    private static Gen<Case> Cases =>
        from seed in Gen.Choose(0, 1 << 20)
        from twoD in Gen.Elements(false, false, true)
        from sz in twoD ? Gen.Constant(1) : Gen.Choose(6, 16)
        from sy in Gen.Choose(12, 30)
        from sx in Gen.Choose(12, 30)
        from blobs in Gen.Choose(2, 8)
        from radius in Gen.Elements(2.0, 3.0, 4.5)
        from window in Gen.Choose(1, 3)
        from sizeZ in Gen.Elements(1.0, 2.0, 3.5)
        from sizeY in Gen.Elements(1.0, 0.65)
        from cz in Gen.Choose(2, sz)
        from cy in Gen.Choose(2, sy)
        from cx in Gen.Choose(2, sx)
        from workers in Gen.Choose(1, 3)
        select new Case(seed, sz, sy, sx, blobs, radius, window, sizeZ, sizeY, twoD ? 1 : cz, cy, cx, workers);

    [Fact]
    public void Chunked_split_equals_the_whole_image_for_any_chunk_shape_worker_count_and_voxel_size()
    {
        int run = 0;
        var property = Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var mask = Mask(c.Sz, c.Sy, c.Sx, c.Blobs, c.Radius, c.Seed);
            var size = new VoxelSize(c.SizeZ, c.SizeY, 0.65);
            string output = Label(mask, 1, c.Sz, c.Sy, c.Sx, size, $"{c.Cz},{c.Cy},{c.Cx}", c.Workers, $"case{run++}",
                "--min-distance", c.Window.ToString(CultureInfo.InvariantCulture));
            var expected = Whole(mask, 1, c.Sz, c.Sy, c.Sx, size, new Halo(c.Sz > 1 ? c.Window : 0, c.Window, c.Window));
            var actual = TestVolumes.ReadUInt32(output);
            int differ = expected.Zip(actual).Count(p => p.First != p.Second);
            Assert.True(differ == 0, $"{c}: {differ} voxels differ from the whole image split at once");
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(10).WithReplay(17, 19), property);
    }

    [Theory]
    [InlineData(1, 120, 128, "1,9,11", 3)]         // 2D discs up to 40 voxels deep: the distance map outgrows its first halo (16)
    [InlineData(24, 44, 48, "5,6,7", 2)]           // 3D, objects many chunks wide, floods many rounds long
    public void Objects_many_chunks_wide_are_split_exactly(int sz, int sy, int sx, string chunk, int workers)
    {
        var mask = new byte[sz * sy * sx];
        // Large overlapping balls (a neck between each pair) and a small one beside them.
        (double Z, double Y, double X, double R)[] balls = sz == 1
            ? [(0, 50, 45, 40), (0, 60, 100, 25), (0, 110, 10, 6)]
            : [(12, 22, 16, 13), (12, 22, 36, 10), (3, 40, 44, 3)];
        for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++)
                    if (balls.Any(b => (z - b.Z) * (z - b.Z) + (y - b.Y) * (y - b.Y) + (x - b.X) * (x - b.X) < b.R * b.R))
                        mask[(z * sy + y) * sx + x] = 1;
        var size = VoxelSize.Isotropic;
        string output = Label(mask, 1, sz, sy, sx, size, chunk, workers, "wide", "--min-distance", "3");
        var expected = Whole(mask, 1, sz, sy, sx, size, new Halo(sz > 1 ? 3 : 0, 3, 3));
        Assert.Equal(3u, expected.Max());
        Assert.Equal(expected, TestVolumes.ReadUInt32(output));
    }

    [Theory]
    [InlineData(1, 3, "1,13,11")]
    [InlineData(8, 2, "4,9,10")]
    public void A_time_series_is_split_frame_by_frame(int sz, int workers, string chunk)
    {
        int frames = 3, sy = 30, sx = 34, n = sz * sy * sx;
        var mask = Enumerable.Range(0, frames).SelectMany(t => Mask(sz, sy, sx, 4 + 2 * t, 3.5, 40 + t)).ToArray();
        var size = new VoxelSize(2, 1, 1);
        string output = Label(mask, frames, sz, sy, sx, size, chunk, workers, "series");
        var expected = Whole(mask, frames, sz, sy, sx, size, new Halo(sz > 1 ? 2 : 0, 2, 2));
        Assert.True(expected.Skip(n).Max() > 0, "every frame holds objects");
        Assert.Equal(expected, TestVolumes.ReadUInt32(output));
    }

    [Fact]
    public async Task Probabilities_thresholded_at_one_half_split_as_their_mask()
    {
        int sz = 12, sy = 32, sx = 36, n = sz * sy * sx;
        var nuclei = SplitPipelineTests.Blobs(sz, sy, sx, 8, 3.5, 5).Select(v => Math.Clamp((v - 200f) / 600f, 0f, 1f)).ToArray();
        string input = TestVolumes.WriteZarr(_dir, "p.zarr", "czyx", [2, sz, sy, sx], DataType.Float32,
            MemoryMarshal.AsBytes(nuclei.Select(p => 1 - p).Concat(nuclei).ToArray().AsSpan()).ToArray());
        string output = _dir["p-out.zarr"];
        var (code, _, err) = await Cli.Run("label", input, output, "--split", "distance", "--channel", "1", "--threshold", "0.5", "--chunk", "5,11,12", "--workers", "2");
        Assert.True(code == 0, err);
        var expected = Whole(nuclei.Select(p => p >= 0.5f ? (byte)1 : (byte)0).ToArray(), 1, sz, sy, sx, VoxelSize.Isotropic, Halo.Uniform(2));
        Assert.True(expected.Max() >= 3, $"several objects expected; {expected.Max()}");
        Assert.Equal(expected, TestVolumes.ReadUInt32(output));
        Assert.Equal(n, expected.Length);
    }

    [Theory]
    [InlineData("--min-distance 2", "--min-distance goes with --split distance")]
    [InlineData("--split distance --threshold 1 --min-distance 0", "--min-distance 0: \"0\" is not a whole number of voxels of at least 1")]
    [InlineData("--split distance --threshold 1 --min-distance 1,2", "--min-distance 1,2: give one value or one per axis (z,y,x)")]
    [InlineData("--split distance --threshold 1 --spot-sigma 2", "--spot-sigma goes with --split voronoi")]
    [InlineData("--split watershed --threshold 1", "--split watershed: the splits available are voronoi")]
    [InlineData("--split distance", "holds uint8 labels; --split distance splits the segmentation of a probability map")]
    public async Task Bad_options_are_refused_with_a_clear_message(string options, string message)
    {
        string input = TestVolumes.WriteZarr(_dir, "bad.zarr", "zyx", [4, 6, 6], DataType.UInt8, new byte[144]);
        var (code, _, err) = await Cli.Run(["label", input, _dir["bad-out.zarr"], .. options.Split(' ')]);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.False(Directory.Exists(_dir["bad-out.zarr"]), "nothing is written");
    }
}
