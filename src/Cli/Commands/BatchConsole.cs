using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Pipelines;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// The batch loop of run, predict and label on this machine (<see cref="RunBatch.RunAsync"/>): each input's work (the
/// single command's) one after another, over all worker threads; a failed input reported by name with its error and the
/// next one run; then a table, <see cref="RunBatch.Csv"/> in the folder, and exit 1 when any input failed.
/// </summary>
internal static class BatchConsole
{
    /// <param name="columns">The table's and the CSV's columns before seconds and status (<see cref="RunBatch.RunColumns"/> etc.).</param>
    /// <param name="runOne">One input's work into its output; throws when it fails (an incomplete job included).</param>
    public static async Task<int> RunAsync(CommandContext context, string command, string outDir, IReadOnlyList<(BatchInput Input, string Output)> batch,
        IReadOnlyList<string> columns, Func<BatchInput, string, Task<BatchDone>> runOne, CancellationToken ct)
    {
        int started = 0;
        var results = await RunBatch.RunAsync(outDir, batch, columns, atOnce: 1, (input, output, _) =>
        {
            context.Out.WriteLine($"{command} {++started}/{batch.Count}: {input.Input} → {output}");
            return runOne(input, output);
        }, (input, e) =>
        {
            string message = CommandContext.Describe(e).Message;
            context.Error.WriteLine($"error: {input.Input}: {message}");
            if (context.VerboseEnabled) context.Error.WriteLine(e.ToString());
            return message;
        }, ct).ConfigureAwait(false);
        string csv = Path.Combine(outDir, RunBatch.Csv);

        var ci = CultureInfo.InvariantCulture;
        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"chunkseg {command}: {batch.Count} inputs into {outDir}"));
        foreach (string c in columns) table.AddColumn(c is "objects" or "voxels" ? new TableColumn(c).RightAligned() : new TableColumn(c));
        table.AddColumn(new TableColumn("seconds").RightAligned()).AddColumn("status");
        foreach (var r in results)
            table.AddRow(columns.Select(c => c switch
            {
                "objects" => r.Objects?.ToString("N0", ci) ?? "-",
                "voxels" => r.Voxels?.ToString("N0", ci) ?? "-",
                _ => Markup.Escape(RunBatch.Field(r, c)),
            }).Concat([r.Seconds.ToString("0.00", ci), Markup.Escape(r.Status)]).ToArray());
        context.Stdout.Write(table);
        var failed = results.Where(r => r.Error is not null).ToList();
        context.Out.WriteLine($"{command}: {results.Count - failed.Count} of {results.Count} inputs done; {csv} lists them.");
        if (failed.Count == 0) return CliApp.Ok;
        context.Error.WriteLine($"error: {failed.Count} of {results.Count} inputs failed: {string.Join(", ", failed.Select(r => r.Input.Input))}");
        return CliApp.DataError;
    }
}

/// <summary>
/// The inputs of `predict` and `label`: <c>IN OUT</c> (one volume into one output, as ever), or a batch with
/// <c>--out DIR</c>: the positional inputs (several, or a glob in the file part) and <c>--inputs LIST.txt</c>, each into
/// <c>DIR/{nickname}.zarr</c>.
/// </summary>
internal sealed class BatchArguments
{
    public const string Extension = ".zarr";

    public readonly Argument<string[]> Paths;
    public readonly Option<string?> Inputs = new("--inputs") { Description = "A batch (with --out DIR): one more input address a line of this file (blank lines and # comments ignored)" };
    public readonly Option<string?> Out = new("--out")
    {
        Description = "A batch: the folder each input's output goes into, as DIR/{nickname}.zarr (ilastik's nickname: the file name without its extension); " +
            "a rerun skips the outputs already there",
    };

    public BatchArguments(string what) => Paths = new Argument<string[]>("input")
    {
        Description = $"IN OUT: {what}; or, with --out DIR, the inputs of a batch: several, or a glob in the file part ('data/*.h5/raw')",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public void AddTo(Command command)
    {
        command.Arguments.Add(Paths);
        command.Options.Add(Out);
        command.Options.Add(Inputs);
    }

    /// <summary>A batch when --out or --inputs is given.</summary>
    public bool IsBatch(ParseResult parse) => parse.GetValue(Out) is not null || parse.GetValue(Inputs) is not null;

    /// <summary>The single form's IN and OUT; anything else (one path, three, a glob) refused with what to give instead.</summary>
    public (string Input, string Output) Single(ParseResult parse, string command)
    {
        string[] paths = parse.GetValue(Paths) ?? [];
        if (paths is [var input, var output] && !RunBatch.IsGlob(input) && !RunBatch.IsFolderOfVolumes(Path.GetFullPath(input))) return (input, output);
        throw new UsageException(paths.Length == 2
            ? $"{command}: {paths[0]} is a batch ({(RunBatch.IsGlob(paths[0]) ? "a glob" : "a folder of volumes")}): give --out DIR for its outputs " +
                $"(DIR/{{nickname}}{Extension}), not an output path"
            : $"{command}: give IN OUT (one input, one output), or a batch: several inputs, a glob, a folder of volumes or --inputs LIST.txt with --out DIR");
    }

    /// <summary>A batch's folder and each input with its output, DIR/{nickname}.zarr.</summary>
    public (string OutDir, IReadOnlyList<(BatchInput Input, string Output)> Batch) Batch(ParseResult parse, string command)
    {
        string outDir = Path.GetFullPath(parse.GetValue(Out)
            ?? throw new UsageException($"{command}: --inputs makes a batch; give --out DIR for its outputs (DIR/{{nickname}}{Extension})"));
        string? list = parse.GetValue(Inputs) is { } l ? Path.GetFullPath(l) : null;
        var named = RunBatch.Name(RunBatch.Expand(parse.GetValue(Paths) ?? [], list));
        return (outDir, named.Select(b => (b, Path.Combine(outDir, b.Nickname + Extension))).ToList());
    }
}
