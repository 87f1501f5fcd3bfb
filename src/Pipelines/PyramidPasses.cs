// Multiscale pyramids as further chunk passes of the same job, written into the same staged store.
//
// `convert IN OUT.zarr --levels N|auto` writes level 0 as today (EmbeddedJob: one chunk pass into OUT.zarr.partial,
// its manifest at .chunkseg/manifest.jsonl). Before the staged store is renamed into place, EmbeddedJob hands it to
// RunAsync below, which adds levels 1 … N−1 one pass at a time, each reading the finished level before it:
//
//   OUT.zarr.partial/                       pass        reads        manifest
//   ├── .zattrs / zarr.json   multiscales   ─ rewritten last, listing every level (scale + translation per level)
//   ├── 0/                    level 0       convert     IN           .chunkseg/manifest.jsonl
//   ├── 1/                    level 1       downsample  0/           .chunkseg/level-1-manifest.jsonl
//   ├── 2/                    level 2       downsample  1/           .chunkseg/level-2-manifest.jsonl
//   └── .chunkseg/
//                       ──── all complete ────▶  rename OUT.zarr.partial → OUT.zarr (StagedOutput.Commit)
//
// Why inside the staged store, not as jobs of their own. A level's input is the previous level of the same output, so
// a separate job would trip EmbeddedJob's rule that an output never lives in its input's store, and StagedOutput
// commits a whole store at once: OUT.zarr must not appear with level 0 alone and metadata naming levels that do not
// exist yet. Running the level passes as a hook between the last chunk of level 0 and the commit keeps one rule:
// OUT.zarr exists only when every level is written and the multiscales list them all.
//
// Resume. Each level pass has its own manifest, keyed by the job (level-0 key, level, factor, method, compute chunk),
// opened with ChunkManifest.OpenOrCreate like level 0's. A rerun after a kill reopens OUT.zarr.partial, finds level 0
// complete (every chunk skipped), skips finished levels the same way, and resumes the interrupted one from its
// manifest; its array is reopened when its shape, type and chunks match (OmePyramid.CreateOrOpenLevel). Chunk files
// are written atomically and every level voxel is a function of its block of the previous level alone (Downsample:
// no halo, fixed arithmetic), so the resumed store has the bytes of an uninterrupted one, whatever the chunking.
//
// Chunking. The compute chunks of a level pass are aligned to the level's write unit (storage chunk, or shard for a
// sharded v3 output: VolumeInfo.WriteUnit), so no two writers share one. The level arrays keep level 0's storage
// chunks (clipped to the level's shape), so the coarsest level of `auto` is one chunk.
//
// Methods. Images are averaged (uint8, uint16, uint32, float32), labels take the block's mode (any unsigned integer
// type). The default is mode for label images (VolumeCreateOptions.LabelImage) and uint64 volumes, mean otherwise;
// `convert --downsample mode` asks for mode explicitly (a uint32 label volume converted from HDF5 carries no
// "label image" mark, so uint32 alone cannot decide).
//
// Where: a job with a transport (a run on a cluster) sends its level passes through it like its other passes; the
// gpu-nodes rebuild the downsample stage from the job (RunPasses). convert and label run them on this process's workers.
// HDF5 outputs are refused (ilastik reads a single level).
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Manifest;
using ChunkSeg.Coordinator.Planning;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Pyramids;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Zarr;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Pipelines;

/// <summary>A pyramid for a job's output: <see cref="Levels"/> in all, level 0 included (null: auto), downsampled by <see cref="Method"/>.</summary>
public sealed record PyramidRequest(int? Levels, DownsampleMethod Method);

/// <summary>Writes levels 1 … N−1 of an OME-Zarr output into its staged store (see the file header).</summary>
public static class PyramidPasses
{
    /// <summary>
    /// The level plan for <paramref name="options"/>, checked before any work: Zarr output in OME order, a method that
    /// fits the type, no more levels than the volume has. Auto stops when the coarsest level fits one storage chunk.
    /// </summary>
    public static PyramidPlan Plan(PyramidRequest pyramid, VolumeAddress output, VolumeCreateOptions options)
    {
        if (output.Format != VolumeFormat.Zarr)
            throw new UsageException($"{output}: --levels writes multiscale OME-Zarr; {output.Format} output holds one level (write out.zarr, or drop --levels)");
        if (!options.Axes.IsOmeOrder)
            throw new UsageException($"{output}: --levels needs an OME-Zarr image (axes t, c, z, y, x); got \"{options.Axes}\"");
        if (DownsampleStage.Unsupported(options.DataType, pyramid.Method) is { } why)
            throw new UsageException($"--levels: {why}");
        var chunks = new Long3(ChunkOf(options, 'z'), ChunkOf(options, 'y'), ChunkOf(options, 'x'));
        try
        {
            return PyramidPlan.Create(SpatialShape(options), options.VoxelSize, chunks, pyramid.Levels);
        }
        catch (ArgumentException e)
        {
            // The plan's message without .NET's "(Parameter 'levels')" and "Actual value was" suffixes.
            string message = e.Message;
            int cut = message.IndexOf(" (Parameter", StringComparison.Ordinal);
            if (cut >= 0) message = message[..cut];
            throw new UsageException($"--levels {pyramid.Levels?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "auto"}: {message}", e);
        }
    }

    /// <summary>What the pyramid adds to the job's key: a rerun with other levels is another job.</summary>
    public static string KeyOf(PyramidPlan plan, PyramidRequest pyramid) =>
        $" levels {plan.Count} {pyramid.Method.ToString().ToLowerInvariant()}";

    /// <summary>
    /// Runs the level passes into <paramref name="staged"/> (level 0 complete) and rewrites the multiscales; returns
    /// <paramref name="level0"/> with the passes' chunks added. Stops at the first incomplete level (nothing committed).
    /// </summary>
    public static async Task<JobResult> RunAsync(JobRequest request, PyramidPlan plan, DownsampleMethod method, StagedOutput staged,
        string jobKey, JobResult level0, ILoggerFactory logs, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var options = request.OutputOptions;
        string imageDir = OmePyramid.ImageDirectory(staged.Volume);
        var total = level0;
        var levels = new List<OmeLevel> { new("0", plan[0].Scale, plan[0].Translation) };
        for (int k = 1; k < plan.Count; k++)
        {
            var level = plan[k];
            var stage = new DownsampleStage(level.Factor, method);
            using var input = OmePyramid.OpenLevel(imageDir, k - 1, options.Axes);
            using var output = OmePyramid.CreateOrOpenLevel(imageDir, k, LevelOptions(options, level.Shape));
            long bytesPerVoxel = ExtentOf(options, 'c') * options.DataType.SizeInBytes() * (1 + level.Factor.Volume);
            var grid = ChunkPlanner.Plan(level.Shape, ExtentOf(options, 't'), output.Info.SpatialWriteUnit, request.ChunkShape, Halo.None,
                bytesPerVoxel, request.MaxChunkBytes);
            string key = $"{jobKey} | level {k} factor {level.Factor} chunk {grid.ChunkShape} {method.ToString().ToLowerInvariant()}";
            var job = new JobSpec(EmbeddedJob.JobIdOf(key), StageCatalog.Downsample, input.Info.Location, output.Info.Location,
                grid.ChunkShape, grid.Halo, stage.Parameters);

            JobResult result;
            using (var manifest = ChunkManifest.OpenOrCreate(LevelManifestPath(staged, k), key, grid.Count))
            {
                int next = 0;
                // Through the job's transport when it has one (a run's level passes go to the gpu-nodes, which rebuild the
                // stage from the job: RunPasses), else on this process's workers.
                await using var transport = request.Transport?.Invoke() ?? new InProcessTransport(request.Workers, spec =>
                    new ChunkWorker(spec, stage, input, output, $"local-{Interlocked.Increment(ref next)}").Process);
                var runner = new JobRunner(transport, logs.CreateLogger<JobRunner>());
                try
                {
                    result = await runner.RunAsync(job, grid, manifest, progress, ct).ConfigureAwait(false);
                }
                finally
                {
                    ChunkBufferPool.TrimShared();
                }
            }
            output.Flush();
            total = Add(total, result);
            if (!result.IsComplete) return total;
            levels.Add(new OmeLevel(k.ToString(System.Globalization.CultureInfo.InvariantCulture), level.Scale, level.Translation));
        }
        OmePyramid.WriteMultiscales(imageDir, options, levels, Downscaling(method));
        return total;
    }

    /// <summary>The multiscale's "type" and "metadata" description for levels made by <paramref name="method"/>.</summary>
    internal static OmeDownscaling Downscaling(DownsampleMethod method) => method switch
    {
        DownsampleMethod.Mean => new("mean", "each level halves (or keeps) every spatial axis of the level before it; a voxel is the mean of its block, integers rounded half to even"),
        DownsampleMethod.Mode => new("mode", "each level halves (or keeps) every spatial axis of the level before it; a voxel is the most frequent value of its block, ties to the smallest"),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
    };

    /// <summary>Level <paramref name="k"/>'s manifest, beside level 0's in the staged store (and moving with it at commit).</summary>
    public static string LevelManifestPath(StagedOutput staged, int k) =>
        Path.Combine(Path.GetDirectoryName(staged.ManifestPath)!, $"level-{k}-manifest.jsonl");

    /// <summary>A level's array: level 0's options with the level's spatial shape, chunks (and shards) clipped to it.</summary>
    internal static VolumeCreateOptions LevelOptions(VolumeCreateOptions o, Long3 shape)
    {
        long[] s = (long[])o.Shape.Clone();
        int[] chunks = (int[])o.Chunks.Clone();
        int[]? shards = (int[]?)o.ShardShape?.Clone();
        for (int d = 0; d < o.Axes.Rank; d++)
        {
            char a = o.Axes[d];
            if (a is not ('z' or 'y' or 'x')) continue;
            s[d] = a == 'z' ? shape.Z : a == 'y' ? shape.Y : shape.X;
            chunks[d] = (int)Math.Min(chunks[d], s[d]);
            // A shard stays a whole number of chunks: clipped to the chunks that cover the level.
            if (shards is not null) shards[d] = (int)Math.Min(shards[d], (s[d] + chunks[d] - 1) / chunks[d] * chunks[d]);
        }
        return o with { Shape = s, Chunks = chunks, ShardShape = shards };
    }

    private static JobResult Add(JobResult a, JobResult b) => new(a.ChunksTotal + b.ChunksTotal, a.ChunksProcessed + b.ChunksProcessed,
        a.ChunksSkipped + b.ChunksSkipped, [.. a.Failed, .. b.Failed], a.VoxelsProcessed + b.VoxelsProcessed, a.Elapsed + b.Elapsed,
        a.Duplicates + b.Duplicates);

    private static Long3 SpatialShape(VolumeCreateOptions o) => new(ExtentOf(o, 'z'), ExtentOf(o, 'y'), ExtentOf(o, 'x'));
    private static long ExtentOf(VolumeCreateOptions o, char axis) => o.Axes.IndexOf(axis) is var i and >= 0 ? o.Shape[i] : 1;
    private static long ChunkOf(VolumeCreateOptions o, char axis) => o.Axes.IndexOf(axis) is var i and >= 0 ? o.Chunks[i] : 1;
}
