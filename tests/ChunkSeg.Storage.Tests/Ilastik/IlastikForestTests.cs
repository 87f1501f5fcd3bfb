using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.Storage.Tests.Ilastik;

/// <summary>IlastikProject.ReadForests/KnownLabels against h5py on the fixtures, and the errors of projects it cannot apply.</summary>
public sealed class IlastikForestTests
{
    private sealed record TreeRef(string Name, int[] Topology, double[] Parameters);
    private sealed record ForestRef(string Name, int ColumnCount, int ClassCount, uint[] Labels, bool PredictWeighted, TreeRef[] Trees);
    private sealed record Reference(ForestRef[] forests, uint[]? known_labels);

    [Theory]
    [InlineData("ilastik/PixelClass3D.ilp", 10, 100)]
    [InlineData("ilastik/PixelClass.ilp", 8, 100)]
    public void Forests_match_h5py(string relative, int forestCount, int treeCount)
    {
        string path = SharedData.Require(relative);
        var expected = JsonSerializer.Deserialize<Reference>(PythonReference.Run("ilp_forests.py", "dump", path))!;
        using var project = IlastikProject.Open(path);
        var forests = project.ReadForests();
        Assert.Equal(expected.forests.Length, forests.Count);
        Assert.Equal(forestCount, forests.Count);
        Assert.Equal(treeCount, forests.Sum(f => f.Trees.Count));
        for (int i = 0; i < forests.Count; i++)
        {
            var (want, got) = (expected.forests[i], forests[i]);
            Assert.Equal(want.Name, got.Name);
            Assert.Equal(want.ColumnCount, got.ColumnCount);
            Assert.Equal(want.ClassCount, got.ClassCount);
            Assert.Equal(want.Labels, got.Labels);
            Assert.Equal(want.PredictWeighted, got.PredictWeighted);
            Assert.Equal(want.Trees.Select(t => t.Name), got.Trees.Select(t => t.Name));
            for (int t = 0; t < want.Trees.Length; t++)
            {
                Assert.Equal(want.Trees[t].Topology, got.Trees[t].Topology);
                Assert.Equal(want.Trees[t].Parameters, got.Trees[t].Parameters);
            }
        }
        Assert.Equal(expected.known_labels, project.KnownLabels());
        Assert.Equal(project.FeatureNames().Length, forests[0].ColumnCount);
    }

    [Fact]
    public void Zero_padded_tree_names_keep_their_order()
    {
        using var project = IlastikProject.Open(SharedData.Require("ilastik/PixelClass.ilp"));
        Assert.Equal(["Tree_00", "Tree_01", "Tree_02"], project.ReadForests()[0].Trees.Take(3).Select(t => t.Name));
    }

    [Fact]
    public void Known_labels_default_to_one_to_K_in_older_projects()
    {
        using var dir = new TempDir();
        using var project = IlastikProject.Open(Make(dir, "no-known-labels"));
        Assert.Equal([1u, 2u], project.KnownLabels());
    }

    [Fact]
    public void A_project_without_a_trained_classifier_is_refused()
    {
        using var dir = new TempDir();
        using var project = IlastikProject.Open(Make(dir, "no-classifier"));
        var e = Assert.Throws<VolumeException>(() => project.ReadForests());
        Assert.Contains("the project has no trained classifier; train it in ilastik first", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => project.KnownLabels());
        Assert.Contains("no trained classifier", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_scikit_learn_classifier_is_refused_by_name()
    {
        using var dir = new TempDir();
        using var project = IlastikProject.Open(Make(dir, "sklearn"));
        var e = Assert.Throws<VolumeException>(() => project.ReadForests());
        Assert.Contains("pickled_type: names the classifier lazyflow.classifiers.sklearnLazyflowClassifier.SklearnLazyflowClassifier", e.Message, StringComparison.Ordinal);
        Assert.Contains("only ilastik's default vigra random forest", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_forest_group_without_vigras_version_attribute_is_refused()
    {
        using var dir = new TempDir();
        using var project = IlastikProject.Open(Make(dir, "no-vigra-attr"));
        var e = Assert.Throws<VolumeException>(() => project.ReadForests());
        Assert.Contains("ClassifierForests/Forest0001: has no attribute vigra_random_forest_version", e.Message, StringComparison.Ordinal);
    }

    internal static string Make(TempDir dir, string kind)
    {
        string path = dir[$"{kind}.ilp"];
        PythonReference.Run("ilp_forests.py", "make", SharedData.Require("ilastik/PixelClass3D.ilp"), path, kind);
        return path;
    }
}
