using System.CommandLine;
using ChunkSeg.Contracts.Errors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>The `chunkseg` command: parse, validate, call; every failure becomes a message and an exit code.</summary>
public static class CliApp
{
    public const int Ok = 0, DataError = 1, UsageError = 2;

    internal static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Show debug logs and stack traces of errors",
        Recursive = true,
    };

    internal static readonly Option<bool> LogJson = new("--log-json")
    {
        Description = "Write logs to stderr as JSON lines (for log collectors)",
        Recursive = true,
    };

    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var root = new RootCommand("ChunkSeg: ilastik-style pixel classification, labelling and meshing of terabyte volumes, chunk by chunk.");
        root.Options.Add(Verbose);
        root.Options.Add(LogJson);
        var context = new CommandContext(stdout, stderr);
        root.Subcommands.Add(InfoCommand.Create(context));
        root.Subcommands.Add(ConvertCommand.Create(context));
        var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        root.Subcommands.Add(DemoCommand.Create(context, (args, ct) => root.Parse(args).InvokeAsync(invocation, ct)));
        root.Subcommands.Add(FeaturesCommand.Create(context));
        root.Subcommands.Add(TrainCommand.Create(context));
        root.Subcommands.Add(PredictCommand.Create(context));
        root.Subcommands.Add(LabelCommand.Create(context));
        root.Subcommands.Add(MeshCommand.Create(context));
        root.Subcommands.Add(RunCommand.Create(context));
        root.Subcommands.Add(EvaluateCommand.Create(context));
        root.Subcommands.Add(Bench.BenchCommand.Create(context));
        foreach (var cluster in ClusterCommands.Create(context)) root.Subcommands.Add(cluster);

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) await stderr.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
            await stderr.WriteLineAsync("Run 'chunkseg --help' for usage.").ConfigureAwait(false);
            return UsageError;
        }
        context.VerboseEnabled = parse.GetValue(Verbose);
        // SIGTERM cancels the command; a worker or coordinator gets time to drain before the process is ended.
        if (ClusterCommands.LongRunning.Contains(parse.CommandResult.Command.Name)) invocation.ProcessTerminationTimeout = ClusterCommands.DrainTimeout;
        context.JsonLogs = parse.GetValue(LogJson);
        try
        {
            using var telemetry = Telemetry.TelemetrySetup.Start(Telemetry.TelemetrySetup.ServiceNameFor(parse));   // null unless OTEL_EXPORTER_OTLP_* is set
            return await parse.InvokeAsync(invocation).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return context.Fail(e);
        }
    }
}

/// <summary>What every command shares: its writers, a logger factory and the error policy.</summary>
internal sealed class CommandContext(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;
    public bool VerboseEnabled { get; set; }
    public bool JsonLogs { get; set; }

    /// <summary>Progress and tables go to stderr so stdout stays machine-readable.</summary>
    public IAnsiConsole Console => _console ??= AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Error),
        Ansi = ReferenceEquals(Error, System.Console.Error) && !System.Console.IsErrorRedirected ? AnsiSupport.Detect : AnsiSupport.No,
    });
    private IAnsiConsole? _console;

    /// <summary>Human output for stdout (tables, summaries).</summary>
    public IAnsiConsole Stdout => _stdoutConsole ??= AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Out),
        Ansi = ReferenceEquals(Out, System.Console.Out) && !System.Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
    });
    private IAnsiConsole? _stdoutConsole;

    /// <summary>Logs at <paramref name="level"/> (Debug with --verbose); long-running services log at Information.</summary>
    public ILoggerFactory CreateLogs(LogLevel level = LogLevel.Warning) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(VerboseEnabled ? LogLevel.Debug : level);
        if (JsonLogs) builder.AddJsonConsole(o => o.IncludeScopes = true);
        else builder.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });

    /// <summary>Prints an error as one line (a stack trace only with --verbose) and returns its exit code.</summary>
    public int Fail(Exception e)
    {
        var (code, message) = Describe(e);
        Error.WriteLine($"error: {message}");
        if (VerboseEnabled) Error.WriteLine(e.ToString());
        return code;
    }

    /// <summary>The exit code and the one-line message of an error.</summary>
    public static (int Code, string Message) Describe(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } one) e = one.InnerException!;
        return e switch
        {
            ChunkSegException c => (c.ExitCode, c.Message),
            ArgumentException a => (CliApp.UsageError, a.Message),
            OperationCanceledException => (CliApp.DataError, "cancelled"),
            IOException io => (CliApp.DataError, io.Message),
            ChunkSeg.GpuNode.Hosting.WorkerCrashedException crash => (CliApp.DataError, crash.Message),
            UnauthorizedAccessException ua => (CliApp.DataError, ua.Message),
            _ => (CliApp.DataError, $"internal error: {e.GetType().Name}: {e.Message}"),
        };
    }
}
