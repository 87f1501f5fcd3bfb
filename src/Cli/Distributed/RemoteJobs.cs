using System.CommandLine;
using ChunkSeg.Broker;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Pipelines;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;

namespace ChunkSeg.Cli.Distributed;

/// <summary>
/// A submitted run on the RabbitMQ coordinator: the job's `run` arguments parsed into a <see cref="RunSpec"/>, run by
/// <see cref="RunPipeline.ExecuteAsync"/> with its chunk passes sent through the broker (workers rebuild each pass's stage
/// with <see cref="RunPasses.Open"/>), its progress and failed chunks reported into the job's record.
/// </summary>
internal static class RemoteJobs
{
    /// <summary>Parses a job's `run` arguments; bad arguments are a usage error naming them.</summary>
    public static (RunArguments Arguments, ParseResult Parse) ParseRun(IReadOnlyList<string> args)
    {
        var arguments = new RunArguments();
        var command = new Command("run");
        arguments.AddTo(command);
        var parse = command.Parse([.. args]);
        if (parse.Errors.Count > 0)
            throw new UsageException($"job arguments \"{string.Join(' ', args)}\": {string.Join("; ", parse.Errors.Select(e => e.Message))}");
        return (arguments, parse);
    }

    /// <summary>The run a job's `run` arguments ask for (see <see cref="ParseRun"/>).</summary>
    public static RunSpec SpecOf(IReadOnlyList<string> args)
    {
        var (arguments, parse) = ParseRun(args);
        return arguments.ToSpec(parse);
    }

    /// <summary>The coordinator's side: runs a submitted job to its end through the broker.</summary>
    public static async Task ExecuteAsync(JobRecord record, IConnection connection, int window, ILoggerFactory logs, CancellationToken ct)
    {
        var spec = SpecOf(record.Message.Arguments);
        var logger = logs.CreateLogger<RabbitChunkTransport>();
        try
        {
            // A job this coordinator (or its predecessor) already started resumes: its earlier outputs are its own.
            await RunPipeline.ExecuteAsync(spec, () => new RabbitChunkTransport(connection, window, logger), null, logs, new RecordMonitor(record),
                resuming: record.Interrupted, ct).ConfigureAwait(false);
        }
        catch (RunIncompleteException e)
        {
            record.FailedChunks = e.Result.Failed.Select(f => $"chunk {f.Chunk.Value}: {f.Reason}").ToList();
            throw;
        }
    }

    /// <summary>Reports a run's stage and chunk counts into the coordinator's record of the job (what status shows).</summary>
    private sealed class RecordMonitor(JobRecord record) : IRunMonitor
    {
        public void Plan(IReadOnlyList<(string Stage, double Weight)> stages) { }

        public IProgress<JobProgress> Begin(string stage)
        {
            record.Stage = stage;
            record.ChunksDone = record.ChunksTotal = 0;
            return new SynchronousProgress<JobProgress>(p =>
            {
                record.ChunksDone = p.ChunksDone;
                record.ChunksTotal = p.ChunksTotal;
            });
        }

        public void End(string stage) { }
    }
}
