using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg run RAW (--ilp PROJECT | --model MODEL | --voronoi-otsu SPOT,OUTLINE) --out DIR`: the whole pipeline, fused
/// per chunk, on this machine: probabilities (optional), labels (OME-Zarr and HDF5), a per-object mesh and the object table.
/// </summary>
internal static class RunCommand
{
    public static Command Create(CommandContext context)
    {
        var arguments = new RunArguments();
        var command = new Command("run", "The whole pipeline: classify, label, mesh and tabulate objects, resumable, into one folder");
        arguments.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (arguments.IsBatch(parse))
            {
                return await RunBatchAsync(context, arguments.ToBatch(parse), ct).ConfigureAwait(false);
            }
            var spec = arguments.ToSpec(parse);
            using var backend = Options.OpenBackend(spec.Backend);
            var request = RunPipeline.Open(spec) with { Backend = backend };
            using var source = request.Raw;
            var outcome = await RunWithProgress(context, request, ct).ConfigureAwait(false);
            PrintSummary(context, source.Info, outcome);
            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>
    /// A batch: each input's run as the single run does it (<see cref="RunPipeline.Open"/>, <see cref="RunWithProgress"/>,
    /// its summary) into its own subfolder, one after another; a failed input is reported by name and the next one run.
    /// Ends with a table and <see cref="RunBatch.Csv"/>; exits non-zero when any input failed.
    /// </summary>
    private static async Task<int> RunBatchAsync(CommandContext context, BatchSpec batch, CancellationToken ct)
    {
        using var backend = Options.OpenBackend(batch.Runs[0].Spec.Backend);
        var specs = batch.Runs.ToDictionary(b => b.Input, b => b.Spec);
        return await BatchConsole.RunAsync(context, "run", batch.OutDir, batch.Runs.Select(b => (b.Input, b.Spec.OutDir)).ToList(), RunBatch.RunColumns, async (input, _) =>
        {
            var request = RunPipeline.Open(specs[input]) with { Backend = backend };
            using var source = request.Raw;
            var outcome = await RunWithProgress(context, request, ct).ConfigureAwait(false);
            PrintSummary(context, source.Info, outcome);
            return new BatchDone(outcome.Objects, outcome.Voxels, outcome.AlreadyComplete);
        }, ct).ConfigureAwait(false);
    }

    internal static async Task<RunOutcome> RunWithProgress(CommandContext context, RunRequest request, CancellationToken ct)
    {
        using var logs = context.CreateLogs();
        RunOutcome? outcome = null;
        await context.Console.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async p => outcome = await RunJob.RunAsync(request, logs, new ProgressMonitor(p), ct).ConfigureAwait(false))
            .ConfigureAwait(false);
        return outcome!;
    }

    internal static void PrintSummary(CommandContext context, VolumeInfo info, RunOutcome o)
    {
        var ci = CultureInfo.InvariantCulture;
        string dir = Path.GetDirectoryName(o.ManifestPath)!;
        if (o.AlreadyComplete)
            context.Out.WriteLine($"run: {dir} already holds this run, finished; nothing to do (pass --overwrite to recompute). Its stages:");
        var stages = new Table().Border(TableBorder.Rounded).Title("chunkseg run")
            .AddColumn("stage").AddColumn(new TableColumn("chunks").RightAligned()).AddColumn(new TableColumn("time").RightAligned())
            .AddColumn(new TableColumn("throughput").RightAligned());
        foreach (var s in o.Stages)
        {
            string chunks = s.Chunks == 0 ? "-" : s.ChunksResumed > 0 ? $"{s.Chunks} ({s.ChunksResumed} resumed)" : s.Chunks.ToString(ci);
            string rate = s.Voxels > 0 && s.Seconds > 0 ? Units.Rate(s.Voxels / s.Seconds) : "-";
            stages.AddRow(Markup.Escape(s.Name), chunks, string.Format(ci, "{0:0.00} s", s.Seconds), rate);
        }
        double total = o.Stages.Sum(s => s.Seconds);
        long voxels = info.SpatialShape.Volume * info.TimePoints;
        stages.AddRow("[bold]total[/]", o.Chunks.ToString(ci), string.Format(ci, "{0:0.00} s", total), total > 0 ? Units.Rate(voxels / total) : "-");
        context.Stdout.Write(stages);

        var files = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"outputs in {dir}"))
            .AddColumn("file").AddColumn("holds").AddColumn("open with");
        foreach (var f in o.Outputs) files.AddRow(Markup.Escape(f.Path), Markup.Escape(f.Holds), Markup.Escape(f.OpenWith));
        files.AddRow(Markup.Escape(RunJob.Manifest), "inputs with checksums, model hash, parameters, version, timings", "any JSON viewer");
        context.Stdout.Write(files);
        if (o.Otsu is { } otsu) context.Out.WriteLine(otsu.Describe("run"));
        context.Out.WriteLine(string.Format(ci, "run: {0:N0} objects; {1} chunks of {2}; {3:N0} voxels in {4:0.00} s ({5}){6}.", o.Objects, o.Chunks, o.ChunkShape,
            voxels, total, total > 0 ? Units.Rate(voxels / total) : "-", o.Resumed ? ", resumed from an interrupted run" : ""));
    }

    /// <summary>One bar per stage plus an overall bar weighted by each stage's share of the work.</summary>
    private sealed class ProgressMonitor(ProgressContext context) : IRunMonitor
    {
        private readonly Dictionary<string, (ProgressTask Task, double Weight)> _stages = new(StringComparer.Ordinal);
        private ProgressTask? _overall;
        private double _totalWeight;

        public void Plan(IReadOnlyList<(string Stage, double Weight)> stages)
        {
            _overall = context.AddTask("[bold]overall[/]", maxValue: 1);
            _totalWeight = stages.Sum(s => s.Weight);
            int i = 0;
            foreach (var (stage, weight) in stages)
                _stages[stage] = (context.AddTask(Markup.Escape($"{++i}/{stages.Count} {stage}"), autoStart: false, maxValue: 1), weight);
        }

        public IProgress<JobProgress> Begin(string stage)
        {
            var (task, _) = _stages[stage];
            if (!task.IsStarted) task.StartTask();
            string title = task.Description;
            return new SynchronousProgress<JobProgress>(p =>
            {
                task.MaxValue = Math.Max(1, p.ChunksTotal);
                task.Value = p.ChunksDone;
                string rate = p.VoxelsPerSecond > 0 ? "  " + Units.Rate(p.VoxelsPerSecond) : "";
                task.Description = Markup.Escape($"{Markup.Remove(title)}  {p.ChunksDone}/{p.ChunksTotal} chunks{rate}");
                UpdateOverall();
            });
        }

        public void End(string stage)
        {
            if (!_stages.TryGetValue(stage, out var entry) || entry.Task.IsFinished) return;
            if (!entry.Task.IsStarted) entry.Task.StartTask();
            entry.Task.Value = entry.Task.MaxValue;
            entry.Task.StopTask();
            UpdateOverall();
        }

        private void UpdateOverall()
        {
            if (_overall is null || _totalWeight <= 0) return;
            double done = _stages.Values.Sum(s => s.Weight * (s.Task.MaxValue > 0 ? s.Task.Value / s.Task.MaxValue : 0));
            _overall.Value = done / _totalWeight;
            if (_stages.Values.All(s => s.Task.IsFinished)) _overall.StopTask();
        }
    }
}

/// <summary>
/// The arguments of `chunkseg run`, shared by the commands that stand for a run: `run` itself, `submit` (which sends
/// them to the cluster as a run spec), and the coordinator (which parses them again). Parsing only: what
/// they ask for is a <see cref="RunSpec"/>, which <see cref="RunPipeline.Open"/> checks.
/// </summary>
internal sealed class RunArguments
{
    private readonly Argument<string[]> _input = new("input")
    {
        Description = "Raw volume: x.zarr, x.zarr/0 or file.h5/dataset (3D, 2D or 3D+t; channels as the model expects); several, or a glob in the " +
            "file part ('data/*.h5/raw'), are a batch: each into --out DIR/{nickname}",
        Arity = ArgumentArity.ZeroOrMore,
    };
    private readonly Option<string?> _inputs = new("--inputs") { Description = "A batch: one more input address a line of this file (blank lines and # comments ignored)" };
    private readonly Option<string?> _outDir = new("--out") { Description = "Output folder (created; a rerun of the same command resumes it)" };
    private readonly Option<string?> _ilp, _model;
    private readonly Option<bool> _vigraSt;
    private readonly ObjectOptions _objects = new();
    private readonly Option<string> _mesh = new("--mesh") { Description = "Mesh format: obj (default), ply or none", DefaultValueFactory = _ => "obj" };
    private readonly Option<bool> _export = new("--export-probabilities") { Description = "Also write the probabilities (probabilities.h5/exported_data, as ilastik exports them)" };
    private readonly Option<string?> _chunk = new("--chunk") { Description = "Compute chunk core shape z,y,x (default: sized to a 1 GiB per-chunk budget)" };
    private readonly Option<string?> _chunks = new("--chunks") { Description = "Storage chunk shape z,y,x of the outputs (default: --chunk if given, else 64,64,64; 2D: y,x 256,256)" };
    private readonly Option<string?> _axes = Options.Axes();
    private readonly Option<string?> _format = Options.ZarrFormat(), _shard = Options.Shard(), _levels = Options.Levels();
    private readonly Option<int> _workers = Options.Workers();
    private readonly Option<string> _backend = Options.Backend("features, the forest, the segmentation and the split's blur");
    private readonly Option<bool> _overwrite = new("--overwrite") { Description = "Replace the outputs of an earlier run in --out (other files there are left alone)" };
    private readonly Option<string?> _split = new("--split")
    {
        Description = "voronoi: split touching objects of the segmentation: seeds are the maxima of the segmented channel blurred by --spot-sigma, " +
            "flooded through the foreground; distance: the watershed of the foreground's distance map (voxel size aware), seeds its maxima " +
            "within --min-distance (the probabilities are written whole first)",
    };
    private readonly Option<string?> _voronoiOtsu = new("--voronoi-otsu")
    {
        Description = "SPOT,OUTLINE: no classifier; label the raw image (one channel) as clEsperanto's voronoi_otsu_labeling(spot_sigma, " +
            "outline_sigma) does, exact across chunks, then mesh and tabulate its objects",
    };
    private readonly Option<string?> _spotSigma = new("--spot-sigma")
    {
        Description = "With --split voronoi: the spot sigma in voxels, s or z,y,x; with --voronoi-otsu: the spot sigma per axis, replacing SPOT",
    };
    private readonly Option<string?> _outlineSigma = new("--outline-sigma") { Description = "With --voronoi-otsu: the outline sigma per axis, s or z,y,x, replacing OUTLINE" };
    private readonly Option<string?> _minDistance = new("--min-distance")
    {
        Description = $"With --split distance: a seed is the largest distance within this many voxels, d or z,y,x (default {OptionValues.DefaultMinDistance})",
    };

    /// <param name="outRequired">False where a job file may stand in for the arguments (submit): ToSpec checks it then.</param>
    public RunArguments(bool outRequired = true)
    {
        (_ilp, _model, _vigraSt) = ClassifierOptions.Create();
        _outDir.Required = outRequired;
    }

    private IEnumerable<Option> All => ((Option[])[_outDir, _inputs, _ilp, _model, _vigraSt, _mesh, _export, _voronoiOtsu, _split, _spotSigma, _outlineSigma, _minDistance, _chunk, _chunks, _format, _shard, _levels, _axes, _workers, _backend, _overwrite]).Concat(_objects.All);

    public void AddTo(Command command)
    {
        command.Arguments.Add(_input);
        foreach (var option in All) command.Options.Add(option);
    }

    /// <summary>
    /// The run these arguments ask for, as given, with the paths (input, --out, --ilp, --model) made absolute; --workers
    /// stays unset unless given (one per core of the machine that runs it).
    /// </summary>
    /// <summary>The run <paramref name="args"/> (`run`'s arguments, e.g. from a job file) ask for; bad ones are a usage error naming them.</summary>
    public static RunSpec SpecOf(IReadOnlyList<string> args)
    {
        var arguments = new RunArguments();
        var command = new Command("run");
        arguments.AddTo(command);
        var parse = command.Parse([.. args]);
        if (parse.Errors.Count > 0)
            throw new UsageException($"job arguments \"{string.Join(' ', args)}\": {string.Join("; ", parse.Errors.Select(e => e.Message))}");
        return arguments.ToSpec(parse);
    }

    /// <summary>Whether the inputs are a batch: several, a glob (not a TIFF one: that is one volume), a folder of volumes, --inputs (or none, refused by <see cref="ToBatch"/>).</summary>
    public bool IsBatch(ParseResult parse) =>
        parse.GetValue(_inputs) is not null || parse.GetValue(_input) is not [var one] || RunBatch.IsGlob(one) || RunBatch.IsFolderOfVolumes(Path.GetFullPath(one));

    /// <summary>The one input (or job file, for submit) of what is not a batch (<see cref="IsBatch"/>; a batch has <see cref="ToBatch"/>).</summary>
    public string Input(ParseResult parse) => IsBatch(parse)
        ? throw new InvalidOperationException("a batch has no one input; see ToBatch")
        : parse.GetValue(_input)![0];

    /// <summary>A batch's folder (--out) and each input's run: the single run's spec with the input and --out DIR/{nickname}.</summary>
    public BatchSpec ToBatch(ParseResult parse)
    {
        var named = RunBatch.Name(RunBatch.Expand(parse.GetValue(_input) ?? [], FullPath(parse.GetValue(_inputs))));
        var runs = named.Select(b =>
        {
            var single = ToSpec(parse, b.Input);
            return new BatchRun(b, single with { OutDir = Path.Combine(single.OutDir, b.Nickname) });
        }).ToList();
        return new BatchSpec(Path.GetDirectoryName(runs[0].Spec.OutDir)!, runs);
    }

    public RunSpec ToSpec(ParseResult parse) => ToSpec(parse, Input(parse));

    private RunSpec ToSpec(ParseResult parse, string input) => new(
        AbsoluteVolume(input),
        Path.GetFullPath(parse.GetValue(_outDir) ?? throw new UsageException("--out: no output folder given (required)")),
        Ilp: FullPath(parse.GetValue(_ilp)),
        Model: FullPath(parse.GetValue(_model)),
        VigraStructureTensor: parse.GetValue(_vigraSt),
        Threshold: _objects.ThresholdValue(parse),
        Channel: parse.GetValue(_objects.Channel),
        Argmax: parse.GetValue(_objects.Argmax),
        Foreground: parse.GetValue(_objects.Foreground),
        SmoothSigma: parse.GetValue(_objects.Smooth),
        Connectivity: parse.GetValue(_objects.Connectivity),
        MinSize: parse.GetValue(_objects.MinSize),
        MaxSize: parse.GetValue(_objects.MaxSize),
        ExcludeBorder: parse.GetValue(_objects.ExcludeBorder),
        Mesh: parse.GetValue(_mesh)!,
        ExportProbabilities: parse.GetValue(_export),
        Chunk: parse.GetValue(_chunk),
        Chunks: parse.GetValue(_chunks),
        Axes: parse.GetValue(_axes),
        Workers: parse.GetResult(_workers) is { Implicit: false } ? parse.GetValue(_workers) : null,
        Backend: parse.GetValue(_backend)!,
        Overwrite: parse.GetValue(_overwrite),
        Split: parse.GetValue(_split),
        SpotSigma: parse.GetValue(_spotSigma),
        MinDistance: parse.GetValue(_minDistance),
        Dilate: parse.GetValue(_objects.Dilate),
        Erode: parse.GetValue(_objects.Erode),
        OtsuThreshold: _objects.OtsuThreshold(parse),
        VoronoiOtsu: parse.GetValue(_voronoiOtsu),
        OutlineSigma: parse.GetValue(_outlineSigma),
        Format: parse.GetValue(_format),
        Shard: parse.GetValue(_shard),
        Levels: parse.GetValue(_levels));

    private static string? FullPath(string? path) => path is null ? null : Path.GetFullPath(path);

    /// <summary>A volume address made absolute: a relative store or file path gains the working folder, the dataset path stays.</summary>
    private static string AbsoluteVolume(string address) => Path.IsPathRooted(address) ? address : Path.GetFullPath(address);
}
