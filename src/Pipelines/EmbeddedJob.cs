using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Manifest;
using ChunkSeg.Coordinator.Planning;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Pipelines;

/// <summary>
/// What to run: one stage from an optional input volume to a new output volume. <see cref="Stage"/> is the
/// stage the command already built (so a classifier is loaded once); without it the stage is made from
/// <see cref="StageName"/> and <see cref="Parameters"/>, as a remote worker would. <see cref="Transport"/>, when given,
/// carries the chunks to workers elsewhere (the distributed mode) instead of to threads of this process.
/// </summary>
public sealed record JobRequest(
    string StageName,
    IVolume? Input,
    VolumeAddress Output,
    VolumeCreateOptions OutputOptions,
    Long3? ChunkShape,
    int Workers,
    bool Overwrite,
    IReadOnlyDictionary<string, string> Parameters,
    long? PlanningBytesPerVoxel = null,
    long MaxChunkBytes = 256L << 20,
    IChunkStage? Stage = null,
    Func<IChunkTransport>? Transport = null,
    PyramidRequest? Pyramid = null);

/// <summary>How a job ended, for the summary the CLI prints.</summary>
public sealed record JobOutcome(JobResult Result, ChunkGrid Grid, VolumeAddress Output, bool AlreadyComplete, bool Resumed);

/// <summary>
/// Runs a job on this machine: the coordinator and a pool of in-process workers talking through the
/// same transport contract the distributed mode uses. Output is staged and committed only when every
/// chunk is recorded in the manifest; a rerun after a crash resumes where the manifest stops.
/// </summary>
public static class EmbeddedJob
{
    public static async Task<JobOutcome> RunAsync(JobRequest request, ILoggerFactory logs, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var options = request.OutputOptions;
        if (request.Input is { } input && SameRoot(input.Info.Location, request.Output))
            throw new UsageException($"{request.Output}: the output must be a different file or store than the input " +
                $"({input.Info.Location}); outputs are written whole under a new name and renamed into place");
        var spatialShape = new Long3(ExtentOf(options, 'z'), ExtentOf(options, 'y'), ExtentOf(options, 'x'));
        var stage = request.Stage ?? StageCatalog.Create(request.StageName, request.Parameters, spatialShape, options.VoxelSize);
        var grid = Plan(request, stage.RequiredHalo);
        // A Zarr v3 output without a shard shape gets one shard per compute chunk (whole chunks): each writer owns its shard.
        if (request.Output.Format == VolumeFormat.Zarr) options = ShardedBy(options, grid.ChunkShape);

        // Identifies the job in the manifest: a rerun resumes only an unfinished output of the same job.
        string parameters = string.Join(' ', request.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
        string jobKey = $"{request.StageName} {request.Input?.Info.Location ?? "-"} -> {request.Output} chunk {grid.ChunkShape} halo {grid.Halo} {parameters}";
        // A pyramid (levels beyond 0) is planned before any work and is part of the job (PyramidPasses.cs).
        var pyramid = request.Pyramid is { } p && p.Levels != 1 ? PyramidPasses.Plan(p, request.Output, options) : null;
        if (pyramid is { Count: > 1 }) jobKey += PyramidPasses.KeyOf(pyramid, request.Pyramid!);

        if (!request.Overwrite && StagedOutput.IsCommitted(request.Output))
        {
            // Outputs are renamed into place only after their last chunk; if this very job made it, nothing is left to do.
            var summary = ChunkManifest.ReadSummary(StagedOutput.ManifestPathFor(request.Output));
            if (summary is not { } s || s.Job != jobKey || s.Done != s.Chunks)
                throw new UsageException($"{request.Output.RootPath}: output already exists; pass --overwrite to replace it");
            var done = new JobResult(grid.Count, 0, grid.Count, [], 0, TimeSpan.Zero);
            return new JobOutcome(done, grid, request.Output, AlreadyComplete: true, Resumed: false);
        }

        using var staged = StagedOutput.Begin(request.Output, options, request.Overwrite);
        // The id follows from the job: a coordinator restarted mid-pass (or a standby taking over) gets the same one, and the
        // answers gpu-nodes send for its predecessor's chunks count.
        var job = new JobSpec(JobIdOf(jobKey), request.StageName, request.Input?.Info.Location ?? "",
            staged.Staging.ToString(), grid.ChunkShape, grid.Halo, request.Parameters);

        JobResult result;
        using (var manifest = ChunkManifest.OpenOrCreate(staged.ManifestPath, jobKey, grid.Count))
        {
            int next = 0;
            await using var transport = request.Transport?.Invoke() ?? new InProcessTransport(request.Workers, spec =>
            {
                var worker = new ChunkWorker(spec, stage, request.Input, staged.Volume, $"local-{Interlocked.Increment(ref next)}");
                return worker.Process;
            });
            var runner = new JobRunner(transport, logs.CreateLogger<JobRunner>());
            try
            {
                result = await runner.RunAsync(job, grid, manifest, progress, ct).ConfigureAwait(false);
            }
            finally
            {
                // The pass's chunk buffers are not what the next pass (or the coordinator's merge or weld) needs.
                ChunkBufferPool.TrimShared();
            }
        }
        if (result.IsComplete && pyramid is { Count: > 1 })
            // The levels keep level 0's layout as written (its shards included), clipped to each level's shape.
            result = await PyramidPasses.RunAsync(request with { OutputOptions = options }, pyramid, request.Pyramid!.Method, staged, jobKey, result, logs, progress, ct).ConfigureAwait(false);
        if (result.IsComplete) staged.Commit();
        return new JobOutcome(result, grid, request.Output, AlreadyComplete: false, Resumed: staged.Resumed);
    }

    /// <summary>
    /// The compute chunks <see cref="RunAsync"/> plans for <paramref name="request"/> with a stage reading <paramref name="halo"/>:
    /// whole write units of the output (storage chunks, or shards of a sharded Zarr v3 output), within the memory budget.
    /// </summary>
    public static ChunkGrid Plan(JobRequest request, Halo halo)
    {
        var options = request.OutputOptions;
        var spatialChunks = new Long3(UnitOf(options, 'z'), UnitOf(options, 'y'), UnitOf(options, 'x'));
        var spatialShape = new Long3(ExtentOf(options, 'z'), ExtentOf(options, 'y'), ExtentOf(options, 'x'));
        // What one spatial voxel of a chunk costs in memory: the stage says (features keep many images per
        // block); a copy stage holds its input and its output.
        long bytesPerVoxel = request.PlanningBytesPerVoxel ?? ExtentOf(options, 'c') * options.DataType.SizeInBytes() * 2;
        return ChunkPlanner.Plan(spatialShape, ExtentOf(options, 't'), spatialChunks, request.ChunkShape, halo, bytesPerVoxel, request.MaxChunkBytes);
    }

    /// <summary>
    /// <paramref name="options"/> of a Zarr v3 volume without a shard shape, sharded one shard per compute chunk of
    /// <paramref name="computeChunk"/> (rounded up to whole storage chunks), so each writer owns its shards whole; any
    /// other options as they are.
    /// </summary>
    public static VolumeCreateOptions ShardedBy(VolumeCreateOptions options, Long3 computeChunk)
    {
        if (!ShardsFollowChunks(options)) return options;
        var rounded = new Long3(RoundUp(computeChunk.Z, ChunkOf(options, 'z')), RoundUp(computeChunk.Y, ChunkOf(options, 'y')), RoundUp(computeChunk.X, ChunkOf(options, 'x')));
        return options with { ShardShape = OutputLayout.SpatialShape(options, rounded) };
    }

    /// <summary>Whether <paramref name="options"/> take their shards from the compute chunks (<see cref="ShardedBy"/>): Zarr v3 with no shard shape given.</summary>
    public static bool ShardsFollowChunks(VolumeCreateOptions options) => options.ZarrFormat == 3 && options.ShardShape is null;

    /// <summary>A job's id from its key: the same job gets the same id, in this process or a restarted one.</summary>
    internal static JobId JobIdOf(string jobKey) =>
        new(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(jobKey)))[..12]);

    /// <summary>True when the volume at <paramref name="location"/> lives in the file or store <paramref name="output"/> writes.</summary>
    private static bool SameRoot(string location, VolumeAddress output)
    {
        string root = Path.GetFullPath(output.RootPath).TrimEnd('/');
        string path = Path.GetFullPath(location).TrimEnd('/');
        return path == root || path.StartsWith(root + "/", StringComparison.Ordinal);
    }

    private static long ExtentOf(VolumeCreateOptions o, char axis) => o.Axes.IndexOf(axis) is var i and >= 0 ? o.Shape[i] : 1;
    private static long ChunkOf(VolumeCreateOptions o, char axis) => o.Axes.IndexOf(axis) is var i and >= 0 ? o.Chunks[i] : 1;
    private static long UnitOf(VolumeCreateOptions o, char axis) => o.Axes.IndexOf(axis) is var i and >= 0 ? (o.ShardShape ?? o.Chunks)[i] : 1;
    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}
