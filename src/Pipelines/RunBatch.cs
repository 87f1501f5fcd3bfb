using System.Globalization;
using System.Text;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Pipelines;

/// <summary>One input of a batch run: its address as given (globs expanded, made absolute) and its subfolder's name.</summary>
public sealed record BatchInput(string Input, string Nickname);

/// <summary>
/// How one input of a batch ended. <see cref="Status"/>: done, already done (its folder held the finished run) or failed
/// (<see cref="Error"/> says why; <see cref="Objects"/> and <see cref="Voxels"/> null then). <see cref="Seconds"/>: the
/// time this command spent on it.
/// </summary>
public sealed record BatchResult(BatchInput Input, long? Objects, long? Voxels, double Seconds, string Status, string? Error = null)
{
    /// <summary>Where this input's output is (a folder for run, a volume for predict and label).</summary>
    public string? Output { get; init; }
}

/// <summary>How one input of a batch ended well: its objects (label, run), voxels, and whether its output was already there.</summary>
public sealed record BatchDone(long? Objects, long? Voxels, bool AlreadyDone);

/// <summary>One input of a batch run and its run: the single run's spec with the input and <c>--out DIR/{nickname}</c>.</summary>
public sealed record BatchRun(BatchInput Input, RunSpec Spec);

/// <summary>
/// A batch `run` as plain data, what `submit` hands the coordinator as one job: the folder and each input's run.
/// Its JSON (web defaults) has <c>runs</c> where a <see cref="RunSpec"/>'s has <c>input</c>; <see cref="IsBatchJson"/> tells them apart.
/// </summary>
public sealed record BatchSpec(string OutDir, IReadOnlyList<BatchRun> Runs)
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Whether a job's JSON is a batch (else a single run's <see cref="RunSpec"/>).</summary>
    public static bool IsBatchJson(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("runs", out _);
        }
        catch (JsonException)
        {
            return false;   // not JSON at all: RunSpec.FromJson says so
        }
    }

    /// <summary>A batch from <see cref="ToJson"/>'s JSON; one that is not is a usage error naming <paramref name="what"/>.</summary>
    public static BatchSpec FromJson(string json, string what)
    {
        try
        {
            var spec = JsonSerializer.Deserialize<BatchSpec>(json, JsonOptions) ?? throw new UsageException($"{what}: empty batch");
            return spec.Runs.Count > 0 ? spec : throw new UsageException($"{what}: a batch of no inputs");
        }
        catch (JsonException e)
        {
            throw new UsageException($"{what}: not a batch ({e.Message})", e);
        }
    }
}

/// <summary>
/// A command over several inputs into one folder (<c>--out DIR</c>): `run` into <c>DIR/{nickname}</c>, `predict` and
/// `label` into <c>DIR/{nickname}.zarr</c>; each input's work is the single command's. This class names the inputs, runs
/// them (<see cref="RunAsync"/>: on this machine one after another, each over all worker threads; on the cluster
/// <see cref="ExecuteAsync"/>, several side by side, their chunks spread over the gpu-nodes together) and writes <see cref="Csv"/>.
/// <code>
///   inputs ─ Expand (globs, --inputs) ─ Name ({nickname}, _2 …) ─▶ RunAsync ─┬─ input 1 ─ its single run ─▶ DIR/a/
///                                                                            ├─ input 2 ─ … (failed: named, others go on)
///                                                                            └─▶ DIR/batch.csv (input, …, seconds, status, error)
/// </code>
/// A rerun resumes dataset by dataset: each input's own run finds its finished folder (already done) or resumes it.
/// </summary>
public static class RunBatch
{
    public const string Csv = "batch.csv";

    /// <summary>The columns of <see cref="Csv"/> (before seconds, status, error) for run, predict and label.</summary>
    public static readonly IReadOnlyList<string> RunColumns = ["input", "nickname", "objects", "voxels"],
        PredictColumns = ["input", "output", "voxels"], LabelColumns = ["input", "output", "objects", "voxels"];

    /// <summary>Inputs a cluster batch runs side by side: enough to keep every gpu-node fed through each input's
    /// coordinator-side steps (merging, welding), few enough that the coordinator's memory stays that of a few runs.</summary>
    public const int ClusterInputsAtOnce = 4;

    /// <summary>
    /// Runs <paramref name="batch"/>'s inputs, <paramref name="atOnce"/> at a time, each with <paramref name="runOne"/>,
    /// timed; an input that throws (unless <paramref name="ct"/> is cancelled) is handed to <paramref name="failed"/>,
    /// which reports it and returns the message recorded, and the others go on. Writes <see cref="Csv"/> into
    /// <paramref name="outDir"/> with <paramref name="columns"/>; returns the results in the inputs' order.
    /// </summary>
    public static async Task<IReadOnlyList<BatchResult>> RunAsync(string outDir, IReadOnlyList<(BatchInput Input, string Output)> batch,
        IReadOnlyList<string> columns, int atOnce, Func<BatchInput, string, CancellationToken, Task<BatchDone>> runOne,
        Func<BatchInput, Exception, string> failed, CancellationToken ct)
    {
        var results = new BatchResult[batch.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, batch.Count), new ParallelOptions { MaxDegreeOfParallelism = atOnce, CancellationToken = ct },
            async (i, token) =>
            {
                var (input, output) = batch[i];
                var clock = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    var done = await runOne(input, output, token).ConfigureAwait(false);
                    results[i] = new BatchResult(input, done.Objects, done.Voxels, clock.Elapsed.TotalSeconds, done.AlreadyDone ? "already done" : "done") { Output = output };
                }
                catch (Exception e) when (!token.IsCancellationRequested)
                {
                    results[i] = new BatchResult(input, null, null, clock.Elapsed.TotalSeconds, "failed", failed(input, e)) { Output = output };
                }
            }).ConfigureAwait(false);
        Directory.CreateDirectory(outDir);
        WriteCsv(Path.Combine(outDir, Csv), results, columns);
        return results;
    }

    /// <summary>
    /// A coordinator's batch job: every input's run (<see cref="RunPipeline.ExecuteAsync"/>, chunk passes through
    /// <paramref name="remoteTransport"/>), <see cref="ClusterInputsAtOnce"/> side by side, progress reported per input to
    /// <paramref name="monitor"/>. Throws, naming each failed input and its error, when any failed (the others finished).
    /// </summary>
    public static async Task<IReadOnlyList<BatchResult>> ExecuteAsync(BatchSpec spec, Func<IChunkTransport> remoteTransport, ILoggerFactory logs,
        IRunMonitor monitor, bool resuming, CancellationToken ct)
    {
        var logger = logs.CreateLogger(typeof(RunBatch));
        var runs = spec.Runs.ToDictionary(r => r.Input);
        int ended = 0;
        var results = await RunAsync(spec.OutDir, spec.Runs.Select(r => (r.Input, r.Spec.OutDir)).ToList(), RunColumns, ClusterInputsAtOnce,
            async (input, output, token) =>
            {
                logger.LogInformation("Batch input {Input} → {Output}", input.Input, output);
                var outcome = await RunPipeline.ExecuteAsync(runs[input].Spec, remoteTransport, null, logs,
                    new InputMonitor(monitor, input.Nickname, () => Volatile.Read(ref ended), spec.Runs.Count), resuming, token).ConfigureAwait(false);
                Interlocked.Increment(ref ended);
                return new BatchDone(outcome.Objects, outcome.Voxels, outcome.AlreadyComplete);
            },
            (input, e) =>
            {
                Interlocked.Increment(ref ended);
                string message = e.GetBaseException().Message;
                logger.LogError("Batch input {Input} failed: {Error}", input.Input, message);
                return message;
            }, ct).ConfigureAwait(false);
        var failed = results.Where(r => r.Error is not null).ToList();
        if (failed.Count > 0)
            throw new BatchFailedException($"{failed.Count} of {results.Count} inputs failed: " +
                string.Join("; ", failed.Select(r => $"{r.Input.Input}: {r.Error}")) + $" ({Path.Combine(spec.OutDir, Csv)} lists them all)");
        return results;
    }

    /// <summary>An input's stages as the batch's: "2/3 inputs ended; cells: classify".</summary>
    private sealed class InputMonitor(IRunMonitor batch, string nickname, Func<int> ended, int inputs) : IRunMonitor
    {
        public void Plan(IReadOnlyList<(string Stage, double Weight)> stages) { }

        public IProgress<JobProgress> Begin(string stage) =>
            batch.Begin($"{ended().ToString(CultureInfo.InvariantCulture)}/{inputs.ToString(CultureInfo.InvariantCulture)} inputs ended; {nickname}: {stage}");

        public void End(string stage) { }
    }

    /// <summary>
    /// The inputs <paramref name="addresses"/> name, in order: each made absolute, one with a wildcard (* or ?) in its
    /// file or store part replaced by the paths it matches (in ordinal order; the dataset part is kept), one matching
    /// nothing refused; a folder of volumes (<see cref="IsFolderOfVolumes"/>) replaced by its volumes, in ordinal order.
    /// <paramref name="listFile"/>: one more address a line, blank lines and # comments ignored.
    /// </summary>
    public static IReadOnlyList<string> Expand(IEnumerable<string> addresses, string? listFile)
    {
        var given = addresses.ToList();
        if (listFile is not null)
        {
            if (!File.Exists(listFile)) throw new UsageException($"--inputs {listFile}: no such file");
            given.AddRange(File.ReadLines(listFile).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
        }
        var inputs = new List<string>();
        foreach (string text in given)
        {
            string absolute = Path.IsPathRooted(text) ? text : Path.GetFullPath(text);
            if (IsFolderOfVolumes(absolute))
            {
                var volumes = Directory.EnumerateFileSystemEntries(absolute).Where(IsVolumeName).Order(StringComparer.Ordinal).ToList();
                if (volumes.Count == 0) throw new UsageException($"{text}: a folder with no volumes in it (.zarr, .h5, .hdf5, .n5, .tif, .tiff)");
                inputs.AddRange(volumes);
                continue;
            }
            if (!IsGlob(absolute))
            {
                inputs.Add(absolute);
                continue;
            }
            VolumeAddress address;
            try { address = VolumeAddress.Parse(absolute); }
            catch (ArgumentException e) { throw new UsageException($"{text}: {e.Message}", e); }
            if (address.InnerPath.IndexOfAny(Wildcards) >= 0)
                throw new UsageException($"{text}: a wildcard in the dataset path ({address.InnerPath}); only the file or store part may have one");
            var matches = Glob(address.RootPath);
            if (matches.Count == 0) throw new UsageException($"{text}: matches no file or store");
            inputs.AddRange(matches.Select(m => address.InnerPath.Length == 0 ? m : $"{m}/{address.InnerPath}"));
        }
        if (inputs.Count == 0) throw new UsageException("no input given: name one or more volumes, a glob, or --inputs LIST.txt");
        return inputs;
    }

    /// <summary>
    /// Each input's subfolder: ilastik's <c>{nickname}</c> (the file or store name without its last extension, the dataset
    /// path left out: <c>a/cells.h5/raw</c> → <c>cells</c>). A name taken by an earlier input gets <c>_2</c>, <c>_3</c>, …
    /// (the first free one), so the names follow from the inputs' order alone.
    /// </summary>
    public static IReadOnlyList<BatchInput> Name(IReadOnlyList<string> inputs)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var named = new List<BatchInput>(inputs.Count);
        foreach (string input in inputs)
        {
            string nickname = Nickname(input), name = nickname;
            for (int i = 2; !taken.Add(name); i++) name = $"{nickname}_{i.ToString(CultureInfo.InvariantCulture)}";
            named.Add(new BatchInput(input, name));
        }
        return named;
    }

    /// <summary>ilastik's nickname of a volume address: its file or store name without the last extension.</summary>
    public static string Nickname(string input)
    {
        string root;
        try { root = VolumeAddress.Parse(input).RootPath; }
        catch (ArgumentException) { root = input.Replace('\\', '/').TrimEnd('/'); }   // not an address: opening it fails, reported by name
        string name = Path.GetFileNameWithoutExtension(root.TrimEnd('/'));
        return name.Length == 0 ? "input" : name;
    }

    /// <summary>
    /// <see cref="Csv"/>: <paramref name="columns"/> (of input, nickname, output, objects, voxels; default
    /// <see cref="RunColumns"/>), then seconds, status, error; one row per input, written atomically.
    /// </summary>
    public static void WriteCsv(string path, IEnumerable<BatchResult> results, IReadOnlyList<string>? columns = null) => Storage.Internal.AtomicFile.Write(path, stream =>
    {
        columns ??= RunColumns;
        using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
        writer.WriteLine(string.Join(',', columns.Concat(["seconds", "status", "error"])));
        foreach (var r in results)
            writer.WriteLine(string.Join(',', columns.Select(c => Field(r, c))
                .Concat([r.Seconds.ToString("0.000", CultureInfo.InvariantCulture), r.Status, r.Error ?? ""]).Select(Quote)));
    });

    /// <summary>One of <paramref name="r"/>'s fields by its column's name; empty where it has none.</summary>
    public static string Field(BatchResult r, string column) => column switch
    {
        "input" => r.Input.Input,
        "nickname" => r.Input.Nickname,
        "output" => r.Output ?? "",
        "objects" => r.Objects?.ToString(CultureInfo.InvariantCulture) ?? "",
        "voxels" => r.Voxels?.ToString(CultureInfo.InvariantCulture) ?? "",
        _ => throw new ArgumentException($"no batch column {column}", nameof(column)),
    };

    private static readonly char[] Wildcards = ['*', '?'];

    /// <summary>
    /// Whether <paramref name="input"/> is a glob of inputs: it has a wildcard and is not a TIFF address, whose glob names
    /// one volume (2D files as z-slices, stacks as time points), as every command reads it.
    /// </summary>
    public static bool IsGlob(string input)
    {
        if (input.IndexOfAny(Wildcards) < 0) return false;
        try { return VolumeAddress.Parse(input).Format != VolumeFormat.Tiff; }
        catch (ArgumentException) { return true; }     // not an address yet: Expand names what is wrong with it
    }

    /// <summary>
    /// Whether <paramref name="input"/> is a folder of inputs: a folder that is not itself a volume (a Zarr store, an N5
    /// container, a folder of TIFF slices): its Zarr stores, HDF5 and TIFF files and N5 containers are the batch.
    /// </summary>
    public static bool IsFolderOfVolumes(string input)
    {
        if (!Directory.Exists(input) || IsVolumeName(input)) return false;
        try
        {
            VolumeAddress.Parse(input);
            return false;                                   // a volume without a telling suffix (a store, TIFF slices)
        }
        catch (ArgumentException)
        {
            return true;
        }
    }

    private static readonly string[] VolumeExtensions = [".zarr", ".n5", ".h5", ".hdf5", ".tif", ".tiff", ".btf"];

    private static bool IsVolumeName(string path) => VolumeExtensions.Contains(Path.GetExtension(path.TrimEnd('/')).ToLowerInvariant());

    private static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) < 0 ? field : "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>The paths matching <paramref name="pattern"/> (absolute, '/'-separated; wildcards in any component), ordinal order.</summary>
    private static List<string> Glob(string pattern)
    {
        string[] parts = pattern.Split('/');
        var paths = new List<string> { parts[0].Length == 0 ? "/" : parts[0] };
        foreach (string part in parts.Skip(1).Where(p => p.Length > 0))
        {
            paths = part.IndexOfAny(Wildcards) < 0
                ? paths.Select(p => Path.Combine(p, part)).Where(Path.Exists).ToList()
                : paths.Where(Directory.Exists).SelectMany(p => Directory.EnumerateFileSystemEntries(p, part)).ToList();
        }
        return paths.Order(StringComparer.Ordinal).ToList();
    }
}

/// <summary>A batch in which some inputs failed; the message names each with its error (the others finished).</summary>
public sealed class BatchFailedException(string message) : ChunkSegException(message)
{
    public override int ExitCode => 1;
}
