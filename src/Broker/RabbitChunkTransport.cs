using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;

namespace ChunkSeg.Broker;

/// <summary>
/// The coordinator's side of a job pass over RabbitMQ: chunk tasks go to the quorum queue with publisher confirms,
/// results come back from the results queue and are acknowledged only once the runner asked for the next one (by then
/// it has recorded the previous in the manifest), so a coordinator killed at any point loses nothing: unrecorded
/// results are redelivered to its successor. At most <c>window</c> chunks are out at once (backpressure). A chunk the
/// broker dead-lettered because its workers kept dying on it comes back as a non-retryable failure, so the job ends
/// reporting it instead of waiting. If nothing at all arrives for <c>redeliverAfter</c> while chunks are out, they are
/// published again (a duplicate costs a recomputation; the runner ignores a second completion).
/// </summary>
public sealed class RabbitChunkTransport : IChunkTransport
{
    private readonly IConnection _connection;
    private readonly ILogger _logger;
    private readonly TimeSpan _redeliverAfter;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentDictionary<long, int> _outstanding = new();
    private readonly Channel<Delivery> _incoming = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true });
    private IChannel? _publish, _consume;
    private JobSpec? _job;

    /// <param name="window">Chunks published and not yet answered, at most.</param>
    public RabbitChunkTransport(IConnection connection, int window, ILogger logger, TimeSpan? redeliverAfter = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        _connection = connection;
        _logger = logger;
        _redeliverAfter = redeliverAfter ?? TimeSpan.FromMinutes(10);
        _slots = new SemaphoreSlim(window, window);
    }

    /// <summary>Messages published (tasks) and received (results, dead letters) by this pass, for the throughput figures.</summary>
    public long Published => Interlocked.Read(ref _published);
    public long Received => Interlocked.Read(ref _received);
    private long _published, _received;

    public async Task StartAsync(JobSpec job, CancellationToken cancellationToken)
    {
        _job = job;
        _publish = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true),
            cancellationToken).ConfigureAwait(false);
        await Topology.DeclareAsync(_publish, cancellationToken).ConfigureAwait(false);
        _consume = await _connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await _consume.BasicQosAsync(0, 512, false, cancellationToken).ConfigureAwait(false);
        await Consumers.IntoAsync(_consume, Topology.Results, _incoming.Writer, cancellationToken).ConfigureAwait(false);
        await Consumers.IntoAsync(_consume, Topology.Dead, _incoming.Writer, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask SendAsync(ProcessChunk command, CancellationToken cancellationToken)
    {
        var job = _job ?? throw new InvalidOperationException("StartAsync first");
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        _outstanding[command.Chunk.Value] = command.Attempt;
        await PublishAsync(job, command, cancellationToken).ConfigureAwait(false);
    }

    private async Task PublishAsync(JobSpec job, ProcessChunk command, CancellationToken ct)
    {
        var headers = new Dictionary<string, object?>();
        // The chunk's span on the worker continues the coordinator's trace (W3C trace context).
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } current)
        {
            headers["traceparent"] = current.Id;
            if (current.TraceStateString is { } state) headers["tracestate"] = state;
        }
        await Consumers.PublishConfirmedAsync(_publish!, "", Topology.Tasks,
            Consumers.Persistent($"{job.Id}/{command.Chunk.Value}/{command.Attempt}", headers),
            Wire.Encode(TaskMessage.From(job, command)), ct).ConfigureAwait(false);
        Interlocked.Increment(ref _published);
    }

    public async IAsyncEnumerable<object> Results([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var job = _job ?? throw new InvalidOperationException("StartAsync first");
        while (true)
        {
            Delivery delivery;
            using (var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                idle.CancelAfter(_redeliverAfter);
                try
                {
                    if (!await _incoming.Reader.WaitToReadAsync(idle.Token).ConfigureAwait(false)) yield break;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    await RepublishOutstanding(job, cancellationToken).ConfigureAwait(false);
                    continue;
                }
            }
            if (!_incoming.Reader.TryRead(out delivery!)) continue;
            Interlocked.Increment(ref _received);
            object? result = Interpret(job, delivery);
            try
            {
                if (result is null) continue;
                long chunk = result is ChunkCompleted c ? c.Chunk.Value : ((ChunkFailed)result).Chunk.Value;
                if (_outstanding.TryRemove(chunk, out _)) _slots.Release();
                yield return result;
            }
            finally
            {
                // The runner asked for the next message, or stopped asking: either way it has recorded this one, so the
                // broker may forget it.
                await Consumers.AckAsync(_consume!, delivery.Tag).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The result a delivery stands for, or null for messages of other jobs and dead letters a worker already reported.</summary>
    private object? Interpret(JobSpec job, Delivery delivery)
    {
        try
        {
            if (delivery.Queue == Topology.Results)
            {
                var message = Wire.Decode<ResultMessage>(delivery.Body);
                if (message.Job == job.Id.Value) return message.ToResult();
                _logger.LogDebug("Dropping a result of job {Job} (not the running pass {Running})", message.Job, job.Id);
                return null;
            }
            var task = Wire.Decode<TaskMessage>(delivery.Body);
            string reason = delivery.Header("x-first-death-reason") ?? "unknown";
            if (task.Job != job.Id.Value || reason == "rejected") return null;   // a rejected task's worker sent its own failure
            long deliveries = delivery.NumericHeader("x-delivery-count") ?? Topology.DeliveryLimit;
            _logger.LogError("Chunk {Chunk} dead-lettered ({Reason}) after {Deliveries} deliveries", task.Chunk, reason, deliveries);
            return new ChunkFailed(job.Id, new ChunkId(task.Chunk), Topology.MaxAttempts,
                $"dead-lettered by the broker ({reason}): the worker processing it stopped without answering {Topology.DeliveryLimit + 1} times " +
                "(killed, out of memory or crashed); see the chunkseg.dead queue", Retryable: false, Worker: "-");
        }
        catch (FormatException e)
        {
            _logger.LogWarning("Dropping an unreadable message on {Queue}: {Error}", delivery.Queue, e.Message);
            return null;
        }
    }

    private async Task RepublishOutstanding(JobSpec job, CancellationToken ct)
    {
        var lost = _outstanding.ToArray();
        if (lost.Length == 0) return;
        _logger.LogWarning("No reply for {Seconds:0} s with {Count} chunk(s) out: publishing them again", _redeliverAfter.TotalSeconds, lost.Length);
        foreach (var (chunk, attempt) in lost)
            await PublishAsync(job, new ProcessChunk(job.Id, new ChunkId(chunk), attempt), ct).ConfigureAwait(false);
    }

    public async Task CompleteAsync()
    {
        _incoming.Writer.TryComplete();
        await CloseAsync(_consume).ConfigureAwait(false);
        await CloseAsync(_publish).ConfigureAwait(false);
        _consume = _publish = null;
    }

    public async ValueTask DisposeAsync()
    {
        await CompleteAsync().ConfigureAwait(false);
        _slots.Dispose();
    }

    private static async Task CloseAsync(IChannel? channel)
    {
        if (channel is null) return;
        try
        {
            // Unacknowledged results go back to the queue: the next pass (or the coordinator's successor) sees them.
            await channel.CloseAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.AlreadyClosedException or IOException or ObjectDisposedException)
        {
        }
        channel.Dispose();
    }
}
