using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Storage;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg label` chunk by chunk against the whole volume: the same labels, the same numbering, for any chunk
/// shape, worker count and connectivity; and against scipy.ndimage.label and scikit-image's regionprops.
/// </summary>
public sealed class LabelPipelineTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public sealed record Case(int Seed, int Sz, int Sy, int Sx, double Density, int Cz, int Cy, int Cx, int Connectivity, int Workers, long MinSize, bool ExcludeBorder);

    private static Gen<Case> Cases =>
        from seed in Gen.Choose(0, 1 << 20)
        from twoD in Gen.Elements(false, false, false, true)
        from sz in twoD ? Gen.Constant(1) : Gen.Choose(2, 18)
        from sy in Gen.Choose(2, 26)
        from sx in Gen.Choose(2, 26)
        from density in Gen.Elements(0.08, 0.25, 0.35, 0.5, 0.75)
        from cz in Gen.Choose(1, sz)
        from cy in Gen.Choose(1, sy)
        from cx in Gen.Choose(1, sx)
        from connectivity in Gen.Elements(6, 26)
        from workers in Gen.Choose(1, 3)
        from minSize in Gen.Elements(0L, 0L, 3L, 12L)
        from excludeBorder in Gen.Elements(false, false, true)
        select new Case(seed, sz, sy, sx, density, cz, cy, cx, connectivity, workers, minSize, excludeBorder);

    [Fact]
    public void Chunked_labels_equal_the_whole_volume_for_any_chunk_shape_connectivity_and_worker_count()
    {
        int run = 0;
        var property = Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var mask = RandomMask(c.Sz * c.Sy * c.Sx, c.Density, c.Seed);
            bool twoD = c.Sz == 1;
            string input = TestVolumes.WriteZarr(_dir, $"in{run}.zarr", twoD ? "yx" : "zyx", twoD ? [c.Sy, c.Sx] : [c.Sz, c.Sy, c.Sx], DataType.UInt8, mask);
            string output = _dir[$"out{run++}.zarr"];
            string chunk = $"{c.Cz},{c.Cy},{c.Cx}";
            var args = new List<string> { "label", input, output, "--chunk", chunk, "--chunks", chunk, "--workers", c.Workers.ToString(CultureInfo.InvariantCulture),
                "--connectivity", (twoD ? (c.Connectivity == 6 ? 4 : 8) : c.Connectivity).ToString(CultureInfo.InvariantCulture) };
            if (c.MinSize > 0) args.AddRange(["--min-size", c.MinSize.ToString(CultureInfo.InvariantCulture)]);
            if (c.ExcludeBorder) args.Add("--exclude-border");
            var (code, _, err) = Cli.Run([.. args]).GetAwaiter().GetResult();
            Assert.True(code == 0, $"{c}: {err}");

            var expected = WholeVolume(mask, c.Sz, c.Sy, c.Sx, (Connectivity)c.Connectivity, c.MinSize, c.ExcludeBorder, twoD);
            var actual = TestVolumes.ReadUInt32(output);
            for (int i = 0; i < expected.Length; i++)
                if (expected[i] != actual[i]) Assert.Fail($"{c}: voxel {i} is {actual[i]}, whole-volume labelling gives {expected[i]}");
            Assert.False(Directory.Exists(output + ".work"), "the workspace is removed after the job commits");
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(40).WithReplay(1, 3), property);
    }

    [Theory]
    [InlineData(6, true)]
    [InlineData(26, true)]
    [InlineData(6, false)]
    [InlineData(26, false)]
    public async Task Percolating_volume_labels_and_object_table_equal_scipy_and_scikit_image(int connectivity, bool filters)
    {
        string[] filterArgs = filters ? ["--min-size", "2", "--max-size", "5000", "--exclude-border"] : [];
        const int sz = 40, sy = 36, sx = 44;
        // Just above the percolation threshold (0.31 for 6, 0.10 for 26 neighbours): one component spans every chunk.
        var mask = RandomMask(sz * sy * sx, connectivity == 6 ? 0.34 : 0.12, seed: connectivity);
        var rng = new Random(5);
        var intensity = new float[mask.Length];
        for (int i = 0; i < intensity.Length; i++) intensity[i] = (float)(rng.NextDouble() * 100);
        string input = TestVolumes.WriteZarr(_dir, "in.zarr", "zyx", [sz, sy, sx], DataType.UInt8, mask);
        string intensityPath = TestVolumes.WriteZarr(_dir, "intensity.zarr", "zyx", [sz, sy, sx], DataType.Float32, MemoryMarshal.AsBytes(intensity.AsSpan()).ToArray());
        NpyFile.Write(_dir["in.npy"], DataType.UInt8, [sz, sy, sx], mask);
        NpyFile.Write(_dir["intensity.npy"], DataType.Float32, [sz, sy, sx], MemoryMarshal.AsBytes(intensity.AsSpan()));
        string reference = Directory.CreateDirectory(_dir["reference"]).FullName;
        PythonReference.Run("label_reference.py", ["label", _dir["in.npy"], reference, connectivity == 6 ? "1" : "3",
            .. (filters ? new[] { "--min", "2", "--max", "5000", "--exclude-border" } : []), "--intensity", _dir["intensity.npy"]]);

        var (code, stdout, err) = await Cli.Run(["label", input, _dir["out.zarr"], "--chunk", "16,12,20", "--chunks", "16,12,20", "--connectivity",
            connectivity.ToString(CultureInfo.InvariantCulture), .. filterArgs, "--intensity", intensityPath, "--objects", _dir["objects.csv"]]);
        Assert.True(code == 0, err);
        Assert.Contains("reached a shared chunk face", stdout);
        var expected = NpyFile.Read(Path.Combine(reference, "labels.npy"));
        TestArrays.AssertEqual(DataType.UInt32, expected.Data, MemoryMarshal.AsBytes(TestVolumes.ReadUInt32(_dir["out.zarr"]).AsSpan()), [sz, sy, sx], $"{connectivity}-connected");

        // The table: scikit-image's regionprops gives label, area, centroid (3), bbox (6), mean_intensity per row.
        var ours = File.ReadAllLines(_dir["objects.csv"]);
        var theirs = File.ReadAllLines(Path.Combine(reference, "objects.csv"));
        Assert.Equal("id,voxels,volume_um3,centroid_z,centroid_y,centroid_x,centroid_z_um,centroid_y_um,centroid_x_um," +
            "bbox_z0,bbox_y0,bbox_x0,bbox_z1,bbox_y1,bbox_x1,bbox_z0_um,bbox_y0_um,bbox_x0_um,bbox_z1_um,bbox_y1_um,bbox_x1_um,mean_intensity", ours[0]);
        Assert.Equal(theirs.Length, ours.Length - 1);
        Assert.True(theirs.Length > 20, $"only {theirs.Length} objects: the case is too easy");
        for (int r = 0; r < theirs.Length; r++)
        {
            double[] o = ours[r + 1].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            double[] t = theirs[r].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(t[0], o[0]);                                            // id
            Assert.Equal(t[1], o[1]);                                            // voxels
            for (int k = 0; k < 3; k++) Assert.Equal(t[2 + k], o[3 + k], 1e-9);  // centroid
            for (int k = 0; k < 6; k++) Assert.Equal(t[5 + k], o[9 + k]);        // bbox, half-open
            Assert.Equal(t[11], o[21], Math.Abs(t[11]) * 1e-5);                  // mean intensity (float32 sums)
        }
    }



    /// <summary>The oracle: the block labeller (itself equal to scipy) on the whole volume, then the filters and a renumbering.</summary>
    internal static uint[] WholeVolume(byte[] mask, int sz, int sy, int sx, Connectivity connectivity, long minSize, bool excludeBorder, bool twoD)
    {
        using var runs = ConnectedComponents.Label<byte>(mask, sz, sy, sx, connectivity);
        var labels = new uint[mask.Length];
        runs.WriteLabels(labels);
        var size = new long[runs.Components + 1];
        var border = new bool[runs.Components + 1];
        for (int z = 0; z < sz; z++)
        for (int y = 0; y < sy; y++)
        for (int x = 0; x < sx; x++)
        {
            uint l = labels[(z * sy + y) * sx + x];
            size[l]++;
            border[l] |= (!twoD && (z == 0 || z == sz - 1)) || y == 0 || y == sy - 1 || x == 0 || x == sx - 1;
        }
        var id = new uint[runs.Components + 1];
        uint next = 0;
        for (int l = 1; l <= runs.Components; l++)
            if (size[l] >= minSize && !(excludeBorder && border[l])) id[l] = ++next;
        for (int i = 0; i < labels.Length; i++) labels[i] = id[labels[i]];
        return labels;
    }

    internal static byte[] RandomMask(int count, double density, int seed)
    {
        var rng = new Random(seed);
        var mask = new byte[count];
        for (int i = 0; i < count; i++) mask[i] = rng.NextDouble() < density ? (byte)1 : (byte)0;
        return mask;
    }
}

/// <summary>The storage-free chunked path `chunkseg bench label` measures gives the whole-volume labels too.</summary>
public sealed class LabelBenchTests
{
    [Theory]
    [InlineData(6, 7)]
    [InlineData(26, 16)]
    public void Chunked_in_memory_equals_the_whole_volume(int connectivity, int edge)
    {
        const int n = 37;
        var mask = LabelPipelineTests.RandomMask(n * n * n, connectivity == 6 ? 0.33 : 0.11, seed: edge);
        var labels = new uint[mask.Length];
        ChunkSeg.Cli.Bench.LabelBench.ChunkedInMemory(mask, n, edge, (Connectivity)connectivity, 2, labels);
        Assert.Equal(LabelPipelineTests.WholeVolume(mask, n, n, n, (Connectivity)connectivity, 0, false, false), labels);
    }

    [Fact]
    public void Merge_simulation_finds_every_synthetic_object()
    {
        var result = ChunkSeg.Cli.Bench.LabelBench.SimulateMerge(1000, 20_000);
        Assert.Equal(20_000, result.Sets);
        Assert.True(result.Pieces > 40_000 && result.Equivalences == result.Pieces - 20_000, $"{result}");
    }
}
