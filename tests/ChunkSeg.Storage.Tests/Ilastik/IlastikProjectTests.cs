using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.Storage.Tests.Ilastik;

/// <summary>IlastikProject against h5py on the ilastik-written fixtures, and its errors on broken projects.</summary>
public sealed class IlastikProjectTests
{
    private sealed record Reference(
        string ilastikVersion, string workflowName, string[] FeatureIds, double[] Scales, bool[][] SelectionMatrix,
        bool[]? ComputeIn2d, string[] feature_names, string[] LabelNames);

    [Theory]
    [InlineData("ilastik/PixelClass3D.ilp")]
    [InlineData("ilastik/PixelClass.ilp")]
    public void Fixture_matches_h5py(string relative)
    {
        string path = SharedData.Require(relative);
        var expected = JsonSerializer.Deserialize<Reference>(PythonReference.Run("ilp_read.py", path))!;

        using var project = IlastikProject.Open(path);
        Assert.Equal(path, project.Path);
        Assert.Equal(expected.ilastikVersion, project.IlastikVersion);
        Assert.Equal(expected.workflowName, project.WorkflowName);
        var selection = project.ReadFeatureSelection();
        Assert.Equal(expected.FeatureIds, selection.FeatureIds);
        Assert.Equal(expected.Scales, selection.Scales);
        Assert.Equal(expected.SelectionMatrix.Length, selection.Selection.GetLength(0));
        for (int i = 0; i < expected.SelectionMatrix.Length; i++)
        {
            Assert.Equal(expected.SelectionMatrix[i].Length, selection.Selection.GetLength(1));
            for (int j = 0; j < expected.SelectionMatrix[i].Length; j++)
                Assert.True(expected.SelectionMatrix[i][j] == selection.Selection[i, j], $"SelectionMatrix[{i}, {j}]");
        }
        Assert.Equal(expected.ComputeIn2d, selection.ComputeIn2d);
        Assert.Equal(expected.feature_names, project.FeatureNames());
        Assert.Equal(expected.LabelNames, project.LabelNames());
    }

    [Fact]
    public void Fixture_facts_the_feature_layer_relies_on()
    {
        using var project = IlastikProject.Open(SharedData.Require("ilastik/PixelClass3D.ilp"));
        Assert.Equal("Pixel Classification", project.WorkflowName);
        var selection = project.ReadFeatureSelection();
        Assert.Equal([0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0], selection.Scales);
        Assert.Equal("GaussianSmoothing", selection.FeatureIds[0]);
        Assert.Contains("Gaussian Smoothing (\u03c3=0.3)", project.FeatureNames());   // UTF-8 in a string tagged ASCII
        Assert.Equal(["Label 1", "Label 2"], project.LabelNames());
    }

    [Fact]
    public void Synthetic_project_written_by_h5py()
    {
        using var dir = new TempDir();
        string path = Write(dir, "good");
        using var project = IlastikProject.Open(path);
        Assert.Equal("1.4.1b15", project.IlastikVersion);
        var selection = project.ReadFeatureSelection();
        Assert.Equal(6, selection.FeatureIds.Length);
        Assert.True(selection.Selection[0, 0]);
        Assert.True(selection.Selection[1, 3]);
        Assert.Equal(2, selection.Selection.Cast<bool>().Count(b => b));
        Assert.Null(selection.ComputeIn2d);
        Assert.Empty(project.FeatureNames());
    }

    [Fact]
    public void Selection_matrix_shape_mismatch()
    {
        using var dir = new TempDir();
        using var project = IlastikProject.Open(Write(dir, "mismatch"));
        var e = Assert.Throws<VolumeException>(() => project.ReadFeatureSelection());
        Assert.Contains("mismatch.ilp: /FeatureSelections/SelectionMatrix: has shape [6, 6]; expected [6, 7]", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("no-workflow", "it has no /workflowName;")]
    [InlineData("no-features", "it has no /FeatureSelections;")]
    public void Not_an_ilastik_project(string kind, string missing)
    {
        using var dir = new TempDir();
        var e = Assert.Throws<VolumeException>(() => IlastikProject.Open(Write(dir, kind)));
        Assert.Contains("is not an ilastik project", e.Message, StringComparison.Ordinal);
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_hdf5_file_is_not_a_project()
    {
        using var dir = new TempDir();
        PythonReference.Run("h5_small.py", "sample", dir["plain.h5"]);
        var e = Assert.Throws<VolumeException>(() => IlastikProject.Open(dir["plain.h5"]));
        Assert.Contains("plain.h5: is not an ilastik project: it has no /workflowName and no /FeatureSelections", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_and_non_hdf5_files()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<VolumeException>(() => IlastikProject.Open(dir["absent.ilp"]));
        Assert.Contains("absent.ilp: file not found", e.Message, StringComparison.Ordinal);
        File.WriteAllText(dir["text.ilp"], "{\"not\": \"hdf5\"}");
        e = Assert.Throws<VolumeException>(() => IlastikProject.Open(dir["text.ilp"]));
        Assert.Contains("text.ilp: is not an HDF5 file", e.Message, StringComparison.Ordinal);
    }

    private static string Write(TempDir dir, string kind)
    {
        string path = dir[$"{kind}.ilp"];
        PythonReference.Run("h5_small.py", "ilp", path, kind);
        return path;
    }
}
