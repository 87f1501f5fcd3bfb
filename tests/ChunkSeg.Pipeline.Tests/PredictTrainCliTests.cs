using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Models;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>`chunkseg predict` and `chunkseg train` end to end: ilastik parity through the chunk spine, training, errors.</summary>
public sealed class PredictTrainCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "chunkseg-tests", Guid.NewGuid().ToString("N"));

    public PredictTrainCliTests() => Directory.CreateDirectory(_dir);

    private string P(string name) => Path.Combine(_dir, name);

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => Cli.Run(args);

    [Theory]
    [InlineData("ilastik/PixelClass3D.ilp", "ilastik/Data_3D.h5", "ilastik/Data_3D_Probabilities.h5", "16,16,16", 1)]
    [InlineData("ilastik/PixelClass3D.ilp", "ilastik/Data_3D.h5", "ilastik/Data_3D_Probabilities.h5", "16,16,16", 3)]
    [InlineData("ilastik/PixelClass.ilp", "ilastik/Data_1channel.h5", "ilastik/Data_1channel_Probabilities.h5", "1,16,16", 2)]
    public async Task Chunked_prediction_equals_ilastiks_export_bit_for_bit(string ilp, string data, string expected, string chunk, int workers)
    {
        string output = P("p.h5") + "/probabilities";
        var (code, _, err) = await Run("predict", SharedData.Require(data) + "/data", output, "--ilp", SharedData.Require(ilp),
            "--chunk", chunk, "--chunks", chunk, "--workers", workers.ToString(), "--codec", "none");
        Assert.True(code == 0, err);

        var got = IlastikParityTests.ReadAll(output);
        var want = IlastikParityTests.ReadAll(SharedData.Require(expected) + "/exported_data");
        Assert.Equal(want.Length, got.Length);
        var (maxAbs, differing, argmaxAgree) = IlastikParityTests.Compare(got, want, 2);
        Assert.Equal(want.Length / 2, argmaxAgree);
        Assert.True(maxAbs == 0 && differing == 0, $"chunked ({chunk}, {workers} workers): max |ChunkSeg - ilastik| = {maxAbs:R}, {differing} values differ");
        using var v = VolumeStore.Open(output);
        Assert.EndsWith("c", v.Info.Axes.Names);
    }

    /// <summary>The demo's nuclei, labelled sparsely like brush strokes: bright = 1, dark background = 2; the rest held out.</summary>
    private async Task<(string Raw, string Labels, ushort[] Values)> LabelledDemo()
    {
        Assert.Equal(0, (await Run("demo", "--data-only", "--out", _dir, "--shape", "24,64,64", "--nuclei", "25")).Code);
        string raw = P("nuclei.h5") + "/raw";
        using var volume = VolumeStore.Open(raw);
        var values = new ushort[volume.Info.ElementCount];
        volume.Read<ushort>(NdBox.Whole(volume.Info.Shape), values);
        var labels = new byte[values.Length];
        for (int i = 0; i < values.Length; i += 13)                     // sparse strokes: every 13th voxel
            labels[i] = values[i] > 700 ? (byte)1 : values[i] < 250 ? (byte)2 : (byte)0;
        string labelAddress = P("labels.h5") + "/labels";
        using (var l = VolumeStore.Create(VolumeAddress.Parse(labelAddress),
                   new VolumeCreateOptions(AxisOrder.Parse("zyx"), volume.Info.Shape, DataType.UInt8, [24, 64, 64], volume.Info.VoxelSize, CodecSpec.Gzip())))
            l.Write(NdBox.Whole(volume.Info.Shape), labels);
        return (raw, labelAddress, values);
    }

    [Fact]
    public async Task Train_then_predict_classifies_held_out_voxels_and_is_deterministic()
    {
        var (raw, labels, values) = await LabelledDemo();
        const string spec = "gs:1.0,3.5;ggm:1.0;hoge:1.6";
        var (code, output, err) = await Run("train", raw, labels, "--out", P("m1.csforest"), "--features", spec, "--trees", "30", "--seed", "7", "--workers", "1", "--chunk", "12,32,32");
        Assert.True(code == 0, err);
        Assert.Contains("labelled voxels", output);
        Assert.Equal(0, (await Run("train", raw, labels, "--out", P("m2.csforest"), "--features", spec, "--trees", "30", "--seed", "7", "--workers", "2", "--chunk", "24,64,64")).Code);

        var m1 = ForestModelFile.Load(P("m1.csforest"));
        var m2 = ForestModelFile.Load(P("m2.csforest"));
        Assert.Equal(30, m1.Trees.Count);
        Assert.Equal([1, 2], m1.ClassLabels);
        for (int t = 0; t < m1.Trees.Count; t++)                          // same seed, any chunking or worker count: same trees
        {
            Assert.Equal(m1.Trees[t].Feature, m2.Trees[t].Feature);
            Assert.Equal(m1.Trees[t].Threshold, m2.Trees[t].Threshold);
        }

        (code, _, err) = await Run("predict", raw, P("prob.zarr"), "--model", P("m1.csforest"), "--chunk", "12,32,32");
        Assert.True(code == 0, err);
        using var probabilities = VolumeStore.Open(P("prob.zarr"));
        Assert.Equal("zyxc", probabilities.Info.Axes.Names);
        var p = new float[probabilities.Info.ElementCount];
        probabilities.Read<float>(NdBox.Whole(probabilities.Info.Shape), p);

        // Held out: voxels not labelled (i % 13 != 0) that are clearly bright or dark.
        int right = 0, total = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (i % 13 == 0 || (values[i] is > 250 and < 700)) continue;
            total++;
            bool bright = values[i] >= 700;
            if ((p[2 * i] > p[2 * i + 1]) == bright) right++;
            Assert.Equal(1f, p[2 * i] + p[2 * i + 1], 5);
        }
        Assert.True(right > 0.95 * total, $"held-out accuracy {right}/{total}");
    }

    [Fact]
    public async Task Bad_models_labels_and_options_are_clear_errors()
    {
        var (raw, labels, _) = await LabelledDemo();
        Assert.Equal(0, (await Run("train", raw, labels, "--out", P("m.csforest"), "--features", "gs:1.0", "--trees", "3")).Code);

        await Expect(2, "exactly one of --ilp", "predict", raw, P("x.h5") + "/p");
        await Expect(2, "exactly one of --features", "train", raw, labels, "--out", P("y.csforest"));
        await Expect(2, "--trees", "train", raw, labels, "--out", P("y.csforest"), "--features", "gs:1.0", "--trees", "0");

        File.WriteAllText(P("corrupt.csforest"), "not a model");
        await Expect(1, "not a readable ChunkSeg model", "predict", raw, P("x.h5") + "/p", "--model", P("corrupt.csforest"));

        // Two-channel input for a model trained on one channel.
        using (var two = VolumeStore.Create(VolumeAddress.Parse(P("two.h5") + "/raw"),
                   new VolumeCreateOptions(AxisOrder.Parse("zyxc"), [24, 64, 64, 2], DataType.UInt16, [24, 64, 64, 2], VoxelSize.Isotropic, CodecSpec.None)))
            two.Write(NdBox.Whole([24, 64, 64, 2]), new byte[24 * 64 * 64 * 2 * 2]);
        await Expect(2, "trained on 1-channel data", "predict", P("two.h5") + "/raw", P("x.h5") + "/p", "--model", P("m.csforest"));

        using (var empty = VolumeStore.Create(VolumeAddress.Parse(P("empty.h5") + "/labels"),
                   new VolumeCreateOptions(AxisOrder.Parse("zyx"), [24, 64, 64], DataType.UInt8, [24, 64, 64], VoxelSize.Isotropic, CodecSpec.None)))
            empty.Write(NdBox.Whole([24, 64, 64]), new byte[24 * 64 * 64]);
        await Expect(1, "no labelled voxels", "train", raw, P("empty.h5") + "/labels", "--out", P("y.csforest"), "--features", "gs:1.0");

        using (var small = VolumeStore.Create(VolumeAddress.Parse(P("small.h5") + "/labels"),
                   new VolumeCreateOptions(AxisOrder.Parse("zyx"), [24, 64, 60], DataType.UInt8, [24, 64, 60], VoxelSize.Isotropic, CodecSpec.None)))
            small.Write(NdBox.Whole([24, 64, 60]), new byte[24 * 64 * 60]);
        await Expect(1, "do not match the raw data", "train", raw, P("small.h5") + "/labels", "--out", P("y.csforest"), "--features", "gs:1.0");

    }

    private static Task Expect(int code, string fragment, params string[] args) => Cli.Expect(code, fragment, args);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }
}
