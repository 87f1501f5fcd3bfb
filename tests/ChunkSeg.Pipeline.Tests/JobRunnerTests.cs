using System.Collections.Concurrent;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Manifest;
using ChunkSeg.GpuNode.Hosting;
using ChunkSeg.GpuNode.Stages;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChunkSeg.Pipeline.Tests;

public sealed class JobRunnerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "chunkseg-tests", Guid.NewGuid().ToString("N"));
    private string ManifestFile => Path.Combine(_dir, "m.jsonl");

    private static JobSpec Job(Long3 chunk) => new(new JobId("j"), StageCatalog.Convert, "in", "out", chunk, Halo.None, new Dictionary<string, string>());

    private async Task<JobResult> RunAsync(ChunkGrid grid, int workers, Func<ProcessChunk, object> process, ChunkManifest? manifest = null)
    {
        using var m = manifest ?? ChunkManifest.OpenOrCreate(ManifestFile, "job", grid.Count);
        await using var transport = new InProcessTransport(workers, _ => process);
        return await new JobRunner(transport, NullLogger.Instance).RunAsync(Job(grid.ChunkShape), grid, m, cancellationToken: TestContext.Current.CancellationToken);
    }

    private static ChunkCompleted Done(ProcessChunk c) => new(c.Job, c.Chunk, c.Attempt, 1, 0, TimeSpan.Zero, "fake");

    [Fact]
    public async Task Every_chunk_is_processed_once_and_recorded()
    {
        var grid = new ChunkGrid(new Long3(10, 10, 10), 2, new Long3(3, 4, 5), Halo.None);
        var seen = new ConcurrentDictionary<long, int>();
        var result = await RunAsync(grid, 3, c => { seen.AddOrUpdate(c.Chunk.Value, 1, (_, n) => n + 1); return Done(c); });
        Assert.True(result.IsComplete);
        Assert.Equal(grid.Count, result.ChunksProcessed);
        Assert.Equal(grid.Count, seen.Count);
        Assert.All(seen.Values, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task A_crashing_worker_is_retried_and_a_persistent_failure_is_reported_not_dropped()
    {
        var grid = new ChunkGrid(new Long3(4, 4, 4), 1, new Long3(2, 2, 2), Halo.None);
        var attempts = new ConcurrentDictionary<long, int>();
        var result = await RunAsync(grid, 2, FakeWorker.WithCrashAsFailure(c =>
        {
            attempts.AddOrUpdate(c.Chunk.Value, 1, (_, n) => n + 1);
            if (c.Chunk.Value == 2 && c.Attempt == 1) throw new InvalidOperationException("worker crashed");
            if (c.Chunk.Value == 5) return new ChunkFailed(c.Job, c.Chunk, c.Attempt, "disk full", Retryable: true, "fake");
            if (c.Chunk.Value == 6) return new ChunkFailed(c.Job, c.Chunk, c.Attempt, "corrupt chunk", Retryable: false, "fake");
            return Done(c);
        }));

        Assert.False(result.IsComplete);
        Assert.Equal(2, attempts[2]);                  // crashed once, then succeeded
        Assert.Equal(3, attempts[5]);                  // bounded retries
        Assert.Equal(1, attempts[6]);                  // data errors are not retried
        Assert.Equal([5L, 6L], result.Failed.Select(f => f.Chunk.Value).Order().ToArray());
        Assert.Equal(grid.Count - 2, result.ChunksProcessed);
    }

    [Fact]
    public async Task A_worker_dying_out_of_memory_fails_the_job_naming_the_chunk_instead_of_hanging()
    {
        var grid = new ChunkGrid(new Long3(8, 8, 8), 1, new Long3(2, 2, 2), Halo.None);
        var run = RunAsync(grid, 2, c => c.Chunk.Value == 5 ? throw new OutOfMemoryException() : Done(c));
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Same(run, finished);
        var error = await Assert.ThrowsAsync<WorkerCrashedException>(() => run);
        Assert.Equal(5, error.Chunk.Value);
        Assert.Contains("chunk 5: out of memory", error.Message);
    }

    [Fact]
    public async Task Duplicate_replies_are_ignored()
    {
        var grid = new ChunkGrid(new Long3(6, 6, 6), 1, new Long3(2, 3, 3), Halo.None);
        var transport = new DuplicatingTransport(new InProcessTransport(2, _ => Done));
        using var m = ChunkManifest.OpenOrCreate(ManifestFile, "job", grid.Count);
        var result = await new JobRunner(transport, NullLogger.Instance).RunAsync(Job(grid.ChunkShape), grid, m, cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(result.IsComplete);
        Assert.Equal(grid.Count, result.ChunksProcessed);
        Assert.Equal(grid.Count, m.DoneCount);
    }

    [Fact]
    public async Task A_rerun_skips_chunks_the_manifest_has()
    {
        var grid = new ChunkGrid(new Long3(8, 8, 8), 1, new Long3(4, 4, 4), Halo.None);
        var first = await RunAsync(grid, 2, c => c.Chunk.Value % 2 == 0 ? Done(c) : new ChunkFailed(c.Job, c.Chunk, c.Attempt, "x", false, "f"));
        Assert.Equal(4, first.ChunksProcessed);

        var processed = new ConcurrentBag<long>();
        var second = await RunAsync(grid, 2, c => { processed.Add(c.Chunk.Value); return Done(c); });
        Assert.True(second.IsComplete);
        Assert.Equal(4, second.ChunksSkipped);
        Assert.Equal([1L, 3L, 5L, 7L], processed.Order().ToArray());
    }

    [Fact]
    public async Task Chunks_left_unanswered_by_a_closed_transport_are_failures()
    {
        var grid = new ChunkGrid(new Long3(4, 4, 4), 1, new Long3(2, 2, 2), Halo.None);
        using var m = ChunkManifest.OpenOrCreate(ManifestFile, "job", grid.Count);
        var result = await new JobRunner(new SilentTransport(answer: 3), NullLogger.Instance).RunAsync(Job(grid.ChunkShape), grid, m, cancellationToken: TestContext.Current.CancellationToken);
        Assert.False(result.IsComplete);
        Assert.Equal(3, result.ChunksProcessed);
        Assert.Equal(grid.Count - 3, result.Failed.Count);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public async Task Chunked_convert_equals_the_whole_volume_for_any_chunk_shape_and_worker_count(int seed)
    {
        var rng = new Random(seed);
        for (int trial = 0; trial < 6; trial++)
        {
            var shape = new long[] { rng.Next(1, 3), rng.Next(1, 12), rng.Next(1, 12), rng.Next(1, 12) };   // c z y x
            var input = new MemoryVolume(AxisOrder.Parse("zyxc"), [shape[1], shape[2], shape[3], shape[0]], DataType.UInt16);
            rng.NextBytes(input.Data);
            var output = new MemoryVolume(AxisOrder.Parse("czyx"), shape, DataType.UInt16);
            var chunk = new Long3(rng.Next(1, (int)shape[1] + 3), rng.Next(1, (int)shape[2] + 3), rng.Next(1, (int)shape[3] + 3));
            int workers = rng.Next(1, 5);
            var grid = new ChunkGrid(new Long3(shape[1], shape[2], shape[3]), 1, chunk, Halo.None);
            var job = Job(chunk);
            var worker = new ChunkWorker(job, new ConvertStage(), input, output, "w");
            string file = Path.Combine(_dir, $"m{seed}-{trial}.jsonl");
            using var m = ChunkManifest.OpenOrCreate(file, "job", grid.Count);
            await using var transport = new InProcessTransport(workers, _ => worker.Process);
            var result = await new JobRunner(transport, NullLogger.Instance).RunAsync(job, grid, m, cancellationToken: TestContext.Current.CancellationToken);

            Assert.True(result.IsComplete, $"seed {seed} trial {trial}: {string.Join("; ", result.Failed.Select(f => f.Reason))}");
            Assert.All(output.WriteCounts, n => Assert.Equal(1, n));
            var inVals = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(input.Data);
            var outVals = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(output.Data);
            for (int c = 0; c < shape[0]; c++)
            for (int z = 0; z < shape[1]; z++)
            for (int y = 0; y < shape[2]; y++)
            for (int x = 0; x < shape[3]; x++)
                Assert.Equal(inVals[(int)(((z * shape[2] + y) * shape[3] + x) * shape[0] + c)],
                             outVals[(int)(((c * shape[1] + z) * shape[2] + y) * shape[3] + x)]);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }

    /// <summary>Replies twice to every command, as an at-least-once broker may.</summary>
    private sealed class DuplicatingTransport(IChunkTransport inner) : IChunkTransport
    {
        public Task StartAsync(JobSpec job, ChunkGrid grid, CancellationToken ct) => inner.StartAsync(job, grid, ct);
        public ValueTask SendAsync(ProcessChunk command, CancellationToken ct) => inner.SendAsync(command, ct);
        public async IAsyncEnumerable<object> Results([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (var r in inner.Results(ct)) { yield return r; yield return r; }
        }
        public Task CompleteAsync() => inner.CompleteAsync();
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>Answers the first few commands, then the worker pool disappears.</summary>
    private sealed class SilentTransport(int answer) : IChunkTransport
    {
        private readonly System.Threading.Channels.Channel<object> _results = System.Threading.Channels.Channel.CreateUnbounded<object>();
        private int _sent;
        public Task StartAsync(JobSpec job, ChunkGrid grid, CancellationToken ct) => Task.CompletedTask;
        public ValueTask SendAsync(ProcessChunk c, CancellationToken ct)
        {
            int n = Interlocked.Increment(ref _sent);
            if (n <= answer) _results.Writer.TryWrite(Done(c));
            if (n == answer) _results.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }
        public IAsyncEnumerable<object> Results(CancellationToken ct) => _results.Reader.ReadAllAsync(ct);
        public Task CompleteAsync() => Task.CompletedTask;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

internal static class FakeWorker
{
    /// <summary>A worker whose exceptions become retryable failures, as the real <see cref="ChunkWorker"/> does.</summary>
    public static Func<ProcessChunk, object> WithCrashAsFailure(Func<ProcessChunk, object> process) => c =>
    {
        try { return process(c); }
        catch (InvalidOperationException e) { return new ChunkFailed(c.Job, c.Chunk, c.Attempt, e.Message, Retryable: true, "fake"); }
    };
}
