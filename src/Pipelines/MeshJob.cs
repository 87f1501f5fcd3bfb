using ChunkSeg.Contracts.Memory;
using System.Diagnostics;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Manifest;
using ChunkSeg.Coordinator.Meshing;
using ChunkSeg.Coordinator.Planning;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Meshing;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Meshing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChunkSeg.Pipelines;

/// <summary>What `chunkseg mesh` asks for. <see cref="DecimateFraction"/> 1 and <see cref="TaubinIterations"/> 0 leave the welded mesh as it is.</summary>
public sealed record MeshRequest(
    IVolume Input,
    string OutputPath,
    SurfaceSpec Surface,
    VoxelSize VoxelSize,
    bool ArrayOrder,
    bool Normals,
    int TaubinIterations,
    double DecimateFraction,
    Long3? ChunkShape,
    int Workers,
    bool Overwrite)
{
    /// <summary>Where the smoothing before marching cubes runs (marching cubes itself stays on the CPU).</summary>
    public GpuNode.Backends.ComputeBackend Backend { get; init; } = GpuNode.Backends.ComputeBackend.Cpu;

    /// <summary>Carries pass 1's chunks to remote workers (the distributed mode); null runs them on this machine.</summary>
    public Func<IChunkTransport>? Transport { get; init; }
}

/// <summary>How a meshing job ended.</summary>
public sealed record MeshOutcome(long Chunks, long ChunksResumed, Long3 ChunkShape, WeldSummary Weld, TimeSpan ExtractTime, TimeSpan WeldTime);

/// <summary>
/// Meshing in two passes:
/// <code>
///   1 extract  (workers)      marching cubes on each chunk's cells → OUT.work/pieces/N.bin, a job of its own through
///                             the chunk transport (threads here, or remote workers); resumable: OUT.work/pieces.jsonl
///                             is its manifest
///   2 weld     (coordinator)  one mesh, vertices shared across chunk borders by id: label surfaces object by
///                             object from the pieces' label sections, a single surface slab by slab; streamed
///                             to OUT.partial, smoothed/decimated per object if asked, renamed to OUT
/// </code>
/// The written file is the same for every chunk shape and worker count.
/// </summary>
public static class MeshJob
{
    /// <summary>The job stage name of pass 1 (what a remote worker is asked to run).</summary>
    public const string PiecesStage = "mesh";

    public static async Task<MeshOutcome> RunAsync(MeshRequest request, ILoggerFactory? logs, IProgress<(long Done, long Total)>? progress, CancellationToken ct)
    {
        var info = request.Input.Info;
        string output = Path.GetFullPath(request.OutputPath);
        var workspace = MeshWorkspace.For(output);
        if (File.Exists(output) && !request.Overwrite)
            throw new UsageException($"{output}: output already exists; pass --overwrite to replace it");
        var parameters = new SortedDictionary<string, string>(StringComparer.Ordinal);
        request.Surface.AddTo(parameters);
        string jobKey = $"mesh {info.Location} chunk {request.ChunkShape?.ToString() ?? "auto"} " +
            string.Join(' ', parameters.Select(p => $"{p.Key}={p.Value}"));
        if (request.Overwrite) workspace.Delete();
        workspace.Begin(jobKey, request.Overwrite);

        var task = new SurfaceTask(request.Surface, request.Input, workspace, request.Backend);
        long bytesPerVoxel = info.Channels * info.DataType.SizeInBytes() * 2 + (request.Surface.Kind == SurfaceKind.PerLabel ? 8 : 16);
        // A chunk shape asked for is honoured as given; the default one is aligned to the input's storage chunks.
        var align = request.ChunkShape is null ? info.SpatialStorageChunks : Long3.Uniform(1);
        var grid = ChunkPlanner.Plan(info.SpatialShape, 1, align, request.ChunkShape, task.RequiredHalo, bytesPerVoxel);

        // Pass 1: pieces, as a job: the same runner (retries, manifest, failures by chunk) whether the chunks go to
        // threads here or to remote workers, which rebuild the task from the job's parameters.
        var clock = Stopwatch.StartNew();
        var job = new JobSpec(EmbeddedJob.JobIdOf($"{jobKey} -> {output}"),
            PiecesStage, info.Location, output, grid.ChunkShape, grid.Halo, parameters);
        JobResult result;
        using (var manifest = ChunkManifest.OpenOrCreate(workspace.ManifestPath, jobKey, grid.Count))
        {
            int next = 0;
            await using var transport = request.Transport?.Invoke() ?? new InProcessTransport(request.Workers,
                spec => new ChunkWorker(spec, grid, task.RunRecorded, $"local-{Interlocked.Increment(ref next)}").Process);
            var runner = new JobRunner(transport, (logs ?? NullLoggerFactory.Instance).CreateLogger<JobRunner>());
            result = await runner.RunAsync(job, grid, manifest,
                progress is null ? null : new SynchronousProgress<JobProgress>(p => progress.Report((p.ChunksDone, p.ChunksTotal))), ct).ConfigureAwait(false);
        }
        if (!result.IsComplete) throw new RunIncompleteException(output, result);
        long resumed = result.ChunksSkipped;
        var extractTime = clock.Elapsed;
        ChunkBufferPool.TrimShared();

        // Pass 2: weld and write.
        clock.Restart();
        var coordinates = new MeshCoordinates(info.SpatialShape, request.VoxelSize, request.ArrayOrder);
        bool perLabel = request.Surface.Kind == SurfaceKind.PerLabel;
        WeldSummary summary;
        using (var writer = MeshFileWriter.Create(output, HeaderOf(request, info), labelled: perLabel))
        {
            summary = perLabel
                ? new LabelWelder(coordinates, request.Normals, FinishOf(request), request.Workers).Weld(Indexes(grid, workspace, request.Workers), workspace.ReadSection, writer)
                : new SurfaceWelder(grid, workspace.ReadPiece, coordinates, request.Normals, FinishOf(request)).WeldSurface(0, writer);
        }
        workspace.Delete();
        return new MeshOutcome(grid.Count, resumed, grid.ChunkShape, summary, extractTime, clock.Elapsed);
    }

    private static Func<TriangleMesh, TriangleMesh>? FinishOf(MeshRequest request)
    {
        if (request.TaubinIterations == 0 && request.DecimateFraction >= 1) return null;
        return mesh =>
        {
            if (request.TaubinIterations > 0) mesh = MeshSmoothing.Taubin(mesh, request.TaubinIterations);
            if (request.DecimateFraction < 1) mesh = MeshDecimation.Decimate(mesh, request.DecimateFraction);
            return mesh;
        };
    }

    /// <summary>Every piece's header (counts and label sections), read in parallel.</summary>
    private static PieceIndex[] Indexes(ChunkGrid grid, MeshWorkspace workspace, int workers)
    {
        var indexes = new PieceIndex[grid.Count];
        Parallel.For(0, grid.Count, new ParallelOptions { MaxDegreeOfParallelism = workers }, c => indexes[c] = workspace.ReadIndex(c));
        return indexes;
    }

    private static List<string> HeaderOf(MeshRequest request, VolumeInfo info)
    {
        var s = request.Surface;
        string what = s.Kind switch
        {
            SurfaceKind.PerLabel => "one closed surface per label (objects named label_<id>)",
            SurfaceKind.Foreground => $"surface of the non-zero voxels{(s.Smooths ? $", Gaussian sigma {s.Smoothing} voxels, isovalue {s.Isovalue}" : "")}",
            _ => $"isosurface of channel {s.Channel} at {s.Isovalue}{(s.Smooths ? $", Gaussian sigma {s.Smoothing} voxels" : "")}",
        };
        var v = request.VoxelSize;
        return
        [
            $"ChunkSeg {typeof(MeshJob).Assembly.GetName().Version} marching cubes of {info.Location}" + (info.TimePoints > 1 ? $" at t={s.TimePoint}" : ""),
            what,
            $"units: micrometer (voxel size z,y,x = {v.Z},{v.Y},{v.X})",
            request.ArrayOrder ? "vertex coordinates: z y x (array order)" : "vertex coordinates: x y z",
            $"post-processing: {(request.TaubinIterations > 0 ? $"Taubin smoothing x{request.TaubinIterations}" : "no smoothing")}, " +
                (request.DecimateFraction < 1 ? $"decimated to {request.DecimateFraction:0.###} of the triangles" : "not decimated"),
        ];
    }
}
