using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ChunkSeg.Cluster.Coordination;
using ChunkSeg.Cluster.Node;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Cli.Jobs;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;
using ChunkSeg.Storage.Meshing;
using ChunkSeg.Contracts.Geometry;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Cli.Distributed;

/// <summary>
/// A distributed run, both ends: the coordinator runs `chunkseg run`'s own pipeline (<see cref="RunJob"/>) with its chunk
/// passes sent through the broker, and a worker rebuilds each pass's stage from the run's arguments, which travel in
/// the job's parameters, exactly as the coordinator would have built it in embedded mode.
/// </summary>
internal static class RemoteJobs
{
    /// <summary>The job parameter holding the run's arguments (a JSON array of strings).</summary>
    public const string RunArgumentsParameter = "run.arguments";

    /// <summary>Parses a job's `run` arguments; bad arguments are a usage error naming them.</summary>
    public static (RunArguments Arguments, ParseResult Parse) ParseRun(IReadOnlyList<string> args)
    {
        var arguments = new RunArguments();
        var command = new Command("run");
        arguments.AddTo(command);
        var parse = command.Parse([.. args]);
        if (parse.Errors.Count > 0)
            throw new UsageException($"job arguments \"{string.Join(' ', args)}\": {string.Join("; ", parse.Errors.Select(e => e.Message))}");
        return (arguments, parse);
    }

    /// <summary>The output folder a job's run arguments name (absolute).</summary>
    public static string OutDirOf(IReadOnlyList<string> args)
    {
        var (arguments, parse) = ParseRun(args);
        return arguments.OutDirOf(parse);
    }

    /// <summary>The coordinator's side: runs a submitted job to its end, its chunk passes through the cluster.</summary>
    public static async Task ExecuteAsync(ClusterJob job, Func<IReadOnlyDictionary<string, string>, IChunkTransport> transports, IJobProgress progress,
        ILoggerFactory logs, CancellationToken ct)
    {
        var args = (JsonSerializer.Deserialize<string[]>(job.Submitted.Run) ?? throw new UsageException($"job {job.Submitted.Id}: empty run")).ToList();
        // A job this coordinator (or its predecessor) already started resumes: its earlier outputs are its own.
        if (job.Resuming) args.RemoveAll(a => a == "--overwrite");
        var (arguments, parse) = ParseRun(args);
        var request = arguments.Bind(parse);
        using var raw = request.Raw;
        var extra = new Dictionary<string, string> { [RunArgumentsParameter] = JsonSerializer.Serialize(args) };
        request = request with { RemoteTransport = () => transports(extra) };
        try
        {
            await RunJob.RunAsync(request, logs, new ProgressMonitor(progress), ct).ConfigureAwait(false);
        }
        catch (RunIncompleteException e)
        {
            progress.Failed(e.Result.Failed.Select(f => $"chunk {f.Chunk.Value}: {f.Reason}").ToList());
            throw;
        }
    }

    /// <summary>The worker's side: opens what one job pass needs (volumes, classifier, stage) after checking its paths.</summary>
    public static IPassProcessor Open(JobSpec spec, StoreGuard guard, string workerName, ComputeBackend backend)
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
            if (spec.Parameters.TryGetValue(RunArgumentsParameter, out var json))
            {
                var args = JsonSerializer.Deserialize<string[]>(json) ?? throw new UsageException($"job {spec.Id}: empty run arguments");
                var (arguments, parse) = ParseRun(args);
                string outDir = guard.Check(arguments.OutDirOf(parse), "--out");
                StoreGuard.Within(outputPath, outDir);
                // Checked before anything is opened: a path outside the store is never read.
                guard.Check(VolumeStore.ParseAddress(parse.GetValue(arguments.Input)!).RootPath, "input");
                if (meshPass)
                {
                    // Marching cubes on the run's final labels, pieces into the mesh file's workspace.
                    StoreGuard.Within(VolumeStore.ParseAddress(spec.Input).RootPath, outDir);
                    var labels = Own(VolumeStore.Open(spec.Input));
                    var task = new SurfaceTask(SurfaceSpec.FromParameters(spec.Parameters), labels, MeshWorkspace.For(outputPath));
                    var grid = new ChunkGrid(labels.Info.SpatialShape, 1, spec.ChunkShape, spec.Halo);
                    return new Processor(new ChunkWorker(spec, grid, task.RunRecorded, workerName), owned);
                }
                // The run's own --backend named the coordinator's choice; this worker computes on its own device.
                var request = arguments.Bind(parse) with { Backend = backend };
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

    private sealed class Processor(ChunkWorker worker, List<IDisposable> owned) : IPassProcessor
    {
        public object Process(ProcessChunk command, ActivityContext parent) => worker.Process(command, parent);

        public void Dispose()
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    /// <summary>Reports a run's stage and chunk counts to the coordinator (what status shows).</summary>
    private sealed class ProgressMonitor(IJobProgress progress) : IRunMonitor
    {
        public void Plan(IReadOnlyList<(string Stage, double Weight)> stages) { }

        public IProgress<Coordinator.Execution.JobProgress> Begin(string stage)
        {
            progress.Report(stage, 0, 0);
            return new SynchronousProgress<Coordinator.Execution.JobProgress>(p => progress.Report(stage, p.ChunksDone, p.ChunksTotal));
        }

        public void End(string stage) { }
    }
}
