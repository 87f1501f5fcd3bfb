using System.Diagnostics;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
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
                    case "label":
                        input = request.Raw;
                        var export = request.ExportProbabilities
                            ? Own(VolumeStore.Open(Path.Combine(outDir, RunJob.Probabilities) + StagedOutput.PartialSuffix, writable: true))
                            : null;
                        stage = RunJob.ClassifyStage(request, workspace, export);
                        break;
                    case "relabel":
                        // The local labels of pass 1, in the run's own workspace.
                        StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
                        input = Own(VolumeStore.Open(spec.Input));
                        stage = new RelabelStage(workspace, output.Info.DataType);
                        break;
                    default:
                        throw new UsageException($"job {spec.Id}: a run has no pass \"{spec.Stage}\" (known: label, relabel, {MeshJob.PiecesStage})");
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

    private sealed class Processor(ChunkWorker worker, List<IDisposable> owned) : IJobProcessor
    {
        public object Process(ProcessChunk command, ActivityContext parent) => worker.Process(command, parent);

        public void Dispose()
        {
            foreach (var d in owned) d.Dispose();
        }
    }
}
