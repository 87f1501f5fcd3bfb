using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Pipelines;

/// <summary>
/// A <see cref="RunSpec"/> bound and run: <see cref="Open"/> checks it against its input and classifier (what `chunkseg
/// run` does before any work, and a worker before it rebuilds a pass), <see cref="ExecuteAsync"/> is a coordinator's whole
/// run with its chunk passes sent to remote workers. The embedded run is <see cref="Open"/> then <see cref="RunJob.RunAsync"/>.
/// </summary>
public static class RunPipeline
{
    /// <summary>The job parameter carrying the run's <see cref="RunSpec"/> (its JSON) to the workers of its chunk passes.</summary>
    public const string SpecParameter = "run.spec";

    /// <summary>The run <paramref name="spec"/> asks for, checked against the input and the classifier; the caller disposes its Raw volume.</summary>
    public static RunRequest Open(RunSpec spec)
    {
        string? meshFormat = spec.Mesh switch
        {
            "obj" => "obj",
            "ply" => "ply",
            "none" => null,
            var other => throw new UsageException($"--mesh {other}: use obj, ply or none"),
        };
        var requestedCompute = OptionValues.ParseLong3("--chunk", spec.Chunk);
        // Compute chunks are whole storage chunks: a --chunk alone sets both, so it is honoured as given.
        var requestedChunks = OptionValues.ParseLong3("--chunks", spec.Chunks) ?? requestedCompute;
        int workerCount = OptionValues.CheckWorkers(spec.Workers ?? Environment.ProcessorCount);
        var filter = OptionValues.Filter(spec.MinSize, spec.MaxSize, spec.ExcludeBorder);
        var morphology = OptionValues.Morphology(spec.Dilate, spec.Erode);
        var zarr = ZarrLayout.Parse(spec.Format, spec.Shard);
        int? levels = OptionValues.Pyramid(spec.Levels, null, DownsampleMethod.Mode).Levels;

        var source = VolumeStore.Open(spec.Input, OptionValues.ParseAxes(spec.Axes));
        try
        {
            var info = source.Info;
            if (spec.VoronoiOtsu is not null)
            {
                var voronoiOtsu = VoronoiOtsuOf(spec, info);
                return new RunRequest(source, Path.GetFullPath(spec.OutDir), null, new Dictionary<string, string>(), SplitJob.RegionSegmentation,
                    SplitJob.RegionConnectivity, filter, meshFormat, ExportProbabilities: false, requestedCompute, requestedChunks, workerCount, spec.Overwrite)
                {
                    Split = voronoiOtsu,
                    Morphology = morphology,
                    Zarr = zarr,
                    Levels = levels,
                };
            }
            if (spec.OutlineSigma is not null) throw new UsageException("--outline-sigma goes with --voronoi-otsu SPOT,OUTLINE");
            if (spec.Ilp is null && spec.Model is null)
                throw new UsageException("run: give a classifier, --ilp PROJECT.ilp or --model MODEL, or label the raw image without one: --voronoi-otsu SPOT,OUTLINE");
            var (loaded, classifierParameters) = OptionValues.LoadClassifier(spec.Ilp, spec.Model, spec.VigraStructureTensor, info);
            if (loaded.Classifier.FeatureCount != loaded.Features.ChannelCount(info.SpatialShape.Z, (int)info.Channels))
                throw new UsageException($"{loaded.Source} on {info.Location}: the classifier reads {loaded.Classifier.FeatureCount} features but its feature " +
                    $"selection gives {loaded.Features.ChannelCount(info.SpatialShape.Z, (int)info.Channels)} for {info.Channels} channel(s)");
            string classes = $"the classifier's {loaded.Classifier.OutputChannels} classes ({string.Join(", ", loaded.ClassNames)})";
            if (spec.OtsuThreshold && spec.Threshold is not null)
                throw new UsageException($"--threshold is a number or otsu; this run asks for both ({spec.Threshold.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} and otsu)");
            var segmentation = OptionValues.ProbabilitySegmentation(classes, loaded.Classifier.OutputChannels, info, spec.Threshold, spec.Channel, spec.Argmax,
                spec.Foreground, spec.SmoothSigma);
            // --threshold otsu: the threshold is found once the probabilities are written whole (RunJob); until then the default stands in.
            if (spec.OtsuThreshold) OtsuSegmentation.Check(segmentation);
            var split = OptionValues.SeededSplit(spec.Split, spec.SpotSigma, spec.MinDistance, spec.Connectivity, () => segmentation, info);
            return new RunRequest(source, Path.GetFullPath(spec.OutDir), loaded, classifierParameters, segmentation,
                split is null ? OptionValues.ConnectivityOf(info, spec.Connectivity) : Kernels.Labeling.Connectivity.All, filter,
                meshFormat, spec.ExportProbabilities, requestedCompute, requestedChunks, workerCount, spec.Overwrite)
            {
                Split = split,
                Morphology = morphology,
                OtsuThreshold = spec.OtsuThreshold,
                Zarr = zarr,
                Levels = levels,
            };
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <c>--voronoi-otsu SPOT,OUTLINE</c>: the raw image labelled as clEsperanto's voronoi_otsu_labeling labels it, so no
    /// classifier and none of the options that describe a segmentation of probabilities.
    /// </summary>
    private static SplitSpec VoronoiOtsuOf(RunSpec spec, VolumeInfo info)
    {
        string? given = (spec.Ilp, spec.Model) switch
        {
            (not null, _) => "--ilp",
            (_, not null) => "--model",
            _ => spec.VigraStructureTensor ? "--vigra-structure-tensor"
                : spec.Split is not null ? "--split"
                : spec.OtsuThreshold || spec.Threshold is not null ? "--threshold"
                : spec.Channel is not null ? "--channel"
                : spec.Argmax ? "--argmax"
                : spec.Foreground is not null ? "--foreground"
                : spec.SmoothSigma is not null ? "--smooth-sigma"
                : spec.MinDistance is not null ? "--min-distance"
                : spec.ExportProbabilities ? "--export-probabilities"
                : null,
        };
        if (given is not null)
            throw new UsageException($"--voronoi-otsu segments the raw image itself (Otsu's threshold of its outline blur), with no classifier; {given} does not apply");
        if (spec.Connectivity is not null)
            throw new UsageException("--voronoi-otsu labels the flooded regions, which grow through all 26 (8 in 2D) neighbours; --connectivity does not apply");
        return OptionValues.VoronoiOtsu(spec.VoronoiOtsu, spec.SpotSigma, spec.OutlineSigma, info)!;
    }

    /// <summary>
    /// A coordinator's run of <paramref name="spec"/>: <see cref="RunJob"/>'s pipeline with its chunk passes (classify +
    /// label, or with --split or --threshold otsu the predict pass, then the split's passes or the labelling; relabel, the
    /// mesh's marching cubes) sent through <paramref name="remoteTransport"/>, each pass's job carrying
    /// the spec (<see cref="SpecParameter"/>, for <see cref="RunPasses.Open"/>) and <paramref name="extraJobParameters"/>;
    /// the coordinator's own steps (merge, HDF5 copies, weld) run here. <paramref name="resuming"/>: the run was started
    /// before (by this coordinator or its predecessor) and its outputs are its own, so the spec's overwrite is dropped.
    /// A pass with failed chunks ends the run with <see cref="RunIncompleteException"/>.
    /// </summary>
    public static async Task<RunOutcome> ExecuteAsync(RunSpec spec, Func<IChunkTransport> remoteTransport, IReadOnlyDictionary<string, string>? extraJobParameters,
        ILoggerFactory logs, IRunMonitor monitor, bool resuming, CancellationToken ct)
    {
        if (resuming) spec = spec with { Overwrite = false };
        var parameters = new Dictionary<string, string>(extraJobParameters ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [SpecParameter] = spec.ToJson(),
        };
        var request = Open(spec);
        using var raw = request.Raw;
        request = request with { RemoteTransport = () => new ParameterizedTransport(remoteTransport(), parameters) };
        return await RunJob.RunAsync(request, logs, monitor, ct).ConfigureAwait(false);
    }

    /// <summary>A transport that adds <paramref name="parameters"/> to every job it starts (what a worker needs to rebuild the pass).</summary>
    private sealed class ParameterizedTransport(IChunkTransport inner, IReadOnlyDictionary<string, string> parameters) : IChunkTransport
    {
        public Task StartAsync(JobSpec job, ChunkGrid grid, CancellationToken cancellationToken)
        {
            var merged = new Dictionary<string, string>(job.Parameters, StringComparer.Ordinal);
            foreach (var (key, value) in parameters) merged[key] = value;
            return inner.StartAsync(job with { Parameters = merged }, grid, cancellationToken);
        }

        public ValueTask SendAsync(ProcessChunk command, CancellationToken cancellationToken) => inner.SendAsync(command, cancellationToken);

        public IAsyncEnumerable<object> Results(CancellationToken cancellationToken) => inner.Results(cancellationToken);

        public Task CompleteAsync() => inner.CompleteAsync();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
