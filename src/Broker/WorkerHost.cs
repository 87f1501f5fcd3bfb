using System.Collections.Concurrent;
using System.Diagnostics;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Pipelines;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace ChunkSeg.Broker;

/// <summary>Who a worker is, as status shows it.</summary>
public sealed record WorkerIdentity(string Name, string Backend, string? Gpu, int Concurrency);

/// <summary>
/// A worker node's loop: consume chunk tasks (prefetch = concurrency, so a busy node takes no more than it runs), run
/// them, publish the result with a broker confirm, and only then acknowledge the task: the chunk's output is written
/// (and flushed) before its result exists, and a worker killed at any moment leaves its task to be redelivered. A
/// failure that will not heal (a data error, or the last attempt) is also dead-lettered. Stopping (SIGTERM) cancels the
/// subscription, lets the chunks in hand finish and report, then disconnects.
/// </summary>
public sealed class WorkerHost(BrokerEndpoint endpoint, WorkerIdentity identity, Func<JobSpec, IJobProcessor> open, ILogger logger)
{
    private readonly ConcurrentDictionary<string, byte> _cancelled = new(StringComparer.Ordinal);
    private readonly object _jobsLock = new();
    private readonly Dictionary<string, (IJobProcessor Processor, int Users)> _jobs = new(StringComparer.Ordinal);
    private string? _currentJob;
    private long _done, _failed;
    private int _busy;

    /// <summary>True once the worker is subscribed to the task queue (the readiness probe).</summary>
    public bool Ready { get; private set; }

    public long ChunksDone => Interlocked.Read(ref _done);

    public async Task RunAsync(CancellationToken stop)
    {
        await using var connection = await endpoint.ConnectAsync($"chunkseg-worker {identity.Name}", (ushort)identity.Concurrency,
            TimeSpan.FromMinutes(2), stop).ConfigureAwait(false);
        await using var publish = await connection.CreateChannelAsync(new CreateChannelOptions(true, true), CancellationToken.None).ConfigureAwait(false);
        await Topology.DeclareAsync(publish, stop).ConfigureAwait(false);
        await using var consume = await connection.CreateChannelAsync(new CreateChannelOptions(false, false, consumerDispatchConcurrency: (ushort)identity.Concurrency),
            CancellationToken.None).ConfigureAwait(false);
        await consume.BasicQosAsync(0, (ushort)identity.Concurrency, false, stop).ConfigureAwait(false);

        // Cancelled jobs: their queued chunks are dropped instead of computed.
        var events = await consume.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: stop).ConfigureAwait(false);
        await consume.QueueBindAsync(events.QueueName, Topology.Events, "", cancellationToken: stop).ConfigureAwait(false);
        var eventConsumer = new AsyncEventingBasicConsumer(consume);
        eventConsumer.ReceivedAsync += (_, e) =>
        {
            try
            {
                var ev = Wire.Decode<JobEvent>(e.Body.Span);
                if (ev.Kind == "cancelled") _cancelled[ev.Job] = 0;
            }
            catch (FormatException) { }
            return Task.CompletedTask;
        };
        await consume.BasicConsumeAsync(events.QueueName, autoAck: true, eventConsumer, stop).ConfigureAwait(false);

        var inFlight = new ConcurrentDictionary<Task, byte>();
        var tasks = new AsyncEventingBasicConsumer(consume);
        tasks.ReceivedAsync += (_, e) =>
        {
            var delivery = Consumers.Copy(Topology.Tasks, e);
            var work = HandleAsync(delivery, consume, publish);
            inFlight[work] = 0;
            return work.ContinueWith(t => inFlight.TryRemove(t, out byte _), TaskScheduler.Default);
        };
        string tag = await consume.BasicConsumeAsync(Topology.Tasks, autoAck: false, tasks, stop).ConfigureAwait(false);
        Ready = true;
        logger.LogInformation("Worker {Worker} ({Backend}, {Concurrency} at once) consuming {Queue} on {Broker}",
            identity.Name, identity.Backend, identity.Concurrency, Topology.Tasks, endpoint);

        var heartbeat = HeartbeatLoop(publish, stop);
        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        // Drain: no new tasks; the ones in hand finish, publish and acknowledge.
        Ready = false;
        logger.LogInformation("Worker {Worker} draining {Count} chunk(s) in hand", identity.Name, inFlight.Count);
        try { await consume.BasicCancelAsync(tag).ConfigureAwait(false); }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.AlreadyClosedException or IOException) { }
        await Task.WhenAll(inFlight.Keys).ConfigureAwait(false);
        await heartbeat.ConfigureAwait(false);
        lock (_jobsLock)
        {
            foreach (var (processor, _) in _jobs.Values) processor.Dispose();
            _jobs.Clear();
        }
        logger.LogInformation("Worker {Worker} stopped after {Done} chunk(s)", identity.Name, ChunksDone);
    }

    private async Task HandleAsync(Delivery delivery, IChannel consume, IChannel publish)
    {
        TaskMessage task;
        try
        {
            task = Wire.Decode<TaskMessage>(delivery.Body);
        }
        catch (FormatException e)
        {
            logger.LogError("Dead-lettering an unreadable task: {Error}", e.Message);
            await Consumers.DeadLetterAsync(consume, delivery.Tag).ConfigureAwait(false);
            return;
        }
        if (_cancelled.ContainsKey(task.Job))
        {
            await Consumers.AckAsync(consume, delivery.Tag).ConfigureAwait(false);
            return;
        }
        var command = task.Command();
        ActivityContext.TryParse(delivery.Header("traceparent"), delivery.Header("tracestate"), out var parent);
        Interlocked.Increment(ref _busy);
        object result;
        try
        {
            var processor = Acquire(task);
            try
            {
                result = await Task.Run(() => processor.Process(command, parent)).ConfigureAwait(false);
            }
            finally
            {
                Release(task.Job);
            }
        }
        catch (ChunkSegException e)
        {
            // The job itself cannot be opened here (a path outside the store, a missing model): no attempt will do better.
            result = new ChunkFailed(command.Job, command.Chunk, command.Attempt, e.Message, Retryable: false, identity.Name);
        }
        finally
        {
            Interlocked.Decrement(ref _busy);
        }
        if (result is ChunkFailed) Interlocked.Increment(ref _failed); else Interlocked.Increment(ref _done);
        // The result first (confirmed), the acknowledgement after: killed in between, the chunk is simply done twice.
        await Consumers.PublishConfirmedAsync(publish, "", Topology.Results, Consumers.Persistent(), Wire.Encode(ResultMessage.From(result)),
            CancellationToken.None).ConfigureAwait(false);
        if (result is ChunkFailed { Retryable: false } or ChunkFailed { Attempt: >= Topology.MaxAttempts })
            await Consumers.DeadLetterAsync(consume, delivery.Tag).ConfigureAwait(false);
        else
            await Consumers.AckAsync(consume, delivery.Tag).ConfigureAwait(false);
    }

    /// <summary>The job's processor, opened on its first chunk; a new job retires the previous one once its chunks are done.</summary>
    private IJobProcessor Acquire(TaskMessage task)
    {
        lock (_jobsLock)
        {
            if (!_jobs.TryGetValue(task.Job, out var entry))
            {
                entry = (open(task.Spec()), 0);
                logger.LogInformation("Worker {Worker} opened job {Job} ({Stage})", identity.Name, task.Job, task.Stage);
            }
            _jobs[task.Job] = (entry.Processor, entry.Users + 1);
            _currentJob = task.Job;
            foreach (var (id, (processor, users)) in _jobs.ToArray())
            {
                if (id == _currentJob || users > 0) continue;
                processor.Dispose();
                _jobs.Remove(id);
            }
            return entry.Processor;
        }
    }

    private void Release(string job)
    {
        lock (_jobsLock)
        {
            if (_jobs.TryGetValue(job, out var entry)) _jobs[job] = (entry.Processor, entry.Users - 1);
        }
    }

    private async Task HeartbeatLoop(IChannel publish, CancellationToken stop)
    {
        string host = Environment.MachineName;
        int pid = Environment.ProcessId;
        while (!stop.IsCancellationRequested)
        {
            var beat = new Heartbeat(identity.Name, host, pid, identity.Backend, identity.Gpu, identity.Concurrency, Volatile.Read(ref _busy),
                ChunksDone, Interlocked.Read(ref _failed), Environment.WorkingSet, DateTimeOffset.UtcNow);
            try
            {
                await publish.BasicPublishAsync(Topology.Heartbeats, "", Wire.Encode(beat), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RabbitMQ.Client.Exceptions.AlreadyClosedException or RabbitMQ.Client.Exceptions.PublishException
                or IOException or RabbitMQ.Client.Exceptions.OperationInterruptedException)
            {
                // Heartbeats are best effort; the next one goes out after recovery.
            }
            try { await Task.Delay(TimeSpan.FromSeconds(2), stop).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
    }
}
