using System.Text;
using System.Threading.Channels;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace ChunkSeg.Broker;

/// <summary>A received message, copied out of the client's buffer (valid only during the callback), with its tag.</summary>
public sealed record Delivery(string Queue, ulong Tag, byte[] Body, IReadOnlyDictionary<string, object?> Headers, string? ReplyTo, string? CorrelationId)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value switch
    {
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        string s => s,
        null => null,
        var other => other.ToString(),
    } : null;

    public long? NumericHeader(string name) => Headers.TryGetValue(name, out var value) ? value switch
    {
        long l => l,
        int i => i,
        short s => s,
        byte b => b,
        _ => long.TryParse(Header(name), System.Globalization.CultureInfo.InvariantCulture, out var parsed) ? parsed : null,
    } : null;
}

/// <summary>Consumer plumbing shared by the coordinator and the workers.</summary>
public static class Consumers
{
    /// <summary>Starts consuming <paramref name="queue"/> (manual acks) into <paramref name="sink"/>; returns the consumer tag.</summary>
    public static Task<string> IntoAsync(IChannel channel, string queue, ChannelWriter<Delivery> sink, CancellationToken ct)
    {
        var consumer = new AsyncEventingBasicConsumer(channel);
        // The sink is unbounded (the channel's prefetch bounds it); once its reader is gone, the broker redelivers to others.
        consumer.ReceivedAsync += (_, e) =>
        {
            sink.TryWrite(Copy(queue, e));
            return Task.CompletedTask;
        };
        return channel.BasicConsumeAsync(queue, autoAck: false, consumer, ct);
    }

    public static Delivery Copy(string queue, BasicDeliverEventArgs e) => new(queue, e.DeliveryTag, e.Body.ToArray(),
        e.BasicProperties.Headers is { } h ? new Dictionary<string, object?>(h) : new Dictionary<string, object?>(),
        e.BasicProperties.ReplyTo, e.BasicProperties.CorrelationId);

    /// <summary>Properties of a message that must survive a broker restart.</summary>
    public static BasicProperties Persistent(string? messageId = null, IDictionary<string, object?>? headers = null) => new()
    {
        Persistent = true,
        ContentType = "application/json",
        MessageId = messageId,
        Headers = headers,
    };

    /// <summary>
    /// Publishes and waits for the broker's confirm, retrying while the connection is down (a broker restart): a message
    /// the broker did not confirm may be lost, so it is sent again; a duplicate is harmless to every reader here.
    /// </summary>
    public static async Task PublishConfirmedAsync(IChannel channel, string exchange, string routingKey, BasicProperties properties,
        ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                await channel.BasicPublishAsync(exchange, routingKey, mandatory: true, properties, body, ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is RabbitMQ.Client.Exceptions.AlreadyClosedException
                or RabbitMQ.Client.Exceptions.PublishException or RabbitMQ.Client.Exceptions.OperationInterruptedException or IOException
                or ObjectDisposedException)
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    /// <summary>Acknowledges, ignoring a channel that closed meanwhile (the broker then redelivers; readers tolerate duplicates).</summary>
    public static async Task AckAsync(IChannel channel, ulong tag)
    {
        try
        {
            await channel.BasicAckAsync(tag, multiple: false).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.AlreadyClosedException or RabbitMQ.Client.Exceptions.OperationInterruptedException
            or IOException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Rejects without requeueing: the broker dead-letters the message.</summary>
    public static async Task DeadLetterAsync(IChannel channel, ulong tag)
    {
        try
        {
            await channel.BasicRejectAsync(tag, requeue: false).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.AlreadyClosedException or RabbitMQ.Client.Exceptions.OperationInterruptedException
            or IOException or ObjectDisposedException)
        {
        }
    }
}
