using System.Globalization;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>Builds a job's stage from its <see cref="JobSpec"/>, so a worker anywhere can run any job.</summary>
public static class StageCatalog
{
    public const string Convert = "convert";
    public const string Synthesize = "synthesize";
    public const string Features = "features";
    public const string Predict = "predict";
    public const string Downsample = "downsample";

    /// <summary>The classifier a predict job names: "ilp" (an ilastik project) or "model" (a ChunkSeg model file).</summary>
    public static LoadedClassifier ClassifierOf(IReadOnlyDictionary<string, string> parameters) =>
        parameters.TryGetValue("ilp", out var ilp)
            ? ClassifierLoader.FromIlastik(ilp, parameters.GetValueOrDefault("structureTensor") == "vigra")
            : ClassifierLoader.FromModel(parameters["model"]);

    private static PredictStage PredictStageOf(IReadOnlyDictionary<string, string> parameters, long volumeZ, ComputeBackend? backend)
    {
        var loaded = ClassifierOf(parameters);
        return new PredictStage(loaded.Features, volumeZ, int.Parse(parameters["inputChannels"], CultureInfo.InvariantCulture), loaded.Classifier, backend);
    }

    /// <summary>
    /// The job's feature selection: "features" (a spec), optional per-axis sigma factors "axisScales" (z,y,x)
    /// and "structureTensor" = "vigra" for projects from ilastik builds without fastfilters.
    /// </summary>
    public static Kernels.Features.FeatureSet FeatureSetOf(IReadOnlyDictionary<string, string> parameters)
    {
        var set = Kernels.Features.FeatureSet.Parse(parameters["features"]);
        if (parameters.TryGetValue("axisScales", out var scales)) set = set.WithAxisScales(Kernels.Features.Sigma3.Parse(scales));
        if (parameters.TryGetValue("structureTensor", out var st) && st == "vigra") set = set.WithVigraStructureTensor();
        return set;
    }

    /// <param name="backend">Where features and forests run (default: the CPU).</param>
    public static IChunkStage Create(JobSpec job, Long3 outputShape, VoxelSize voxelSize, ComputeBackend? backend = null) =>
        Create(job.Stage, job.Parameters, outputShape, voxelSize, backend);

    /// <param name="backend">Where features and forests run (default: the CPU).</param>
    public static IChunkStage Create(string stage, IReadOnlyDictionary<string, string> parameters, Long3 outputShape, VoxelSize voxelSize,
        ComputeBackend? backend = null) => stage switch
    {
        Convert => new ConvertStage(),
        Synthesize => new SynthesizeStage(outputShape, voxelSize,
            int.Parse(parameters.GetValueOrDefault("nuclei", "150"), CultureInfo.InvariantCulture),
            ulong.Parse(parameters.GetValueOrDefault("seed", "42"), CultureInfo.InvariantCulture),
            Enum.Parse<SyntheticKind>(parameters.GetValueOrDefault("kind", nameof(SyntheticKind.Raw)), ignoreCase: true)),
        Features => new FeaturesStage(FeatureSetOf(parameters), outputShape.Z,
            int.Parse(parameters["inputChannels"], CultureInfo.InvariantCulture), backend),
        Predict => PredictStageOf(parameters, outputShape.Z, backend),
        Downsample => DownsampleStage.FromParameters(parameters),
        _ => throw new ArgumentException($"unknown stage \"{stage}\"; known: {Convert}, {Synthesize}, {Features}, {Predict}, {Downsample}"),
    };
}
