using RabbitMQ.Client;

namespace ChunkSeg.Broker;

/// <summary>
/// The queues and exchanges of the distributed mode; every process declares them (idempotently) on connect.
/// <code>
///   chunkseg.jobs        quorum   submitted jobs; the coordinator holds one unacknowledged until the job ends, so a
///                                 coordinator that dies mid-job gets it back on restart and resumes it from the store
///   chunkseg.tasks       quorum   one message per chunk; a delivery limit dead-letters a chunk whose worker dies on it
///   chunkseg.results     quorum   completions and failures, acknowledged once recorded in the job's manifest
///   chunkseg.dead        quorum   dead letters of chunkseg.tasks (poison chunks), read by the coordinator
///   chunkseg.control     classic  status and cancel requests to the coordinator (answered by direct reply-to)
///   chunkseg.heartbeats  fanout   workers' heartbeats (host, backend, chunks done), for status
///   chunkseg.events      fanout   job cancellations, for workers to drop queued chunks of cancelled jobs
/// </code>
/// </summary>
public static class Topology
{
    public const string Jobs = "chunkseg.jobs", Tasks = "chunkseg.tasks", Results = "chunkseg.results", Dead = "chunkseg.dead",
        Control = "chunkseg.control", Heartbeats = "chunkseg.heartbeats", Events = "chunkseg.events", DeadLetters = "chunkseg.dlx";

    /// <summary>Deliveries of one chunk before the broker dead-letters it (a worker crashed on each).</summary>
    public const int DeliveryLimit = 4;

    /// <summary>Attempts the coordinator makes at a chunk whose worker reported a retryable failure (the JobRunner's default).</summary>
    public const int MaxAttempts = 3;

    public static readonly string[] WorkQueues = [Jobs, Tasks, Results, Dead];

    public static async Task DeclareAsync(IChannel channel, CancellationToken ct)
    {
        await channel.ExchangeDeclareAsync(DeadLetters, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: ct).ConfigureAwait(false);
        await channel.ExchangeDeclareAsync(Heartbeats, ExchangeType.Fanout, durable: false, autoDelete: false, cancellationToken: ct).ConfigureAwait(false);
        await channel.ExchangeDeclareAsync(Events, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: ct).ConfigureAwait(false);
        await channel.QueueDeclareAsync(Jobs, durable: true, exclusive: false, autoDelete: false, Quorum(), cancellationToken: ct).ConfigureAwait(false);
        await channel.QueueDeclareAsync(Tasks, durable: true, exclusive: false, autoDelete: false, Quorum(new()
        {
            ["x-delivery-limit"] = DeliveryLimit,
            ["x-dead-letter-exchange"] = DeadLetters,
        }), cancellationToken: ct).ConfigureAwait(false);
        await channel.QueueDeclareAsync(Results, durable: true, exclusive: false, autoDelete: false, Quorum(), cancellationToken: ct).ConfigureAwait(false);
        await channel.QueueDeclareAsync(Dead, durable: true, exclusive: false, autoDelete: false, Quorum(), cancellationToken: ct).ConfigureAwait(false);
        await channel.QueueBindAsync(Dead, DeadLetters, "", cancellationToken: ct).ConfigureAwait(false);
        // Requests nobody answers within a few seconds are useless: they expire instead of piling up.
        await channel.QueueDeclareAsync(Control, durable: false, exclusive: false, autoDelete: false,
            new Dictionary<string, object?> { ["x-message-ttl"] = 10_000 }, cancellationToken: ct).ConfigureAwait(false);
    }

    /// <summary>The number of messages waiting in each work queue (not counting those delivered and unacknowledged).</summary>
    public static async Task<IReadOnlyList<(string Queue, long Depth)>> DepthsAsync(IChannel channel, CancellationToken ct)
    {
        var depths = new List<(string, long)>();
        foreach (var queue in WorkQueues)
        {
            var ok = await channel.QueueDeclarePassiveAsync(queue, ct).ConfigureAwait(false);
            depths.Add((queue, ok.MessageCount));
        }
        return depths;
    }

    private static Dictionary<string, object?> Quorum(Dictionary<string, object?>? arguments = null)
    {
        arguments ??= [];
        arguments["x-queue-type"] = "quorum";
        return arguments;
    }
}
