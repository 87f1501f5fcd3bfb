using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Classifiers;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;
using ChunkSeg.Storage.Models;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// The GPU backend (ILGPU) through the whole pipeline: ilastik's own exported probabilities reproduced by `predict
/// --backend gpu`, and `features`, `predict`, `train`, `label` (its splits included), `mesh` and `run` with --backend
/// gpu giving the CPU backend's outputs bit for bit. CI runs them on ILGPU's CPU accelerator (<c>CHUNKSEG_GPU=cpu</c>,
/// set here unless the environment names another accelerator); on a GPU node scripts/gpu-check.sh runs them with
/// <c>CHUNKSEG_GPU=cuda</c>, holding the GPU to the same results. The CPU accelerator is slow, so the volumes are small crops.
/// </summary>
public sealed class BackendTests(ITestOutputHelper output) : IDisposable
{
    static BackendTests()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(GpuDevice.SelectionVariable)))
            Environment.SetEnvironmentVariable(GpuDevice.SelectionVariable, "cpu");
    }

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3D => SharedData.Require("ilastik/Data_3D.h5") + "/data";

    [Theory]
    [InlineData("ilastik/PixelClass3D.ilp", "ilastik/Data_3D.h5", "ilastik/Data_3D_Probabilities.h5", "32,64,64")]
    [InlineData("ilastik/PixelClass.ilp", "ilastik/Data_1channel.h5", "ilastik/Data_1channel_Probabilities.h5", "1,128,128")]
    public async Task Predict_on_the_gpu_equals_ilastiks_export_bit_for_bit(string ilp, string data, string expected, string chunk)
    {
        string probabilities = _dir["p.h5"] + "/probabilities";
        var (code, stdout, err) = await Cli.Run("predict", SharedData.Require(data) + "/data", probabilities, "--ilp", SharedData.Require(ilp),
            "--chunk", chunk, "--backend", "gpu", "--codec", "none");
        Assert.True(code == 0, err + stdout);
        var got = IlastikParityTests.ReadAll(probabilities);
        var want = IlastikParityTests.ReadAll(SharedData.Require(expected) + "/exported_data");
        Assert.Equal(want.Length, got.Length);
        var (maxAbs, differing, argmaxAgree) = IlastikParityTests.Compare(got, want, 2);
        output.WriteLine($"{ilp} through predict --backend gpu ({Environment.GetEnvironmentVariable(GpuDevice.SelectionVariable)}): " +
            $"max |GPU - ilastik| = {maxAbs:R}, {differing} values differ, argmax agrees on {argmaxAgree}/{want.Length / 2}");
        Assert.True(maxAbs == 0 && differing == 0, $"max |GPU - ilastik| = {maxAbs:R}, {differing} values differ");
    }

    [Fact]
    public async Task Run_on_gpu_writes_the_cpu_backends_outputs()
    {
        string cpu = _dir["cpu"], gpu = _dir["gpu"];
        string[] options = ["--ilp", Ilp3D, "--chunk", "12,20,24", "--export-probabilities"];
        await Ok(["run", Crop3D(), "--out", cpu, "--backend", "cpu", .. options]);
        await Ok(["run", Crop3D(), "--out", gpu, "--backend", "gpu", .. options]);

        var probabilities = IlastikParityTests.ReadAll(Path.Combine(gpu, "probabilities.h5") + "/exported_data");
        Assert.Equal(IlastikParityTests.ReadAll(Path.Combine(cpu, "probabilities.h5") + "/exported_data"), probabilities);
        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(cpu, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(gpu, "labels.ome.zarr")));
        Assert.Equal(File.ReadAllText(Path.Combine(cpu, "objects.csv")), File.ReadAllText(Path.Combine(gpu, "objects.csv")));
        Assert.Equal(RunCliTests.MeshBody(Path.Combine(cpu, "mesh.obj")), RunCliTests.MeshBody(Path.Combine(gpu, "mesh.obj")));
    }

    [Fact]
    public async Task Features_and_predict_on_gpu_equal_the_cpu_backends()
    {
        foreach (var backend in new[] { "cpu", "gpu" })
        {
            await Ok("features", Crop3D(), _dir[$"f-{backend}.zarr"], "--ilp", Ilp3D, "--chunk", "12,24,28", "--backend", backend);
            await Ok("predict", Crop3D(), _dir[$"p-{backend}.zarr"], "--ilp", Ilp3D, "--chunk", "12,24,28", "--backend", backend);
        }
        Assert.Equal(IlastikParityTests.ReadAll(_dir["f-cpu.zarr"]), IlastikParityTests.ReadAll(_dir["f-gpu.zarr"]));
        Assert.Equal(IlastikParityTests.ReadAll(_dir["p-cpu.zarr"]), IlastikParityTests.ReadAll(_dir["p-gpu.zarr"]));
    }

    [Fact]
    public async Task Bench_backend_times_every_row_and_finds_the_results_equal()
    {
        var (code, stdout, err) = await Cli.Run("bench", "backend", "--size", "40", "--trees", "4", "--chunk", "20", "--repeats", "1",
            "--features", "GaussianSmoothing:0.7;HessianOfGaussianEigenvalues:1.6");
        Assert.True(code == 0, err + stdout);
        // The table wraps in a narrow console: look for words, not whole cells.
        foreach (var word in new[] { "stack", "trees)", "(fused)", "identical" }) Assert.Contains(word, stdout);
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(stdout, @"0\.0e\+0").Count);   // every difference 0: bit for bit
    }

    [Fact]
    public void Auto_on_an_nvidia_machine_without_its_gpu_driver_warns_and_computes_on_the_cpu()
    {
        string marker = _dir["nvidiactl"];
        File.WriteAllText(marker, "");
        var warnings = new List<string>();
        using var backend = ComputeBackends.Open("auto", warnings.Add, marker);
        if (backend.Name != "cpu") Assert.Skip($"this machine has a GPU ILGPU can use ({backend.Device}): auto takes it");
        var warning = Assert.Single(warnings);
        Assert.Contains("NVIDIA GPU", warning);
        Assert.Contains("libcuda.so.1", warning);                // what is missing, in words a cluster admin can act on

        warnings.Clear();
        using (ComputeBackends.Open("auto", warnings.Add, _dir["no-such-device"])) { }
        Assert.Empty(warnings);                                   // no NVIDIA GPU: the CPU is simply the right choice
    }

    [Fact]
    public async Task Train_on_gpu_writes_the_cpu_backends_forest()
    {
        var (raw, labels) = await LabelledDemo();
        foreach (var backend in new[] { "cpu", "gpu" })
            await Ok("train", raw, labels, "--out", _dir[$"m-{backend}.csforest"], "--features", "gs:1.0,3.5;ggm:1.0;ste:1.6;hoge:1.6",
                "--trees", "12", "--seed", "5", "--chunk", "12,20,24", "--backend", backend);

        // The samples' features are bit-identical, so the trees are: every split, threshold and leaf.
        var cpu = ForestModelFile.Load(_dir["m-cpu.csforest"]);
        var gpu = ForestModelFile.Load(_dir["m-gpu.csforest"]);
        Assert.Equal(cpu.FeatureCount, gpu.FeatureCount);
        Assert.Equal(cpu.FeatureNames, gpu.FeatureNames);
        Assert.Equal(cpu.ClassLabels, gpu.ClassLabels);
        Assert.Equal(12, gpu.Trees.Count);
        for (int t = 0; t < cpu.Trees.Count; t++)
        {
            var (a, b) = (cpu.Trees[t], gpu.Trees[t]);
            Assert.Equal(a.Feature, b.Feature);
            Assert.Equal(a.Threshold, b.Threshold);
            Assert.Equal(a.Left, b.Left);
            Assert.Equal(a.Right, b.Right);
            Assert.Equal(a.LeafValues, b.LeafValues);
        }
        output.WriteLine($"12 trees identical ({cpu.Trees.Sum(t => t.Feature.Length)} nodes, {cpu.FeatureCount} features)");
    }

    /// <summary>Segmentation on the device: smoothing (anisotropic or none), threshold or argmax, 2D and 3D, chunks cut at odd places.</summary>
    [Theory]
    [InlineData(false, "7,9,8", "--threshold", "0.55", "--channel", "1", "--smooth-sigma", "1.5,1,2")]
    [InlineData(false, "7,9,8", "--argmax", "--foreground", "0", "--smooth-sigma", "1,0.6,1.3")]
    [InlineData(false, "7,9,8", "--argmax", "--foreground", "2")]
    [InlineData(false, "20,16,11", "--threshold", "0.5", "--smooth-sigma", "1", "--fill-holes")]
    [InlineData(true, "1,13,10", "--argmax", "--foreground", "0", "--smooth-sigma", "1.2")]
    [InlineData(true, "1,13,10", "--threshold", "0.4", "--channel", "2", "--smooth-sigma", "0,0.8,2")]
    [InlineData(true, "1,13,10", "--threshold", "0.5", "--channel", "0")]
    public async Task Label_on_gpu_writes_the_cpu_backends_labels_and_objects(bool twoD, string chunk, params string[] segmentation)
    {
        string input = Probabilities(twoD);
        foreach (var backend in new[] { "cpu", "gpu" })
            await Ok(["label", input, _dir[$"l-{backend}.zarr"], "--chunk", chunk, "--chunks", chunk, "--objects", _dir[$"o-{backend}.csv"],
                "--backend", backend, .. segmentation]);

        var labels = TestVolumes.ReadUInt32(_dir["l-cpu.zarr"]);
        Assert.True(labels.Max() > 2, "the segmentation should give several objects");
        Assert.Equal(labels, TestVolumes.ReadUInt32(_dir["l-gpu.zarr"]));
        // The table's mean intensity is the segmented channel's raw values: the same on each backend too.
        Assert.Equal(File.ReadAllText(_dir["o-cpu.csv"]), File.ReadAllText(_dir["o-gpu.csv"]));
        output.WriteLine($"{string.Join(' ', segmentation)}: {labels.Max()} objects, {labels.Count(l => l != 0)} foreground voxels, identical");
    }

    /// <summary>
    /// The split's blurs on the device: `label --voronoi-otsu` (outline and spot blurs of a raw image, 3D and 2D,
    /// anisotropic spot) and `label --split voronoi` (the segmentation, then the spot blur), chunks cut at odd places.
    /// </summary>
    [Theory]
    [InlineData(false, "7,9,8", "--voronoi-otsu", "2,1")]
    [InlineData(false, "20,11,13", "--voronoi-otsu", "2,1", "--spot-sigma", "1,2,1.5")]
    [InlineData(true, "1,13,10", "--voronoi-otsu", "1.5,1")]
    [InlineData(false, "7,9,8", "--split", "voronoi", "--spot-sigma", "1", "--channel", "1", "--threshold", "0.5")]
    public async Task Split_on_gpu_writes_the_cpu_backends_labels_and_objects(bool twoD, string chunk, params string[] split)
    {
        string input = split[0] == "--voronoi-otsu" ? Blobs(twoD) : Probabilities(twoD);
        foreach (var backend in new[] { "cpu", "gpu" })
            await Ok(["label", input, _dir[$"v-{backend}.zarr"], "--chunk", chunk, "--chunks", chunk, "--objects", _dir[$"v-{backend}.csv"],
                "--backend", backend, .. split]);

        var labels = TestVolumes.ReadUInt32(_dir["v-cpu.zarr"]);
        Assert.True(labels.Max() > 2, "the split should give several objects");
        Assert.Equal(labels, TestVolumes.ReadUInt32(_dir["v-gpu.zarr"]));
        Assert.Equal(File.ReadAllText(_dir["v-cpu.csv"]), File.ReadAllText(_dir["v-gpu.csv"]));
        output.WriteLine($"{string.Join(' ', split)}: {labels.Max()} objects, {labels.Count(l => l != 0)} foreground voxels, identical");
    }

    /// <summary>Touching blobs on a noisy background as uint16 (zyx, or yx for 2D): a raw image for --voronoi-otsu.</summary>
    private string Blobs(bool twoD)
    {
        int sz = twoD ? 1 : 20, sy = twoD ? 40 : 30, sx = twoD ? 44 : 26;
        var image = SplitPipelineTests.Blobs(sz, sy, sx, count: 9, radius: twoD ? 4.0 : 3.0, seed: twoD ? 5 : 3);
        return TestVolumes.WriteZarr(_dir, twoD ? "b2.zarr" : "b3.zarr", twoD ? "yx" : "zyx", twoD ? [sy, sx] : [sz, sy, sx], DataType.UInt16,
            MemoryMarshal.AsBytes(image.AsSpan()).ToArray());
    }

    /// <summary>`mesh --smooth-sigma` smooths each chunk's read box on the device before marching cubes: the same surface.</summary>
    [Theory]
    [InlineData("1.5")]
    [InlineData("0.8,1.6,2.4")]
    public async Task Mesh_with_smoothing_on_gpu_writes_the_cpu_backends_surface(string sigma)
    {
        string probabilities = Probabilities(false);
        foreach (var backend in new[] { "cpu", "gpu" })
            await Ok("mesh", probabilities, _dir[$"s-{backend}.obj"], "--channel", "1", "--isovalue", "0.4", "--smooth-sigma", sigma, "--chunk", "8,12,10",
                "--backend", backend, "--overwrite");
        Assert.Contains("\nf ", File.ReadAllText(_dir["s-cpu.obj"]));       // a surface, not an empty file
        Assert.Equal(RunCliTests.MeshBody(_dir["s-cpu.obj"]), RunCliTests.MeshBody(_dir["s-gpu.obj"]));
    }

    [Fact]
    public async Task A_backend_that_does_not_exist_is_refused_by_name()
    {
        await Cli.Expect(2, "--backend cuda: use cpu, gpu or auto", "features", Data3D, _dir["f.zarr"], "--ilp", Ilp3D, "--backend", "cuda");
        await Cli.Expect(2, "--backend cuda: use cpu, gpu or auto", "label", Probabilities(false), _dir["l.zarr"], "--backend", "cuda");
        await Cli.Expect(2, "--backend cuda: use cpu, gpu or auto", "mesh", Probabilities(false), _dir["m.obj"], "--smooth-sigma", "1", "--backend", "cuda");
        var (raw, labels) = await LabelledDemo();
        await Cli.Expect(2, "--backend opencl: use cpu, gpu or auto", "train", raw, labels, "--out", _dir["m.csforest"], "--features", "gs:1.0", "--backend", "opencl");
        Assert.False(File.Exists(_dir["m.csforest"]));
    }

    /// <summary>A 24 × 40 × 40 crop of the ilastik 3D fixture (its scales need 19 voxels per axis): small, since CI's GPU is ILGPU's CPU accelerator.</summary>
    private string Crop3D()
    {
        string path = _dir["crop3d.zarr"];
        if (Directory.Exists(path)) return path;
        using var volume = VolumeStore.Open(Data3D);
        var all = new byte[volume.Info.ElementCount];
        volume.Read(NdBox.Whole(volume.Info.Shape), all.AsSpan());
        const int sz = 24, sy = 40, sx = 40;
        var crop = new byte[sz * sy * sx];
        for (int z = 0; z < sz; z++)
        for (int y = 0; y < sy; y++)
            all.AsSpan(((z + 20) * 64 + y + 10) * 64 + 12, sx).CopyTo(crop.AsSpan((z * sy + y) * sx, sx));
        return TestVolumes.WriteZarr(_dir, "crop3d.zarr", "zyx", [sz, sy, sx], DataType.UInt8, crop);
    }

    /// <summary>Three smooth, noisy class probabilities in sixteenths (zyxc, or yxc for 2D), written once per test.</summary>
    private string Probabilities(bool twoD)
    {
        string path = _dir[twoD ? "p2.zarr" : "p3.zarr"];
        if (Directory.Exists(path)) return path;
        int sz = twoD ? 1 : 20, sy = twoD ? 40 : 30, sx = twoD ? 44 : 26;
        const int channels = 3;
        var rng = new Random(twoD ? 23 : 17);
        var p = new float[sz * sy * sx * channels];
        for (int v = 0; v < sz * sy * sx; v++)
        {
            int z = v / (sy * sx), y = v / sx % sy, x = v % sx;
            double zWave = twoD ? 1 : Math.Sin(z * 0.6 + 0.3);
            float a = (float)(0.5 + 0.45 * zWave * Math.Cos(y * 0.45) * Math.Sin(x * 0.5 + 1) + 0.1 * (rng.NextDouble() - 0.5));
            float b = (float)rng.NextDouble() * (1 - a);
            // Sixteenths, as a forest's vote fractions are: ties between classes and with the threshold are common.
            (a, b) = (MathF.Round(a * 16) / 16, MathF.Round(b * 16) / 16);
            (p[v * channels], p[v * channels + 1], p[v * channels + 2]) = (b, a, 1 - a - b);
        }
        return TestVolumes.WriteZarr(_dir, Path.GetFileName(path), twoD ? "yxc" : "zyxc", twoD ? [sy, sx, channels] : [sz, sy, sx, channels],
            DataType.Float32, MemoryMarshal.AsBytes(p.AsSpan()).ToArray());
    }

    /// <summary>The demo's nuclei with sparse strokes (every 13th voxel: bright = 1, dark = 2), as `train` takes them.</summary>
    private async Task<(string Raw, string Labels)> LabelledDemo()
    {
        string raw = Path.Combine(_dir["demo"], "nuclei.h5") + "/raw", labelAddress = Path.Combine(_dir["demo"], "labels.h5") + "/labels";
        if (File.Exists(Path.Combine(_dir["demo"], "labels.h5"))) return (raw, labelAddress);
        await Ok("demo", "--data-only", "--out", _dir["demo"], "--shape", "24,48,40", "--nuclei", "12");
        using var volume = VolumeStore.Open(raw);
        var values = new ushort[volume.Info.ElementCount];
        volume.Read<ushort>(NdBox.Whole(volume.Info.Shape), values);
        var labels = new byte[values.Length];
        for (int i = 0; i < values.Length; i += 13)
            labels[i] = values[i] > 700 ? (byte)1 : values[i] < 250 ? (byte)2 : (byte)0;
        using (var l = VolumeStore.Create(VolumeAddress.Parse(labelAddress),
                   new VolumeCreateOptions(AxisOrder.Parse("zyx"), volume.Info.Shape, DataType.UInt8, [24, 48, 40], volume.Info.VoxelSize, CodecSpec.Gzip())))
            l.Write(NdBox.Whole(volume.Info.Shape), labels);
        return (raw, labelAddress);
    }

    private static async Task Ok(params string[] args)
    {
        var (code, _, err) = await Cli.Run(args);
        Assert.True(code == 0, $"chunkseg {string.Join(' ', args)} exited {code}: {err}");
    }
}
