using System.Runtime.InteropServices;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Manifest;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChunkSeg.Pipeline.Tests;

public sealed class FeaturesPipelineTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "chunkseg-tests", Guid.NewGuid().ToString("N"));

    public FeaturesPipelineTests() => Directory.CreateDirectory(_dir);

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    [InlineData(23)]
    public async Task Chunked_features_equal_the_whole_volume_for_any_chunk_shape_and_worker_count(int seed)
    {
        var rng = new Random(seed);
        string[] specs = ["gs:0.7;ste:1.0;hoge:1.6", "log:1.0;ggm:0.7;dog:1.6", "hoge:1.0/2d;gs:3.5", "ste:0.7/2d;ggm:1.0"];
        var set = FeatureSet.Parse(specs[seed % specs.Length]);
        var shape = new Long3(rng.Next(13, 17), rng.Next(13, 24), rng.Next(13, 24));   // gs:3.5 needs 13 voxels per axis
        set.Validate(shape);
        const int channels = 2;
        var input = new MemoryVolume(AxisOrder.Parse("zyxc"), [shape.Z, shape.Y, shape.X, channels], DataType.UInt16);
        var values = new ushort[input.Info.ElementCount];
        for (int i = 0; i < values.Length; i++) values[i] = (ushort)(500 + 300 * Math.Sin(i * 0.37) + rng.Next(0, 200));
        MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(input.Data);

        var stage = new FeaturesStage(set, shape.Z, channels);
        var chunk = new Long3(rng.Next(1, (int)shape.Z + 2), rng.Next(2, (int)shape.Y + 2), rng.Next(2, (int)shape.X + 2));
        var output = new MemoryVolume(FeaturesStage.OutputAxes(input.Info.Axes), [shape.Z, shape.Y, shape.X, stage.OutputChannels], DataType.Float32);
        var grid = new ChunkGrid(shape, 1, chunk, stage.RequiredHalo);
        var job = new JobSpec(new JobId("f"), StageCatalog.Features, "in", "out", chunk, stage.RequiredHalo, new Dictionary<string, string>());
        var worker = new ChunkWorker(job, stage, input, output, "w");
        using var manifest = ChunkManifest.OpenOrCreate(Path.Combine(_dir, $"m{seed}.jsonl"), "job", grid.Count);
        await using var transport = new InProcessTransport(rng.Next(1, 4), _ => worker.Process);
        var result = await new JobRunner(transport, NullLogger.Instance).RunAsync(job, grid, manifest, cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(result.IsComplete, string.Join("; ", result.Failed.Select(f => f.Reason)));
        Assert.All(output.WriteCounts, n => Assert.Equal(1, n));

        // The whole volume through the engine, channel by channel, in ilastik's channel order.
        int n = (int)shape.Volume;
        var got = MemoryMarshal.Cast<byte, float>(output.Data).ToArray();
        int[] widths = set.Entries.Select(e => set.ChannelsOf(e, shape.Z)).ToArray();
        for (int c = 0; c < channels; c++)
        {
            var block = new float[n];
            for (int i = 0; i < n; i++) block[i] = values[i * channels + c];
            new FeatureEngine(set, shape.Z).Compute(block, (int)shape.Z, (int)shape.Y, (int)shape.X, (entry, component, image) =>
            {
                int ch = widths.Take(entry).Sum() * channels + c * widths[entry] + component;
                for (int i = 0; i < n; i++)
                    if (BitConverter.SingleToInt32Bits(image[i]) != BitConverter.SingleToInt32Bits(got[i * stage.OutputChannels + ch]))
                        Assert.Fail($"seed {seed}, chunk {chunk}: channel {ch} voxel {i}: chunked {got[i * stage.OutputChannels + ch]:R} != whole {image[i]:R}");
            });
        }
    }

    [Fact]
    public void Channel_names_equal_the_feature_names_ilastik_stored_in_its_project()
    {
        foreach (var (project, volumeZ) in new[] { ("ilastik/PixelClass3D.ilp", 64L), ("ilastik/PixelClass.ilp", 1L) })
        {
            using var ilp = IlastikProject.Open(SharedData.Require(project));
            var selection = ilp.ReadFeatureSelection();
            var set = FeatureSet.FromIlastikSelection(selection.FeatureIds, selection.Scales, selection.Selection, selection.ComputeIn2d);
            Assert.Equal(ilp.FeatureNames(), set.ChannelNames(volumeZ));
        }
    }

    [Fact]
    public async Task Features_command_writes_the_ilastik_project_features_of_the_ilastik_data()
    {
        string ilp = SharedData.Require("ilastik/PixelClass3D.ilp");
        string data = SharedData.Require("ilastik/Data_3D.h5") + "/data";
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(["features", data, Path.Combine(_dir, "f.h5") + "/features", "--ilp", ilp, "--chunk", "32,32,32"], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());

        using var project = IlastikProject.Open(ilp);
        using var features = VolumeStore.Open(Path.Combine(_dir, "f.h5") + "/features");
        Assert.Equal("zyxc", features.Info.Axes.Names);
        Assert.Equal([64L, 64L, 64L, project.FeatureNames().Length], features.Info.Shape);
        Assert.Equal(DataType.Float32, features.Info.DataType);

        var bad = await CliApp.RunAsync(["features", data, Path.Combine(_dir, "g.h5") + "/f"], new StringWriter(), stderr = new StringWriter());
        Assert.Equal(2, bad);
        Assert.Contains("--ilp", stderr.ToString());
        bad = await CliApp.RunAsync(["features", data, Path.Combine(_dir, "g.h5") + "/f", "--features", "gs:zero"], new StringWriter(), stderr = new StringWriter());
        Assert.Equal(2, bad);
        Assert.Contains("--features", stderr.ToString());
        bad = await CliApp.RunAsync(["features", data, Path.Combine(_dir, "g.h5") + "/f", "--features", "gs:20"], new StringWriter(), stderr = new StringWriter());
        Assert.Equal(2, bad);
        Assert.Contains("needs at least 71 voxels along y", stderr.ToString());
    }

    [Fact]
    public async Task Two_dimensional_ilastik_data_gets_the_2D_project_features()
    {
        string ilp = SharedData.Require("ilastik/PixelClass.ilp");
        string data = SharedData.Require("ilastik/Data_1channel.h5") + "/data";
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(["features", data, Path.Combine(_dir, "f2.zarr"), "--ilp", ilp, "--chunk", "1,64,64", "--workers", "2"], new StringWriter(), stderr);
        Assert.True(code == 0, stderr.ToString());

        using var project = IlastikProject.Open(ilp);
        using var output = VolumeStore.Open(Path.Combine(_dir, "f2.zarr"));
        Assert.Equal("yxc", output.Info.Axes.Names);
        Assert.Equal([128L, 128L, project.FeatureNames().Length], output.Info.Shape);

        // Chunked through the spine equals the engine on the whole image.
        using var input = VolumeStore.Open(data);
        var raw = new byte[input.Info.ElementCount];
        input.Read(NdBox.Whole(input.Info.Shape), raw);
        var selection = project.ReadFeatureSelection();
        var set = FeatureSet.FromIlastikSelection(selection.FeatureIds, selection.Scales, selection.Selection, selection.ComputeIn2d);
        var got = new float[output.Info.ElementCount];
        output.Read<float>(NdBox.Whole(output.Info.Shape), got);
        int channels = (int)output.Info.Shape[2], images = 0;
        int[] widths = set.Entries.Select(e => set.ChannelsOf(e, 1)).ToArray();
        // The engine emits images grouped by pre-smoothing, not in channel order: place them by entry.
        new FeatureEngine(set, 1).Compute(raw.Select(b => (float)b).ToArray(), 1, 128, 128, (entry, component, image) =>
        {
            int ch = widths.Take(entry).Sum() + component;
            images++;
            for (int i = 0; i < image.Length; i++)
                Assert.Equal(BitConverter.SingleToInt32Bits(image[i]), BitConverter.SingleToInt32Bits(got[i * channels + ch]));
        });
        Assert.Equal(channels, images);
    }

    [Fact]
    public async Task Each_time_point_is_computed_on_its_own()
    {
        // 2 time points of 14 x 15 x 16, different content; features of each must equal the engine on that time point alone.
        var shape = new long[] { 2, 14, 15, 16 };
        var data = new byte[shape.Aggregate(1L, (a, b) => a * b)];
        var rng = new Random(5);
        rng.NextBytes(data);
        string input = Path.Combine(_dir, "t.h5") + "/raw";
        using (var v = VolumeStore.Create(VolumeAddress.Parse(input),
                   new VolumeCreateOptions(AxisOrder.Parse("tzyx"), shape, DataType.UInt8, [1, 7, 8, 8], VoxelSize.Isotropic, CodecSpec.None)))
            v.Write(NdBox.Whole(shape), data);

        const string spec = "gs:0.7;hoge:1.0;ste:1.0/2d";
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(["features", input, Path.Combine(_dir, "tf.zarr"), "--features", spec, "--chunk", "7,8,8"], new StringWriter(), stderr);
        Assert.True(code == 0, stderr.ToString());

        using var output = VolumeStore.Open(Path.Combine(_dir, "tf.zarr"));
        var set = FeatureSet.Parse(spec);
        int channels = set.ChannelCount(14);
        Assert.Equal("tzyxc", output.Info.Axes.Names);
        Assert.Equal([2L, 14, 15, 16, channels], output.Info.Shape);
        var got = new float[output.Info.ElementCount];
        output.Read<float>(NdBox.Whole(output.Info.Shape), got);
        int n = 14 * 15 * 16;
        int[] widths = set.Entries.Select(e => set.ChannelsOf(e, 14)).ToArray();
        for (int t = 0; t < 2; t++)
        {
            var block = data.Skip(t * n).Take(n).Select(b => (float)b).ToArray();
            new FeatureEngine(set, 14).Compute(block, 14, 15, 16, (entry, component, image) =>
            {
                int ch = widths.Take(entry).Sum() + component;
                for (int i = 0; i < n; i++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(image[i]), BitConverter.SingleToInt32Bits(got[(t * n + i) * channels + ch]));
            });
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }
}
