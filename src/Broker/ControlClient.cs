using System.Collections.Concurrent;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace ChunkSeg.Broker;

/// <summary>What `chunkseg submit`, `status` and `cancel` say to the cluster.</summary>
public sealed class ControlClient : IAsyncDisposable
{
    private const string DirectReplyTo = "amq.rabbitmq.reply-to";
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<byte[]>> _pending = new(StringComparer.Ordinal);

    private ControlClient(IConnection connection, IChannel channel)
    {
        _connection = connection;
        _channel = channel;
    }

    public static async Task<ControlClient> ConnectAsync(BrokerEndpoint endpoint, CancellationToken ct)
    {
        var connection = await endpoint.ConnectAsync("chunkseg-cli", 1, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true), ct).ConfigureAwait(false);
        await Topology.DeclareAsync(channel, ct).ConfigureAwait(false);
        var client = new ControlClient(connection, channel);
        // Direct reply-to: answers come straight back on this channel, no reply queue to declare or clean up.
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, e) =>
        {
            if (e.BasicProperties.CorrelationId is { } id && client._pending.TryRemove(id, out var waiting)) waiting.TrySetResult(e.Body.ToArray());
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(DirectReplyTo, autoAck: true, consumer, ct).ConfigureAwait(false);
        return client;
    }

    /// <summary>Queues a job (durably, confirmed by the broker).</summary>
    public Task SubmitAsync(JobMessage job, CancellationToken ct) =>
        Consumers.PublishConfirmedAsync(_channel, "", Topology.Jobs, Consumers.Persistent(job.Id), Wire.Encode(job), ct);

    /// <summary>Asks the coordinator; null when none answers within <paramref name="timeout"/>.</summary>
    public async Task<ClusterStatus?> AskAsync(ControlRequest request, TimeSpan timeout, CancellationToken ct)
    {
        string id = Guid.NewGuid().ToString("N");
        var answer = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        await _channel.BasicPublishAsync("", Topology.Control, mandatory: false,
            new BasicProperties { ReplyTo = DirectReplyTo, CorrelationId = id, Expiration = ((long)timeout.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) },
            Wire.Encode(request), ct).ConfigureAwait(false);
        try
        {
            return Wire.Decode<ClusterStatus>(await answer.Task.WaitAsync(timeout, ct).ConfigureAwait(false));
        }
        catch (TimeoutException)
        {
            _pending.TryRemove(id, out _);
            return null;
        }
    }

    /// <summary>Messages waiting in each work queue, straight from the broker.</summary>
    public Task<IReadOnlyList<(string Queue, long Depth)>> QueueDepthsAsync(CancellationToken ct) => Topology.DepthsAsync(_channel, ct);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _channel.CloseAsync().ConfigureAwait(false);
            await _connection.CloseAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.AlreadyClosedException or IOException) { }
        _channel.Dispose();
        _connection.Dispose();
    }
}
