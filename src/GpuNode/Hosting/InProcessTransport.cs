using ChunkSeg.Contracts.Geometry;
using System.Threading.Channels;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.GpuNode.Hosting;

/// <summary>
/// The embedded transport: a bounded queue to a pool of worker tasks in this process. The queue holds at
/// most one waiting chunk per worker, so the coordinator never runs ahead of the workers (memory stays
/// bounded by the chunk size times the worker count, whatever the volume size).
/// </summary>
public sealed class InProcessTransport : IChunkTransport
{
    private readonly int _workerCount;
    private readonly Func<JobSpec, Func<ProcessChunk, object>> _workerFactory;
    private readonly Channel<ProcessChunk> _commands;
    private readonly Channel<object> _results = Channel.CreateUnbounded<object>();
    private Task[] _workers = [];

    /// <param name="workerCount">Worker tasks; the default is one per core.</param>
    /// <param name="workerFactory">Makes the per-chunk function for a job (called once per job).</param>
    public InProcessTransport(int workerCount, Func<JobSpec, Func<ProcessChunk, object>> workerFactory)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(workerCount);
        _workerCount = workerCount;
        _workerFactory = workerFactory;
        _commands = Channel.CreateBounded<ProcessChunk>(new BoundedChannelOptions(workerCount) { SingleWriter = true });
    }

    public Task StartAsync(JobSpec job, ChunkGrid grid, CancellationToken cancellationToken)
    {
        var process = _workerFactory(job);
        _workers = Enumerable.Range(0, _workerCount).Select(_ => Task.Run(async () =>
        {
            await foreach (var command in _commands.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                object result;
                try
                {
                    result = process(command);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A worker function answers failures itself; what escapes it (out of memory) would leave the
                    // coordinator waiting for a reply forever, so the whole job fails now, naming the chunk.
                    _results.Writer.TryComplete(new WorkerCrashedException(command.Chunk, e));
                    return;
                }
                if (!_results.Writer.TryWrite(result)) return;   // unbounded: refused only once the job has failed

            }
        }, cancellationToken)).ToArray();
        return Task.CompletedTask;
    }

    public ValueTask SendAsync(ProcessChunk command, CancellationToken cancellationToken) =>
        _commands.Writer.WriteAsync(command, cancellationToken);

    public IAsyncEnumerable<object> Results(CancellationToken cancellationToken) => _results.Reader.ReadAllAsync(cancellationToken);

    public async Task CompleteAsync()
    {
        _commands.Writer.TryComplete();
        await Task.WhenAll(_workers).ConfigureAwait(false);
        _results.Writer.TryComplete();
    }

    public async ValueTask DisposeAsync()
    {
        _commands.Writer.TryComplete();
        try { await Task.WhenAll(_workers).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        _results.Writer.TryComplete();
    }
}

/// <summary>A worker in this process died on a chunk (out of memory, or a bug that escaped its error handling).</summary>
public sealed class WorkerCrashedException(ChunkId chunk, Exception inner)
    : Exception(inner is OutOfMemoryException
        ? $"chunk {chunk.Value}: out of memory; use smaller chunks (--chunk) or fewer workers (--workers)"
        : $"chunk {chunk.Value}: worker crashed: {inner.GetType().Name}: {inner.Message}", inner)
{
    public ChunkId Chunk { get; } = chunk;
}
