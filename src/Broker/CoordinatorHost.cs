using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace ChunkSeg.Broker;

/// <summary>A job as the coordinator tracks it; the executor updates stage and chunk counts as it goes.</summary>
public sealed class JobRecord(JobMessage message, string output)
{
    public JobMessage Message { get; } = message;
    public string Output { get; } = output;
    public string State { get; set; } = "queued";
    public string? Stage { get; set; }
    public long ChunksDone { get; set; }
    public long ChunksTotal { get; set; }
    public DateTimeOffset? Started { get; set; }
    public DateTimeOffset? Finished { get; set; }
    public string? Error { get; set; }
    public IReadOnlyList<string> FailedChunks { get; set; } = [];
    public bool IsFinal => State is "done" or "failed" or "cancelled";

    /// <summary>A coordinator had started this job and stopped before it ended: it resumes rather than starts over.</summary>
    public bool Interrupted { get; set; }

    public JobStatus ToStatus() => new(Message.Id, State, Output, Stage, ChunksDone, ChunksTotal, Message.Submitted, Started, Finished, Error, FailedChunks);
}

/// <summary>Runs one job to its end (throws on failure; OperationCanceledException when cancelled).</summary>
public delegate Task JobExecutor(JobRecord job, IConnection connection, CancellationToken ct);

/// <summary>
/// The coordinator process: takes submitted jobs one at a time from chunkseg.jobs and runs them (the executor drives the
/// passes, publishing chunk tasks through <see cref="RabbitChunkTransport"/>), answers status and cancel requests, and
/// listens to the workers' heartbeats. A job's message stays unacknowledged until the job ends, so a coordinator killed
/// mid-job gets it back on restart and the executor resumes it from the manifests in the output store. Finished jobs
/// are appended to a ledger (jobs.jsonl in the state folder) so status still lists them after a restart.
/// </summary>
public sealed class CoordinatorHost(BrokerEndpoint endpoint, JobExecutor execute, Func<JobMessage, string> outputOf, string stateDirectory, ILogger logger)
{
    private readonly ConcurrentDictionary<string, JobRecord> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Heartbeat> _workers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _depths = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);
    private readonly HashSet<string> _cancelRequested = new(StringComparer.Ordinal);
    private readonly object _ledgerLock = new();
    private string LedgerPath => Path.Combine(stateDirectory, "jobs.jsonl");

    public bool Ready { get; private set; }

    /// <summary>Queue depths as last polled (every few seconds), for status and the queue-depth gauge.</summary>
    public IEnumerable<(string Queue, long Depth)> QueueDepths => _depths.Select(p => (p.Key, p.Value));

    public async Task RunAsync(CancellationToken stop)
    {
        Directory.CreateDirectory(stateDirectory);
        LoadLedger();
        await using var connection = await endpoint.ConnectAsync("chunkseg-coordinator", 1, TimeSpan.FromMinutes(2), stop).ConfigureAwait(false);
        await using var control = await connection.CreateChannelAsync(new CreateChannelOptions(true, true), CancellationToken.None).ConfigureAwait(false);
        await Topology.DeclareAsync(control, stop).ConfigureAwait(false);

        var beats = await control.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: stop).ConfigureAwait(false);
        await control.QueueBindAsync(beats.QueueName, Topology.Heartbeats, "", cancellationToken: stop).ConfigureAwait(false);
        var beatConsumer = new AsyncEventingBasicConsumer(control);
        beatConsumer.ReceivedAsync += (_, e) =>
        {
            try
            {
                var beat = Wire.Decode<Heartbeat>(e.Body.Span);
                _workers[beat.Worker] = beat;
            }
            catch (FormatException) { }
            return Task.CompletedTask;
        };
        await control.BasicConsumeAsync(beats.QueueName, autoAck: true, beatConsumer, stop).ConfigureAwait(false);

        await using var replies = await connection.CreateChannelAsync(cancellationToken: CancellationToken.None).ConfigureAwait(false);
        var requests = new AsyncEventingBasicConsumer(replies);
        requests.ReceivedAsync += async (_, e) =>
        {
            var delivery = Consumers.Copy(Topology.Control, e);
            byte[] answer;
            try
            {
                answer = await AnswerAsync(Wire.Decode<ControlRequest>(delivery.Body), control).ConfigureAwait(false);
            }
            catch (FormatException ex)
            {
                answer = Wire.Encode(new ClusterStatus("coordinator", [], [], new Dictionary<string, long>(), $"unreadable request: {ex.Message}"));
            }
            if (delivery.ReplyTo is { Length: > 0 } replyTo)
                await replies.BasicPublishAsync("", replyTo, false, new BasicProperties { CorrelationId = delivery.CorrelationId }, answer).ConfigureAwait(false);
        };
        await replies.BasicConsumeAsync(Topology.Control, autoAck: true, requests, stop).ConfigureAwait(false);

        await using var jobsChannel = await connection.CreateChannelAsync(cancellationToken: CancellationToken.None).ConfigureAwait(false);
        await jobsChannel.BasicQosAsync(0, 64, false, stop).ConfigureAwait(false);
        var incoming = Channel.CreateUnbounded<Delivery>();
        await Consumers.IntoAsync(jobsChannel, Topology.Jobs, incoming.Writer, stop).ConfigureAwait(false);
        var poll = PollDepths(connection, stop);
        Ready = true;
        logger.LogInformation("Coordinator consuming {Queue} on {Broker}", Topology.Jobs, endpoint);

        try
        {
            // Deliveries queue up here (up to the prefetch), so status can list jobs that wait; they run one at a time.
            await foreach (var delivery in incoming.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                JobMessage message;
                try
                {
                    message = Wire.Decode<JobMessage>(delivery.Body);
                }
                catch (FormatException e)
                {
                    logger.LogError("Dropping an unreadable job: {Error}", e.Message);
                    await Consumers.AckAsync(jobsChannel, delivery.Tag).ConfigureAwait(false);
                    continue;
                }
                var record = _jobs.GetOrAdd(message.Id, _ => new JobRecord(message, SafeOutput(message)));
                if (record.IsFinal && record.State != "failed" || IsCancelRequested(message.Id))
                {
                    if (!record.IsFinal) Finish(record, "cancelled", "cancelled before it started");
                    await Consumers.AckAsync(jobsChannel, delivery.Tag).ConfigureAwait(false);
                    continue;
                }
                if (!await RunOne(record, connection, stop).ConfigureAwait(false)) break;   // stopping: leave it for the next coordinator
                await Consumers.AckAsync(jobsChannel, delivery.Tag).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        Ready = false;
        await poll.ConfigureAwait(false);
    }

    /// <summary>Runs a job to its end; false when the coordinator is stopping (the job stays queued, unacknowledged).</summary>
    private async Task<bool> RunOne(JobRecord record, IConnection connection, CancellationToken stop)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _running[record.Message.Id] = cancel;
        record.State = "running";
        record.Started = DateTimeOffset.UtcNow;
        record.Error = null;
        AppendLedger(new LedgerEntry(record.Message, record.ToStatus()));
        logger.LogInformation("Job {Job} started: {Output}", record.Message.Id, record.Output);
        try
        {
            await execute(record, connection, cancel.Token).ConfigureAwait(false);
            Finish(record, "done", null);
            return true;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            record.State = "interrupted";
            record.Interrupted = true;
            return false;
        }
        catch (OperationCanceledException)
        {
            Finish(record, "cancelled", "cancelled by request");
            return true;
        }
        catch (Exception e)
        {
            logger.LogError("Job {Job} failed: {Error}", record.Message.Id, e.Message);
            Finish(record, "failed", e.Message);
            return true;
        }
        finally
        {
            _running.TryRemove(record.Message.Id, out _);
        }
    }

    private void Finish(JobRecord record, string state, string? error)
    {
        record.State = state;
        record.Finished = DateTimeOffset.UtcNow;
        record.Error ??= error;
        if (state == "done") record.Error = null;
        logger.LogInformation("Job {Job} {State}{Error}", record.Message.Id, state, error is null ? "" : ": " + error);
        AppendLedger(new LedgerEntry(record.Message, record.ToStatus()));
    }

    private async Task<byte[]> AnswerAsync(ControlRequest request, IChannel control)
    {
        switch (request.Command)
        {
            case "cancel" when request.Job is { } id:
                lock (_cancelRequested) _cancelRequested.Add(id);
                string message;
                if (_running.TryGetValue(id, out var cts)) { await cts.CancelAsync().ConfigureAwait(false); message = $"job {id}: cancelling"; }
                else if (_jobs.TryGetValue(id, out var known) && known.IsFinal) message = $"job {id}: already {known.State}";
                else
                {
                    message = $"job {id}: will not start";
                    AppendLedger(new LedgerEntry(new JobMessage(id, [], DateTimeOffset.UtcNow), null));
                }
                await Consumers.PublishConfirmedAsync(control, Topology.Events, "", Consumers.Persistent(), Wire.Encode(new JobEvent("cancelled", id)),
                    CancellationToken.None).ConfigureAwait(false);
                return Wire.Encode(Status(request.Job, message));
            case "status":
                return Wire.Encode(Status(request.Job, null));
            default:
                return Wire.Encode(Status(null, $"unknown command \"{request.Command}\"; known: status, cancel"));
        }
    }

    private ClusterStatus Status(string? job, string? message)
    {
        var jobs = _jobs.Values.Where(j => job is null || j.Message.Id == job).OrderBy(j => j.Message.Submitted).Select(j => j.ToStatus()).ToList();
        if (job is not null && jobs.Count == 0 && message is null) message = $"job {job}: not known to this coordinator";
        var workers = _workers.Values.Where(w => DateTimeOffset.UtcNow - w.Time < TimeSpan.FromMinutes(5)).OrderBy(w => w.Worker, StringComparer.Ordinal).ToList();
        return new ClusterStatus(Environment.MachineName, jobs, workers, new Dictionary<string, long>(_depths), message);
    }

    private bool IsCancelRequested(string id)
    {
        lock (_cancelRequested) return _cancelRequested.Contains(id);
    }

    /// <summary>
    /// The job's output folder for status. Bad arguments are not fatal here (a coordinator that threw would get the same
    /// message back on restart, forever): the job then runs, fails with the arguments' error, and status reports it.
    /// </summary>
    private string SafeOutput(JobMessage message)
    {
        try { return outputOf(message); }
        catch (Exception e) when (e is Contracts.Errors.ChunkSegException or ArgumentException or FormatException) { return "?"; }
    }

    private async Task PollDepths(IConnection connection, CancellationToken stop)
    {
        IChannel? channel = null;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                channel ??= await connection.CreateChannelAsync(cancellationToken: stop).ConfigureAwait(false);
                foreach (var (queue, depth) in await Topology.DepthsAsync(channel, stop).ConfigureAwait(false)) _depths[queue] = depth;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                channel?.Dispose();
                channel = null;   // closed by an error or a broker restart: a new one next time
            }
            try { await Task.Delay(TimeSpan.FromSeconds(2), stop).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        channel?.Dispose();
    }

    private sealed record LedgerEntry(JobMessage Job, JobStatus? Status);

    private void AppendLedger(LedgerEntry entry)
    {
        lock (_ledgerLock)
        {
            using var stream = new FileStream(LedgerPath, FileMode.Append, FileAccess.Write, FileShare.Read);
            stream.Write(Wire.Encode(entry));
            stream.WriteByte((byte)'\n');
            stream.Flush(flushToDisk: true);
        }
    }

    private void LoadLedger()
    {
        if (!File.Exists(LedgerPath)) return;
        foreach (var line in File.ReadLines(LedgerPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            LedgerEntry entry;
            try { entry = Wire.Decode<LedgerEntry>(System.Text.Encoding.UTF8.GetBytes(line)); }
            catch (FormatException) { continue; }   // a line cut short by a crash
            if (entry.Status is not { } s)
            {
                lock (_cancelRequested) _cancelRequested.Add(entry.Job.Id);
                continue;
            }
            bool unfinished = s.State is "running" or "interrupted";
            _jobs[entry.Job.Id] = new JobRecord(entry.Job, s.Output)
            {
                State = unfinished ? "interrupted" : s.State, Interrupted = unfinished, Stage = s.Stage, ChunksDone = s.ChunksDone, ChunksTotal = s.ChunksTotal, Started = s.Started, Finished = s.Finished,
                Error = s.Error, FailedChunks = s.FailedChunks,
            };
        }
    }
}
