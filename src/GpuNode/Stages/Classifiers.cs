using ChunkSeg.Contracts.Errors;
using ChunkSeg.GpuNode.Classifiers;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Storage.Ilastik;
using ChunkSeg.Storage.Models;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>A loaded pixel classifier and the feature selection it reads.</summary>
public sealed record LoadedClassifier(FeatureSet Features, IPixelClassifier Classifier, string[] ClassNames, int? InputChannels, string Source);

/// <summary>Loads classifiers from ilastik projects (vigra forests) and from ChunkSeg model files.</summary>
public static class ClassifierLoader
{
    /// <summary>
    /// An ilastik Pixel Classification project: its feature selection and its forests, combined as ilastik
    /// combines them. <paramref name="vigraStructureTensor"/> is the compatibility switch for projects saved by
    /// an ilastik without fastfilters (ILASTIK_RECIPE §1).
    /// </summary>
    public static LoadedClassifier FromIlastik(string ilpPath, bool vigraStructureTensor = false)
    {
        using var project = IlastikProject.Open(ilpPath);
        var selection = project.ReadFeatureSelection();
        FeatureSet set;
        try
        {
            set = FeatureSet.FromIlastikSelection(selection.FeatureIds, selection.Scales, selection.Selection, selection.ComputeIn2d);
        }
        catch (ArgumentException e)
        {
            throw new VolumeException(ilpPath, $"FeatureSelections: {e.Message}", e);
        }
        if (vigraStructureTensor) set = set.WithVigraStructureTensor();
        var names = project.LabelNames();
        var classifier = new IlastikForestClassifier(IlastikClassifierLoader.Load(project));
        return new LoadedClassifier(set, classifier, names, null, ilpPath);
    }

    /// <summary>A model written by `chunkseg train`.</summary>
    public static LoadedClassifier FromModel(string path)
    {
        var model = ForestModelFile.Load(path);
        FeatureSet set;
        RandomForest forest;
        try
        {
            set = FeatureSet.Parse(model.FeatureSpec);
            if (model.AxisScales is { } scales) set = set.WithAxisScales(Sigma3.Parse(scales));
            if (model.VigraStructureTensor) set = set.WithVigraStructureTensor();
            forest = new RandomForest(model.Trees.Select(t => new DecisionTree(t.Feature, t.Threshold, t.Left, t.Right, t.LeafValues, model.ClassLabels.Length)).ToList(),
                model.FeatureCount, model.ClassLabels);
        }
        catch (ArgumentException e)
        {
            throw new VolumeException(path, $"is corrupt: {e.Message}", e);
        }
        return new LoadedClassifier(set, new ForestClassifier(forest), model.ClassNames, model.InputChannels, path);
    }

    /// <summary>The flat trees of a trained forest, for <see cref="ForestModelFile"/>.</summary>
    public static IReadOnlyList<TreeArrays> ToArrays(RandomForest forest) =>
        forest.Trees.Select(t => new TreeArrays(t.Feature, t.Threshold, t.Left, t.Right, t.LeafValues)).ToList();
}

/// <summary>One forest as a classifier: class index i → output channel i.</summary>
public sealed class ForestClassifier(RandomForest forest) : IPixelClassifier
{
    public RandomForest Forest => forest;
    public int FeatureCount => forest.FeatureCount;
    public int OutputChannels => forest.ClassCount;

    public void Predict(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> probabilities) =>
        ForestPredictor.PredictProbabilities(forest, planarFeatures, voxelCount, probabilities);
}

/// <summary>ilastik's forest of forests as a classifier: one output channel per label name.</summary>
public sealed class IlastikForestClassifier(IlastikClassifier classifier) : IPixelClassifier
{
    public IlastikClassifier Classifier => classifier;

    public int FeatureCount => classifier.FeatureCount;
    public int OutputChannels => classifier.LabelCount;

    public void Predict(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> probabilities) =>
        classifier.PredictProbabilities(planarFeatures, voxelCount, probabilities);
}
