using System.Diagnostics;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;
using ChunkSeg.Storage.Meshing;

namespace ChunkSeg.Pipelines;

/// <summary>
/// The worker's side of a distributed job: a pass's stage rebuilt from the job, exactly as the coordinator would have
/// built it in embedded mode. A pass of a run carries the run's <see cref="RunSpec"/> (<see cref="RunPipeline.SpecParameter"/>),
/// bound again here; a single-stage job (convert, features, predict) is named by the stage catalogue.
/// </summary>
public static class RunPasses
{
    /// <summary>Opens what one job pass needs (volumes, classifier, stage) after checking its paths against <paramref name="guard"/>.</summary>
    public static IJobProcessor Open(JobSpec spec, StoreGuard guard, string workerName, ComputeBackend backend)
    {
        var owned = new List<IDisposable>();
        try
        {
            // A mesh pass writes pieces beside its mesh file; every other pass writes a volume.
            bool meshPass = spec.Stage == MeshJob.PiecesStage;
            string outputPath = guard.Check(meshPass ? spec.Output : VolumeStore.ParseAddress(spec.Output).RootPath, "output");
            IVolume? input;
            IChunkStage stage;
            IVolume output;
            if (spec.Parameters.TryGetValue(RunPipeline.SpecParameter, out var json))
            {
                var run = RunSpec.FromJson(json, $"job {spec.Id}");
                string outDir = guard.Check(Path.GetFullPath(run.OutDir), "--out");
                StoreGuard.Within(outputPath, outDir);
                // Checked before anything is opened: a path outside the store is never read.
                guard.Check(VolumeStore.ParseAddress(run.Input).RootPath, "input");
                if (meshPass)
                {
                    // Marching cubes on the run's final labels, pieces into the mesh file's workspace.
                    StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
                    var labels = Own(VolumeStore.Open(spec.Input));
                    var task = new SurfaceTask(SurfaceSpec.FromParameters(spec.Parameters), labels, MeshWorkspace.For(outputPath));
                    var grid = new ChunkGrid(labels.Info.SpatialShape, 1, spec.ChunkShape, spec.Halo);
                    return new Processor(new ChunkWorker(spec, grid, task.RunRecorded, workerName), owned);
                }
                // The run's own backend named the coordinator's choice; this worker computes on its own device.
                var request = RunPipeline.Open(run) with { Backend = backend };
                owned.Add(request.Raw);
                var workspace = LabelWorkspace.For(Path.Combine(outDir, RunJob.Labels));
                output = Own(VolumeStore.Open(spec.Output, writable: true));
                switch (spec.Stage)
                {
                    case StageCatalog.Predict when request.ClassifiesFirst:
                        // A split's or an Otsu threshold's probabilities, predicted whole before them.
                        input = request.Raw;
                        stage = RunJob.SplitPredictStage(request);
                        break;
                    case "split-outline" or "split-distance" or "split-maxima" or "split-flood" when request.Split is not null:
                    case "label" when request.Split is not null:
                        var thresholded = ThresholdedAsTheCoordinator(spec, request);
                        (input, stage) = SplitPass(spec, thresholded, thresholded.Split!, workspace, outDir, backend, Own);
                        break;
                    case "label" when request.ClassifiesFirst:
                        // --threshold otsu without a split, or a sharded or multiscale export: the whole probabilities segmented
                        // (at the coordinator's threshold with otsu).
                        StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
                        input = Own(VolumeStore.Open(spec.Input));
                        stage = RunJob.ThresholdStage(ThresholdedAsTheCoordinator(spec, request), workspace, input.Info);
                        break;
                    case "label":
                        input = request.Raw;
                        var export = request.ExportProbabilities
                            ? Own(VolumeStore.Open(Path.Combine(outDir, RunJob.Probabilities) + StagedOutput.PartialSuffix, writable: true))
                            : null;
                        stage = RunJob.ClassifyStage(request, workspace, export);
                        break;
                    case StageCatalog.Downsample:
                        // A pyramid level of one of the run's outputs, from the level before it in the same staged store.
                        StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
                        input = Own(VolumeStore.Open(spec.Input));
                        stage = StageCatalog.Create(spec, output.Info.SpatialShape, output.Info.VoxelSize, backend);
                        break;
                    case "relabel":
                        // The local labels of pass 1, in the run's own workspace.
                        StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
                        input = Own(VolumeStore.Open(spec.Input));
                        stage = new RelabelStage(workspace, output.Info.DataType);
                        break;
                    case var pass when request.Morphology is { } morphology && pass == LabelJob.MorphologyPass(morphology):
                        // --dilate/--erode: the relabelled labels in the run's workspace, read with the pass's halo, and
                        // the raw image's mean intensity per object (one channel) as the coordinator's LabelJob takes it.
                        StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
                        input = Own(VolumeStore.Open(spec.Input));
                        var raw = request.Raw.Info;
                        stage = new LabelMorphologyStage(morphology, workspace, raw.SpatialShape, raw.Axes.HasZ, RunJob.IntensityOf(request));
                        break;
                    default:
                        throw new UsageException($"job {spec.Id}: a run has no pass \"{spec.Stage}\" (known: label, relabel, {MeshJob.PiecesStage}; " +
                            $"with --split also {StageCatalog.Predict}, split-outline, split-distance, split-maxima, split-flood; with --threshold otsu also " +
                            $"{StageCatalog.Predict}; with --dilate or --erode also label-dilate or label-erode)");
                }
            }
            else
            {
                // A single-stage job (convert, features, predict) named by the catalogue.
                if (!string.IsNullOrEmpty(spec.Input)) guard.Check(VolumeStore.ParseAddress(spec.Input).RootPath, "input");
                input = string.IsNullOrEmpty(spec.Input) ? null : Own(VolumeStore.Open(spec.Input));
                output = Own(VolumeStore.Open(spec.Output, writable: true));
                stage = StageCatalog.Create(spec, output.Info.SpatialShape, output.Info.VoxelSize, backend);
            }
            return new Processor(new ChunkWorker(spec, stage, input, output, workerName), owned);
        }
        catch
        {
            foreach (var d in owned) d.Dispose();
            throw;
        }

        T Own<T>(T disposable) where T : IDisposable
        {
            owned.Add(disposable);
            return disposable;
        }
    }

    /// <summary>
    /// A pass of a run's split (<see cref="SplitJob"/>, then the labelling of its flooded regions), rebuilt from the
    /// run's spec and the job's parameters: the inputs and workspaces lie in the run's folder, beside its labels (a
    /// <c>--voronoi-otsu</c> run's first passes read its raw image); the cut of <c>--split voronoi</c> is a constant,
    /// Voronoi-Otsu's is found from the workspace as the coordinator finds it; the grid is the job's chunks over the
    /// volume; the round, the stopped time points and each one's last iteration are the job's parameters.
    /// </summary>
    private static (IVolume Input, IChunkStage Stage) SplitPass(JobSpec spec, RunRequest request, SplitSpec split, LabelWorkspace workspace, string outDir,
        ComputeBackend backend, Func<IVolume, IVolume> own)
    {
        // A --voronoi-otsu run's first two passes read the raw image its spec names (opened, and checked against the store
        // root, with the spec); every other pass reads the run's own scratch. The split's volume is what it splits: the
        // raw image, or the run's probabilities.
        bool voronoiOtsu = split.Foreground is null;
        IVolume input;
        if (voronoiOtsu && spec.Stage is "split-outline" or "split-maxima")
        {
            input = request.Raw;
        }
        else
        {
            StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
            input = own(VolumeStore.Open(spec.Input));
        }
        var splitSpace = SplitJob.WorkspaceOf(workspace);
        var volume = voronoiOtsu ? request.Raw.Info : own(VolumeStore.Open(Path.Combine(outDir, RunJob.SplitProbabilities))).Info;
        bool threeD = volume.Axes.HasZ;
        var grid = new ChunkGrid(volume.SpatialShape, volume.TimePoints, spec.ChunkShape, Halo.None);
        IVolume Outline() => own(VolumeStore.Open(new VolumeAddress(VolumeFormat.Zarr, splitSpace.Outline, "")));
        switch (spec.Stage)
        {
            case "split-outline":
                return (input, SplitJob.FirstStage(split, splitSpace, threeD, backend));
            case "split-distance":
                return (input, SplitJob.DistanceStageOf(split.Watershed!, threeD));
            case "split-maxima" when split.IsDistance:
                return (input, new DistanceSeedsStage(split.Watershed!.MinDistance, threeD));
            case "split-maxima" when voronoiOtsu:
            {
                // The outline's histogram over each time point's range, as the coordinator found it from pass 1's extremes.
                var range = SplitJob.RangesOf(grid, splitSpace);
                return (input, SplitJob.MaximaStageOf(split, splitSpace, Outline(), t => range[t], volume.SpatialShape, threeD, backend));
            }
            case "split-maxima":
                return (input, SplitJob.MaximaStageOf(split, splitSpace, null, _ => throw new InvalidOperationException("--split voronoi reads no outline range"),
                    volume.SpatialShape, threeD, backend));
            case "split-flood":
            {
                int round = int.Parse(Parameter(spec, SplitJob.RoundParameter), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);
                var last = SplitJob.ParseLast(Parameter(spec, SplitJob.LastParameter));
                var outline = round == 0 ? Outline() : null;
                var watershed = split.IsDistance ? SplitJob.WatershedOf(spec.Parameters, own(VolumeStore.Open(new VolumeAddress(VolumeFormat.Zarr, splitSpace.Distance, "")))) : null;
                // Voronoi-Otsu's round 0 cuts the outline at each time point's Otsu threshold, found as the coordinator
                // found it (pass 2's row counts); --split cuts its 1/0 segmentation at a constant.
                Func<long, float> cutOf = _ => VoronoiOtsuSigmas.MaskCut;
                if (voronoiOtsu && round == 0)
                {
                    var cut = SplitJob.OtsuCuts(grid, splitSpace, SplitJob.RangesOf(grid, splitSpace));
                    cutOf = t => cut[t];
                }
                return (input, SplitJob.FloodStage(round, grid, splitSpace, threeD, outline, cutOf, last, watershed));
            }
            default:
                // "label": the final state's regions, with the raw image's mean intensity (one input channel) as the run gives it.
                var intensity = RunJob.IntensityOf(request);
                return (input, SplitJob.LabelStageOf(workspace, volume, intensity, SplitJob.ParseLast(Parameter(spec, SplitJob.LastParameter))));
        }
    }

    /// <summary>
    /// <paramref name="request"/> as the coordinator labels it: with <c>--threshold otsu</c>, thresholded at the threshold it
    /// found (the job's <see cref="RunJob.OtsuParameter"/>); any other run as it is.
    /// </summary>
    private static RunRequest ThresholdedAsTheCoordinator(JobSpec spec, RunRequest request)
    {
        if (!request.OtsuThreshold) return request;
        string text = Parameter(spec, RunJob.OtsuParameter);
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double otsu) || !double.IsFinite(otsu))
            throw new UsageException($"job {spec.Id}: the {spec.Stage} pass's {RunJob.OtsuParameter} \"{text}\" is not a threshold");
        return RunJob.ThresholdedAt(request, otsu);
    }

    private static string Parameter(JobSpec spec, string name) =>
        spec.Parameters.TryGetValue(name, out var value) ? value : throw new UsageException($"job {spec.Id}: the {spec.Stage} pass carries no \"{name}\" parameter");

    private sealed class Processor(ChunkWorker worker, List<IDisposable> owned) : IJobProcessor
    {
        public object Process(ProcessChunk command, ActivityContext parent) => worker.Process(command, parent);

        public void Dispose()
        {
            foreach (var d in owned) d.Dispose();
        }
    }
}
