using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Contracts.Messages;

/// <summary>
/// How the coordinator reaches its workers. The embedded transport runs workers in this process; the cluster's
/// transport (Akka.Cluster.Sharding, src/Cluster) implements the same contract across machines, so stage code
/// never knows which one it runs under.
/// <para>
/// Contract: after <see cref="StartAsync"/>, every <see cref="ProcessChunk"/> sent is answered by at least one
/// <see cref="ChunkCompleted"/> or <see cref="ChunkFailed"/> on <see cref="Results"/> (duplicates are possible and
/// are ignored by the coordinator). <see cref="SendAsync"/> applies backpressure: it waits while workers are busy.
/// </para>
/// </summary>
public interface IChunkTransport : IAsyncDisposable
{
    /// <summary>
    /// Announces the job to the workers (they open its volumes once, not per chunk). <paramref name="grid"/> is the job's
    /// chunk grid: a transport may use it to keep neighbouring chunks together.
    /// </summary>
    Task StartAsync(JobSpec job, ChunkGrid grid, CancellationToken cancellationToken);

    ValueTask SendAsync(ProcessChunk command, CancellationToken cancellationToken);

    /// <summary>
    /// Chunk <paramref name="chunk"/> was recorded by an earlier run and will not be sent (a resumed job): a transport that
    /// shows the pass's chunks (the cluster's job page) shows it done.
    /// </summary>
    void Recorded(long chunk) { }

    /// <summary>Replies from the workers: <see cref="ChunkCompleted"/> or <see cref="ChunkFailed"/>.</summary>
    IAsyncEnumerable<object> Results(CancellationToken cancellationToken);

    /// <summary>Tells the workers no more commands will come; <see cref="Results"/> ends once they drain.</summary>
    Task CompleteAsync();
}
