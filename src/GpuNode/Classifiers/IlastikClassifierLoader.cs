using ChunkSeg.Contracts.Errors;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.GpuNode.Classifiers;

/// <summary>Builds the <see cref="IlastikClassifier"/> of an ilastik project from its stored vigra forests (Storage → Kernels glue).</summary>
public static class IlastikClassifierLoader
{
    /// <summary>One <see cref="RandomForest"/> of a stored vigra forest; a <see cref="VolumeException"/> naming the forest when it is malformed.</summary>
    public static RandomForest ToRandomForest(VigraForestData data, string location)
    {
        ArgumentNullException.ThrowIfNull(data);
        try
        {
            return VigraForestConverter.FromVigra(
                data.Trees.Select(t => t.Topology).ToArray(), data.Trees.Select(t => t.Parameters).ToArray(),
                data.ColumnCount, data.Labels.Select(l => checked((int)l)).ToArray(), data.PredictWeighted);
        }
        catch (ArgumentException e)
        {
            throw new VolumeException($"{location}: {data.Name}", e.Message);
        }
    }

    /// <summary>The project's classifier: its forests in sorted name order, its known labels, one channel per label name.</summary>
    public static IlastikClassifier Load(IlastikProject project)
    {
        ArgumentNullException.ThrowIfNull(project);
        var forests = project.ReadForests().Select(f => ToRandomForest(f, project.Path)).ToArray();
        try
        {
            return new IlastikClassifier(forests, project.KnownLabels(), project.LabelNames().Length);
        }
        catch (ArgumentException e)
        {
            throw new VolumeException(project.Path, $"has an inconsistent classifier: {e.Message}");
        }
    }
}
