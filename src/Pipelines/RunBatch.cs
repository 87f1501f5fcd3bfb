using System.Globalization;
using System.Text;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage;

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

/// <summary>
/// A command over several inputs into one folder (<c>--out DIR</c>): `run` into <c>DIR/{nickname}</c>, `predict` and
/// `label` into <c>DIR/{nickname}.zarr</c>; each input's work is the single command's, one after another. This class
/// names the inputs and writes <see cref="Csv"/>.
/// </summary>
public static class RunBatch
{
    public const string Csv = "batch.csv";

    /// <summary>The columns of <see cref="Csv"/> (before seconds, status, error) for run, predict and label.</summary>
    public static readonly IReadOnlyList<string> RunColumns = ["input", "nickname", "objects", "voxels"],
        PredictColumns = ["input", "output", "voxels"], LabelColumns = ["input", "output", "objects", "voxels"];

    /// <summary>
    /// The inputs <paramref name="addresses"/> name, in order: each made absolute, one with a wildcard (* or ?) in its
    /// file or store part replaced by the paths it matches (in ordinal order; the dataset part is kept), one matching
    /// nothing refused. <paramref name="listFile"/>: one more address a line, blank lines and # comments ignored.
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
