using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Pipelines;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>Runs a job under a progress bar (chunks done, voxels/s, ETA) and prints its summary.</summary>
internal static class JobConsole
{
    public static async Task<JobOutcome> RunWithProgressAsync(CommandContext context, string title, JobRequest request, CancellationToken ct)
    {
        using var logs = context.CreateLogs();
        JobOutcome? outcome = null;
        await context.Console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                     new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async progressContext =>
            {
                var task = progressContext.AddTask(Markup.Escape(title), maxValue: 1);
                var progress = new SynchronousProgress<JobProgress>(p =>
                {
                    task.MaxValue = p.ChunksTotal;
                    task.Value = p.ChunksDone;
                    task.Description = Markup.Escape($"{title}  {p.ChunksDone}/{p.ChunksTotal} chunks  {Units.Rate(p.VoxelsPerSecond)}");
                });
                outcome = await EmbeddedJob.RunAsync(request, logs, progress, ct).ConfigureAwait(false);
                task.MaxValue = Math.Max(1, outcome.Grid.Count);
                task.Value = outcome.Result.ChunksProcessed + outcome.Result.ChunksSkipped;
                task.StopTask();
            }).ConfigureAwait(false);
        return outcome!;
    }

    /// <summary>One summary line per job; failed chunks listed; exit code 1 when the job is incomplete.</summary>
    public static int Summarize(CommandContext context, string title, JobOutcome outcome)
    {
        var r = outcome.Result;
        if (outcome.AlreadyComplete)
        {
            context.Out.WriteLine($"{title}: {outcome.Output} is already complete; nothing to do (pass --overwrite to recompute).");
            return CliApp.Ok;
        }
        string rate = r.Elapsed.TotalSeconds > 0 ? Units.Rate(r.VoxelsProcessed / r.Elapsed.TotalSeconds) : "-";
        string resumed = outcome.Resumed && r.ChunksSkipped > 0 ? $", resumed with {r.ChunksSkipped} chunks already done" : "";
        if (r.IsComplete)
        {
            context.Out.WriteLine($"{title}: wrote {outcome.Output} — {r.ChunksTotal} chunks of {outcome.Grid.ChunkShape}, " +
                $"{r.VoxelsProcessed:N0} voxels in {r.Elapsed.TotalSeconds:0.00} s ({rate}){resumed}.");
            return CliApp.Ok;
        }
        context.Error.WriteLine($"error: {title} incomplete: {r.Failed.Count} of {r.ChunksTotal} chunks failed; the partial output is kept at " +
            $"{outcome.Output.RootPath}.partial and a rerun resumes it.");
        foreach (var f in r.Failed.Take(10)) context.Error.WriteLine($"  chunk {f.Chunk.Value}: {f.Reason}");
        if (r.Failed.Count > 10) context.Error.WriteLine($"  ... and {r.Failed.Count - 10} more");
        return CliApp.DataError;
    }
}
