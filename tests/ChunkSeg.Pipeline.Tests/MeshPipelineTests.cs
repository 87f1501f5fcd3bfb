using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ChunkSeg.Contracts.Volumes;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg mesh`: the welded mesh of any chunking is the whole volume's mesh (the very same file), surfaces are
/// closed and manifold with the Euler characteristic of their shape, and they agree with scikit-image's
/// marching_cubes and with analytic spheres; meshio (an independent reader) loads the files.
/// </summary>
public sealed class MeshPipelineTests : IDisposable
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public sealed record Case(int Seed, int Sz, int Sy, int Sx, int Cz, int Cy, int Cx, int Workers, string Kind, bool Normals, bool Ply);

    private static Gen<Case> Cases =>
        from seed in Gen.Choose(0, 1 << 20)
        from sz in Gen.Choose(2, 14)
        from sy in Gen.Choose(2, 20)
        from sx in Gen.Choose(2, 20)
        from cz in Gen.Choose(1, sz)
        from cy in Gen.Choose(1, sy)
        from cx in Gen.Choose(1, sx)
        from workers in Gen.Choose(1, 3)
        from kind in Gen.Elements("iso", "iso-smooth", "foreground", "foreground-smooth", "per-label")
        from normals in Gen.Elements(false, true)
        from ply in Gen.Elements(false, false, true)
        select new Case(seed, sz, sy, sx, cz, cy, cx, workers, kind, normals, ply);

    [Fact]
    public void Chunked_meshes_are_the_whole_volumes_mesh_byte_for_byte_for_any_chunk_shape_and_worker_count()
    {
        int run = 0;
        var property = Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var rng = new Random(c.Seed);
            bool scalar = c.Kind.StartsWith("iso", StringComparison.Ordinal);
            // The Gaussian (radius 2 at sigma 0.8) needs 3 voxels along each axis.
            string kind = c.Kind.EndsWith("smooth", StringComparison.Ordinal) && Math.Min(c.Sz, Math.Min(c.Sy, c.Sx)) < 3 ? c.Kind[..^7] : c.Kind;
            long[] shape = [c.Sz, c.Sy, c.Sx];
            long n = c.Sz * c.Sy * c.Sx;
            byte[] data = scalar
                ? MemoryMarshal.AsBytes(Enumerable.Range(0, (int)n).Select(_ => (float)rng.NextDouble()).ToArray().AsSpan()).ToArray()
                : MemoryMarshal.AsBytes(Enumerable.Range(0, (int)n).Select(_ => (ushort)(rng.NextDouble() < 0.4 ? 0 : rng.Next(1, 4))).ToArray().AsSpan()).ToArray();
            string input = TestVolumes.WriteZarr(_dir, $"in{run}.zarr", "zyx", shape, scalar ? DataType.Float32 : DataType.UInt16, data);
            string ext = c.Ply ? "ply" : "obj";
            var options = new List<string> { "--voxel-size", "2,0.5,0.25" };
            if (kind.EndsWith("smooth", StringComparison.Ordinal)) options.AddRange(["--smooth-sigma", "0.8"]);
            if (kind == "per-label") options.Add("--per-label");
            if (c.Normals) options.Add("--normals");
            string whole = Mesh(input, _dir[$"whole{run}.{ext}"], $"{c.Sz},{c.Sy},{c.Sx}", 1, options);
            string chunked = Mesh(input, _dir[$"chunked{run}.{ext}"], $"{c.Cz},{c.Cy},{c.Cx}", c.Workers, options);
            run++;
            Assert.True(File.ReadAllBytes(whole).AsSpan().SequenceEqual(File.ReadAllBytes(chunked)), $"{c}: the chunked mesh differs from the whole volume's");
            Assert.False(Directory.Exists(chunked + ".work"), "the workspace is removed after the mesh is written");
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(30).WithReplay(1, 5), property);
    }

    private static string Mesh(string input, string output, string chunk, int workers, IEnumerable<string> options)
    {
        var (code, _, err) = Cli.Run(["mesh", input, output, "--chunk", chunk, "--workers", workers.ToString(Invariant), .. options]).GetAwaiter().GetResult();
        Assert.True(code == 0, err);
        return output;
    }

    /// <summary>A signed distance field in micrometers on an anisotropic grid: positive inside.</summary>
    private static float[] Field(long[] shape, double[] spacing, Func<double, double, double, double> inside)
    {
        var v = new float[shape[0] * shape[1] * shape[2]];
        int i = 0;
        for (long z = 0; z < shape[0]; z++)
        for (long y = 0; y < shape[1]; y++)
        for (long x = 0; x < shape[2]; x++)
            v[i++] = (float)inside(z * spacing[0], y * spacing[1], x * spacing[2]);
        return v;
    }

    private static JsonElement Topology(string mesh) => JsonDocument.Parse(PythonReference.Run("mesh_reference.py", "check", mesh)).RootElement;

    private static void AssertClosedManifold(JsonElement o, int euler, string what)
    {
        foreach (var key in new[] { "border_edges", "nonmanifold_edges", "misoriented_edges", "duplicate_positions", "degenerate_triangles" })
            Assert.True(o.GetProperty(key).GetInt32() == 0, $"{what}: {key} = {o.GetProperty(key).GetInt32()}");
        Assert.Equal(euler, o.GetProperty("euler").GetInt32());
    }

    [Theory]
    [InlineData("obj")]
    [InlineData("ply")]
    public async Task Anisotropic_sphere_is_closed_with_the_analytic_area_and_volume_and_matches_scikit_image(string ext)
    {
        // Sphere of radius 20 µm on voxels of 2 x 0.5 x 0.6 µm (z, y, x); field = R − distance, surface at 0.
        double[] spacing = [2.0, 0.5, 0.6];
        long[] shape = [26, 96, 80];
        const double r = 20, cz = 25.3, cy = 23.9, cx = 24.1;
        var field = Field(shape, spacing, (z, y, x) => r - Math.Sqrt((z - cz) * (z - cz) + (y - cy) * (y - cy) + (x - cx) * (x - cx)));
        string input = TestVolumes.WriteZarr(_dir, "sphere.zarr", "zyx", shape, DataType.Float32, MemoryMarshal.AsBytes(field.AsSpan()).ToArray());
        string mesh = _dir[$"sphere.{ext}"];
        var (code, stdout, err) = (await Cli.Run("mesh", input, mesh, "--isovalue", "0", "--voxel-size", "2,0.5,0.6", "--chunk", "7,30,33", "--normals"));
        Assert.True(code == 0, err);

        var report = Topology(mesh);
        var sphere = Assert.Single(report.GetProperty("objects").EnumerateArray());
        AssertClosedManifold(sphere, euler: 2, "sphere");
        Assert.Contains($"{sphere.GetProperty("vertices").GetInt32():N0} vertices, {sphere.GetProperty("triangles").GetInt32():N0} triangles", stdout);
        double area = sphere.GetProperty("area").GetDouble(), volume = sphere.GetProperty("volume").GetDouble();
        Assert.InRange(area / (4 * Math.PI * r * r), 0.99, 1.01);
        Assert.InRange(volume / (4.0 / 3 * Math.PI * r * r * r), 0.99, 1.01);

        string npy = _dir["sphere.npy"];
        NpyFile.Write(npy, DataType.Float32, shape, MemoryMarshal.AsBytes(field.AsSpan()));
        var compare = JsonDocument.Parse(PythonReference.Run("mesh_reference.py", "compare", mesh, npy, "{\"spacing\": [2.0, 0.5, 0.6], \"level\": 0.0}")).RootElement;
        var c = Assert.Single(compare.EnumerateArray());
        Assert.InRange(area / c.GetProperty("skimage_area").GetDouble(), 0.99, 1.01);
        Assert.InRange(volume / c.GetProperty("skimage_volume").GetDouble(), 0.99, 1.01);
        Assert.True(c.GetProperty("hausdorff").GetDouble() <= 0.5 * 0.5, $"Hausdorff distance to skimage {c.GetProperty("hausdorff").GetDouble()} µm exceeds half the smallest voxel");
    }

    [Fact]
    public async Task Torus_has_euler_characteristic_zero_and_the_analytic_area_and_volume_in_either_axis_order()
    {
        long[] shape = [20, 60, 60];
        var field = Field(shape, [1, 1, 1], (z, y, x) =>
        {
            double ring = Math.Sqrt((y - 29.5) * (y - 29.5) + (x - 29.7) * (x - 29.7)) - 18;
            return 6 - Math.Sqrt(ring * ring + (z - 9.6) * (z - 9.6));
        });
        string input = TestVolumes.WriteZarr(_dir, "torus.zarr", "zyx", shape, DataType.Float32, MemoryMarshal.AsBytes(field.AsSpan()).ToArray());
        string mesh = _dir["torus.obj"];
        var (code, _, err) = (await Cli.Run("mesh", input, mesh, "--isovalue", "0", "--chunk", "8,16,16"));
        Assert.True(code == 0, err);
        var torus = Assert.Single(Topology(mesh).GetProperty("objects").EnumerateArray());
        AssertClosedManifold(torus, euler: 0, "torus");
        Assert.Equal(1, torus.GetProperty("components").GetInt32());
        Assert.InRange(torus.GetProperty("area").GetDouble() / (4 * Math.PI * Math.PI * 18 * 6), 0.99, 1.01);
        Assert.InRange(torus.GetProperty("volume").GetDouble() / (2 * Math.PI * Math.PI * 18 * 6 * 6), 0.99, 1.01);

        // Array order (z y x) mirrors the frame; the winding follows, so the enclosed volume stays positive.
        string mirrored = _dir["torus-zyx.obj"];
        Assert.Equal(0, (await Cli.Run("mesh", input, mirrored, "--isovalue", "0", "--axis-order", "zyx", "--normals")).Code);
        var zyx = Assert.Single(Topology(mirrored).GetProperty("objects").EnumerateArray());
        Assert.Equal(torus.GetProperty("volume").GetDouble(), zyx.GetProperty("volume").GetDouble(), 6);
    }

    /// <summary>
    /// Platynereis nuclei (ground truth labels): one closed surface per label, each against skimage's
    /// marching_cubes(labels == id, 0.5): area and volume within 1%, symmetric Hausdorff distance at most 0.5
    /// voxel, and the same topology (Euler characteristic) but where skimage cuts a case-7 tunnel, which the
    /// table does not (see MarchingCubesTable): label 37 has one, and there the two surfaces are 0.5 voxel apart.
    /// </summary>
    [Fact]
    public async Task Platynereis_label_surfaces_match_scikit_image_per_object()
    {
        string labels = SharedData.Require("platynereis/nuclei_gt.h5");
        string mesh = _dir["nuclei.obj"];
        var (code, stdout, err) = (await Cli.Run("mesh", labels + "/labels", mesh, "--per-label", "--chunk", "20,50,70"));
        Assert.True(code == 0, err);
        Assert.Contains("36 objects", stdout);

        var objects = Topology(mesh).GetProperty("objects").EnumerateArray().ToList();
        Assert.Equal(36, objects.Count);
        foreach (var o in objects)
        {
            Assert.Equal(0, o.GetProperty("nonmanifold_edges").GetInt32());
            Assert.Equal(0, o.GetProperty("misoriented_edges").GetInt32());
            Assert.Equal(0, o.GetProperty("duplicate_positions").GetInt32());
        }
        Assert.True(objects.Count(o => o.GetProperty("border_edges").GetInt32() == 0) >= 25, "most nuclei lie inside the volume: closed");

        string npy = _dir["nuclei.npy"];
        PythonReference.Run("mesh_reference.py", "npy", labels, "labels", npy);
        var compare = JsonDocument.Parse(PythonReference.Run("mesh_reference.py", "compare", mesh, npy, "{\"spacing\": [1, 1, 1], \"per_label\": true}")).RootElement;
        var otherTopology = new List<int>();
        foreach (var o in compare.EnumerateArray())
        {
            int label = o.GetProperty("label").GetInt32();
            string what = $"label {label}";
            Assert.True(Math.Abs(o.GetProperty("area").GetDouble() / o.GetProperty("skimage_area").GetDouble() - 1) <= 0.01, $"{what}: area");
            if (o.GetProperty("closed").GetBoolean())   // an open surface (cut by the border) encloses nothing
                Assert.True(Math.Abs(o.GetProperty("volume").GetDouble() / o.GetProperty("skimage_volume").GetDouble() - 1) <= 0.01, $"{what}: volume");
            // 0.5 exactly (binary fractions) in a case-7 cell; the slack is for rounding only.
            Assert.True(o.GetProperty("hausdorff").GetDouble() <= 0.5 + 1e-9, $"{what}: Hausdorff {o.GetProperty("hausdorff").GetDouble()}");
            if (o.GetProperty("euler").GetInt32() != o.GetProperty("skimage_euler").GetInt32()) otherTopology.Add(label);
        }
        Assert.Equal([37], otherTopology);
    }

    [Fact]
    public async Task Smoothed_and_decimated_label_surfaces_stay_closed_and_manifold()
    {
        string labels = SharedData.Require("platynereis/nuclei_gt.h5");
        string plain = _dir["plain.obj"], finished = _dir["finished.obj"];
        Assert.Equal(0, (await Cli.Run("mesh", labels + "/labels", plain, "--per-label")).Code);
        var (code, _, err) = (await Cli.Run("mesh", labels + "/labels", finished, "--per-label", "--taubin", "10", "--decimate", "0.25", "--chunk", "40,90,90"));
        Assert.True(code == 0, err);
        var before = Topology(plain).GetProperty("objects").EnumerateArray().ToList();
        var after = Topology(finished).GetProperty("objects").EnumerateArray().ToList();
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            var (b, a) = (before[i], after[i]);
            Assert.Equal(0, a.GetProperty("nonmanifold_edges").GetInt32());
            Assert.Equal(0, a.GetProperty("misoriented_edges").GetInt32());
            Assert.Equal(b.GetProperty("euler").GetInt32(), a.GetProperty("euler").GetInt32());
            Assert.Equal(b.GetProperty("components").GetInt32(), a.GetProperty("components").GetInt32());
            Assert.Equal(b.GetProperty("border_edges").GetInt32() > 0, a.GetProperty("border_edges").GetInt32() > 0);
            if (b.GetProperty("border_edges").GetInt32() > 0) continue;
            Assert.InRange(a.GetProperty("triangles").GetDouble() / b.GetProperty("triangles").GetDouble(), 0.2, 0.3);
            Assert.InRange(a.GetProperty("volume").GetDouble() / b.GetProperty("volume").GetDouble(), 0.95, 1.05);
        }
    }

    [Fact]
    public async Task Bad_input_is_refused_with_a_clear_message_and_nothing_written()
    {
        var labels = new ushort[4 * 5 * 6];
        labels[40] = 1;
        string input = TestVolumes.WriteZarr(_dir, "small.zarr", "zyx", [4, 5, 6], DataType.UInt16, MemoryMarshal.AsBytes(labels.AsSpan()).ToArray());
        string flat = TestVolumes.WriteZarr(_dir, "flat.zarr", "yx", [5, 6], DataType.UInt16, new byte[60]);
        await Cli.Expect(2, "must end in .obj or .ply", "mesh", input, _dir["out.stl"]);
        await Cli.Expect(2, "needs a 3D volume", "mesh", flat, _dir["out.obj"]);
        await Cli.Expect(2, "--channel", "mesh", input, _dir["out.obj"], "--channel", "1");
        await Cli.Expect(2, "--decimate", "mesh", input, _dir["out.obj"], "--decimate", "1.5");
        await Cli.Expect(2, "--axis-order", "mesh", input, _dir["out.obj"], "--axis-order", "yxz");
        await Cli.Expect(2, "--per-label meshes each label", "mesh", input, _dir["out.obj"], "--per-label", "--smooth-sigma", "1");
        await Cli.Expect(2, "needs at least", "mesh", input, _dir["out.obj"], "--smooth-sigma", "3");
        Assert.False(File.Exists(_dir["out.obj"]));
        Assert.Equal(0, (await Cli.Run("mesh", input, _dir["out.obj"])).Code);
        await Cli.Expect(2, "already exists", "mesh", input, _dir["out.obj"]);
        Assert.Equal(0, (await Cli.Run("mesh", input, _dir["out.obj"], "--overwrite", "--axis-order", "zyx")).Code);
        // The one voxel is at z = 1, y = 1, x = 4: in zyx order every vertex is within half a voxel of (1, 1, 4).
        foreach (var line in File.ReadLines(_dir["out.obj"]).Where(l => l.StartsWith("v ", StringComparison.Ordinal)))
        {
            var v = line.Split(' ').Skip(1).Select(t => double.Parse(t, Invariant)).ToArray();
            Assert.True(Math.Abs(v[0] - 1) <= 0.5 && Math.Abs(v[1] - 1) <= 0.5 && Math.Abs(v[2] - 4) <= 0.5, line);
        }
    }

    [Fact]
    public async Task An_interrupted_mesh_resumes_from_the_pieces_already_written()
    {
        var rng = new Random(3);
        var labels = Enumerable.Range(0, 12 * 14 * 16).Select(_ => (ushort)(rng.NextDouble() < 0.5 ? 0 : 1)).ToArray();
        string input = TestVolumes.WriteZarr(_dir, "resume.zarr", "zyx", [12, 14, 16], DataType.UInt16, MemoryMarshal.AsBytes(labels.AsSpan()).ToArray());
        string reference = _dir["reference.obj"], output = _dir["resumed.obj"];
        Assert.Equal(0, (await Cli.Run("mesh", input, reference, "--chunk", "4,5,6")).Code);
        // A run that stopped after its pieces: the workspace is there, the mesh file is not.
        Assert.Equal(0, (await Cli.Run("mesh", input, output, "--chunk", "4,5,6")).Code);
        File.Delete(output);
        Directory.CreateDirectory(output + ".work/pieces");
        File.WriteAllText(output + ".work/job.txt", "another job");
        await Cli.Expect(2, "unfinished meshing run", "mesh", input, output, "--chunk", "4,5,6");
        Directory.Delete(output + ".work", recursive: true);

        Assert.Equal(0, (await Cli.Run("mesh", input, output, "--chunk", "4,5,6")).Code);
        Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(output));
    }
}
