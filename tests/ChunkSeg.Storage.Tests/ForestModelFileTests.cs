using System.IO.Compression;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage.Models;

namespace ChunkSeg.Storage.Tests;

public class ForestModelFileTests
{
    private static ForestModel Sample() => new(
        "GaussianSmoothing:0.3;HessianOfGaussianEigenvalues:3.5", null, false, 1, 4,
        ["Gaussian Smoothing (\u03c3=0.3)", "H [0]", "H [1]", "H [2]"], [1, 2], ["Label 1", "Label 2"],
        [new TreeArrays([3, -1, -1], [1.8870000000000001, 0, 0], [1, 0, 2], [2, 0, 0], [1, 0, 0, 1])],
        "test");

    [Fact]
    public void Round_trips_every_field_exactly()
    {
        using var dir = new TempDir();
        var model = Sample();
        ForestModelFile.Save(dir["m.csforest"], model);
        var back = ForestModelFile.Load(dir["m.csforest"]);
        Assert.Equal(model.FeatureSpec, back.FeatureSpec);
        Assert.Equal(model.FeatureNames, back.FeatureNames);
        Assert.Equal(model.ClassLabels, back.ClassLabels);
        Assert.Equal(model.ClassNames, back.ClassNames);
        Assert.Equal(model.Trees[0].Threshold, back.Trees[0].Threshold);     // doubles round-trip bit for bit
        Assert.Equal(model.Trees[0].LeafValues, back.Trees[0].LeafValues);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
    }

    [Fact]
    public void Bad_files_are_clear_errors()
    {
        using var dir = new TempDir();
        Assert.Contains("not found", Assert.Throws<VolumeException>(() => ForestModelFile.Load(dir["none"])).Message);

        File.WriteAllText(dir["text"], "hello");
        Assert.Contains("not a readable ChunkSeg model", Assert.Throws<VolumeException>(() => ForestModelFile.Load(dir["text"])).Message);

        WriteGzip(dir["other"], """{"format":"something-else","version":1}""");
        Assert.Contains("is not a ChunkSeg model file", Assert.Throws<VolumeException>(() => ForestModelFile.Load(dir["other"])).Message);

        WriteGzip(dir["newer"], """{"format":"chunkseg-forest","version":7}""");
        Assert.Contains("newer ChunkSeg", Assert.Throws<VolumeException>(() => ForestModelFile.Load(dir["newer"])).Message);

        var broken = Sample() with { Trees = [new TreeArrays([3, -1], [1.0], [1, 0], [1, 0], [1, 0])] };
        Assert.Contains("different lengths", Assert.Throws<VolumeException>(() => ForestModelFile.Save(dir["b"], broken)).Message);
        var wide = Sample() with { Trees = [new TreeArrays([9, -1, -1], [1, 0, 0], [1, 0, 2], [2, 0, 0], [1, 0, 0, 1])] };
        Assert.Contains("reads feature 9 of 4", Assert.Throws<VolumeException>(() => ForestModelFile.Save(dir["w"], wide)).Message);
    }

    private static void WriteGzip(string path, string text)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(System.Text.Encoding.UTF8.GetBytes(text));
    }
}
