using System.Runtime.InteropServices;
using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg evaluate` against scikit-learn (tools/reference/evaluate_reference.py) on the platynereis nuclei and a
/// damaged copy of them (shifted, objects dropped and merged, a false object added): every count and score equal,
/// for any chunk shape; sparse references scored as the segmentation game does.
/// </summary>
public sealed class EvaluateTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The reference as HDF5 (as given), the damaged prediction as uint16 Zarr, both also as .npy for Python.</summary>
    private (string Reference, string Predicted, uint[] Labels, long[] Shape) Volumes()
    {
        string gt = SharedData.Require("platynereis/nuclei_gt.h5");
        using var source = VolumeStore.Open(gt + "/labels");
        var shape = source.Info.Shape;
        var labels = new uint[source.Info.ElementCount];
        source.Read(NdBox.Whole(shape), MemoryMarshal.AsBytes(labels.AsSpan()));
        long ny = shape[1], nx = shape[2];
        uint max = labels.Max();
        var damaged = new ushort[labels.Length];
        for (long i = 0; i < labels.Length; i++)
        {
            long x = i % nx;
            uint l = x > 0 ? labels[i - 1] : 0;        // shifted by one voxel along x
            if (l % 5 == 0) l = 0;                     // every fifth object missed
            else if (l % 11 == 0) l += 1;              // every eleventh merged into the next
            damaged[i] = (ushort)l;
        }
        for (long z = 0; z < 4; z++)                    // a false object in a corner
            for (long y = 0; y < 6; y++)
                for (long x = 0; x < 6; x++)
                    damaged[(z * ny + y) * nx + x] = (ushort)(max + 1);
        NpyFile.Write(_dir["reference.npy"], DataType.UInt32, shape, MemoryMarshal.AsBytes(labels.AsSpan()));
        NpyFile.Write(_dir["predicted.npy"], DataType.UInt16, shape, MemoryMarshal.AsBytes(damaged.AsSpan()));
        string predicted = TestVolumes.WriteZarr(_dir, "predicted.zarr", "zyx", shape, DataType.UInt16, MemoryMarshal.AsBytes(damaged.AsSpan()).ToArray());
        return (gt + "/labels", predicted, labels, shape);
    }

    [Fact]
    public async Task Scores_equal_scikit_learns_for_every_chunk_shape()
    {
        var (reference, predicted, _, _) = Volumes();
        var expected = JsonDocument.Parse(PythonReference.Run("evaluate_reference.py", "score", _dir["predicted.npy"], _dir["reference.npy"])).RootElement;
        Assert.True(expected.GetProperty("objects").GetProperty("matched").GetInt64() > 10, "the damaged copy still matches most objects");
        foreach (string chunk in new[] { "128,128,128", "17,50,33", "7,256,9" })
        {
            var (code, stdout, err) = await Cli.Run("evaluate", predicted, reference, "--json", "--chunk", chunk, "--workers", "2");
            Assert.True(code == 0, err);
            AssertSameJson(expected, JsonDocument.Parse(stdout).RootElement, $"chunks {chunk}");
        }
    }

    [Fact]
    public async Task Sparse_references_score_only_the_annotated_objects()
    {
        var (_, predicted, labels, shape) = Volumes();
        // A user annotated every seventh nucleus.
        var sparse = labels.Select(l => l % 7 == 0 ? l : 0u).ToArray();
        NpyFile.Write(_dir["sparse.npy"], DataType.UInt32, shape, MemoryMarshal.AsBytes(sparse.AsSpan()));
        string annotated = TestVolumes.WriteZarr(_dir, "sparse.zarr", "zyx", shape, DataType.UInt32, MemoryMarshal.AsBytes(sparse.AsSpan()).ToArray());
        var expected = JsonDocument.Parse(PythonReference.Run("evaluate_reference.py", "score", _dir["predicted.npy"], _dir["sparse.npy"], "--sparse")).RootElement;
        var (code, stdout, err) = await Cli.Run("evaluate", predicted, annotated, "--sparse", "--json", "--chunk", "20,64,48");
        Assert.True(code == 0, err);
        var actual = JsonDocument.Parse(stdout).RootElement;
        AssertSameJson(expected, actual, "sparse");
        Assert.Equal(JsonValueKind.Null, actual.GetProperty("objects").GetProperty("precision").ValueKind);

        // The table form names what a sparse reference cannot judge.
        (code, stdout, err) = await Cli.Run("evaluate", predicted, annotated, "--sparse");
        Assert.True(code == 0, err);
        Assert.Contains("not judged", stdout);
        Assert.Contains("mean best Jaccard", stdout);
    }

    [Fact]
    public async Task Mismatched_or_non_label_inputs_are_refused_by_name()
    {
        string a = TestVolumes.WriteZarr(_dir, "a.zarr", "zyx", [4, 5, 6], DataType.UInt8, new byte[120]);
        string b = TestVolumes.WriteZarr(_dir, "b.zarr", "zyx", [4, 5, 7], DataType.UInt8, new byte[140]);
        string f = TestVolumes.WriteZarr(_dir, "f.zarr", "zyx", [4, 5, 6], DataType.Float32, new byte[480]);
        var (code, _, err) = await Cli.Run("evaluate", a, b);
        Assert.Equal(2, code);
        Assert.Contains("a.zarr", err);
        Assert.Contains("b.zarr", err);
        Assert.Contains("same shape", err);
        (code, _, err) = await Cli.Run("evaluate", f, a);
        Assert.Equal(2, code);
        Assert.Contains("f.zarr", err);
        Assert.Contains("float32", err);
        var negative = new short[120];
        negative[17] = -3;
        string n = TestVolumes.WriteZarr(_dir, "n.zarr", "zyx", [4, 5, 6], DataType.Int16, MemoryMarshal.AsBytes(negative.AsSpan()).ToArray());
        (code, _, err) = await Cli.Run("evaluate", a, n);
        Assert.Equal(1, code);
        Assert.Contains("n.zarr", err);
        Assert.Contains("label -3", err);
    }

    [Fact]
    public void Empty_segmentations_have_counts_but_no_ratios()
    {
        var table = new Coordinator.Evaluation.OverlapTable();
        table.Add(new ulong[10], new ulong[10]);
        var scores = Coordinator.Evaluation.SegmentationEvaluation.Score(table, sparse: false);
        Assert.Equal(10, scores.Pixels.TrueNegatives);
        Assert.Null(scores.Pixels.Jaccard);
        Assert.Null(scores.Pixels.Recall);
        Assert.Equal(0, scores.Objects.ReferenceObjects);
        Assert.Null(scores.Objects.MeanBestJaccard);
        Assert.Null(scores.Objects.F1);
    }

    private static void AssertSameJson(JsonElement expected, JsonElement actual, string what)
    {
        foreach (string part in new[] { "pixels", "objects" })
            foreach (var property in expected.GetProperty(part).EnumerateObject())
            {
                var value = actual.GetProperty(part).GetProperty(property.Name);
                string where = $"{what}: {part}.{property.Name}";
                if (property.Value.ValueKind == JsonValueKind.Null) Assert.True(value.ValueKind == JsonValueKind.Null, $"{where} should be null, is {value}");
                else Assert.True(Math.Abs(property.Value.GetDouble() - value.GetDouble()) <= 1e-12, $"{where}: scikit-learn {property.Value}, ChunkSeg {value}");
            }
        Assert.Equal(expected.GetProperty("sparse").GetBoolean(), actual.GetProperty("sparse").GetBoolean());
    }
}
