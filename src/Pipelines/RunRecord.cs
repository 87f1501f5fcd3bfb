using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipelines;

/// <summary>
/// A run's identity and journal. The parameters (inputs with checksums, model hash, every option that changes the
/// output) are the run's key: a folder resumes only the run that started it. The journal (.chunkseg-run.json) holds
/// the key and the stages done so far; manifest.json, written last, holds the key, the stages and the outputs.
/// </summary>
internal sealed class RunRecord
{
    private readonly string _path;
    private readonly List<RunStage> _stages;

    private RunRecord(string path, SortedDictionary<string, string> parameters, List<RunStage> stages, Long3 chunkShape, long chunks)
    {
        _path = path;
        Parameters = parameters;
        _stages = stages;
        ChunkShape = chunkShape;
        Chunks = chunks;
    }

    public SortedDictionary<string, string> Parameters { get; }
    public IReadOnlyList<RunStage> Stages => _stages;
    public Long3 ChunkShape { get; private set; }
    public long Chunks { get; private set; }

    /// <summary>
    /// With <c>--threshold otsu</c>: the threshold found once the probabilities were whole; a rerun labels with it
    /// rather than finding it again.
    /// </summary>
    public double? Otsu { get; set; }

    public static string Version => typeof(RunRecord).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(RunRecord).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>Every parameter that decides the run's output (worker count does not: the output is the same for any).</summary>
    public static SortedDictionary<string, string> ParametersOf(RunRequest r)
    {
        var info = r.Raw.Info;
        var ci = CultureInfo.InvariantCulture;
        var p = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["input"] = info.Location,
            ["input.axes"] = info.Axes.Names,
            ["input.shape"] = string.Join(",", info.Shape),
            ["input.dtype"] = info.DataType.ToString(),
            ["input.metadataSha256"] = MetadataChecksum(info),
            ["connectivity"] = ((int)r.Connectivity).ToString(ci),
            ["minSize"] = r.Filter.MinVoxels.ToString(ci),
            ["maxSize"] = r.Filter.MaxVoxels.ToString(ci),
            ["excludeBorder"] = r.Filter.ExcludeBorder ? "1" : "0",
            ["mesh"] = r.MeshFormat ?? "none",
            ["exportProbabilities"] = r.ExportProbabilities ? "1" : "0",
            ["chunk"] = r.ChunkShape?.ToString() ?? "auto",
            ["chunks"] = r.StorageChunks?.ToString() ?? "default",
        };
        if (r.Classifier is not null)
        {
            foreach (var (key, value) in r.ClassifierParameters) p["classifier." + key] = value;
            string classifierFile = r.ClassifierParameters.TryGetValue("ilp", out var ilp) ? ilp : r.ClassifierParameters["model"];
            p["classifier.sha256"] = FileSha256(classifierFile);
        }
        r.Segmentation.AddTo(p);
        r.Split?.AddTo(p);
        if (r.OtsuThreshold)
        {
            // The threshold is found during the run (the journal and the manifest hold its value); the key says how.
            string given = "threshold=" + p["threshold"];
            p["threshold"] = "otsu";
            if (p.TryGetValue("split", out var split)) p["split"] = split.Replace(given, "threshold=otsu", StringComparison.Ordinal);
        }
        if (r.Morphology is { } morphology) p[LabelJob.VerbOf(morphology)] = morphology.Radius.ToString("R", ci);
        p["zarr"] = ZarrLayout.Describe(r.Zarr);
        p["levels"] = r.Levels?.ToString(ci) ?? "auto";
        return p;
    }

    /// <summary>
    /// Claims <paramref name="outDir"/> for the run with <paramref name="parameters"/>: the journal to continue, a new one, or
    /// null when the folder already holds this run finished. A different run's outputs are refused unless <paramref name="overwrite"/>,
    /// which removes them (<paramref name="owned"/>: every path a run writes; nothing else in the folder is touched).
    /// </summary>
    public static RunRecord? Claim(string outDir, SortedDictionary<string, string> parameters, bool overwrite, string manifestPath, string journalPath,
        IEnumerable<string> owned)
    {
        if (overwrite)
        {
            foreach (var path in owned.ToList())
            {
                if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
                else if (File.Exists(path)) File.Delete(path);
            }
        }
        else if (File.Exists(manifestPath))
        {
            var previous = ReadParameters(manifestPath);
            if (Differences(previous, parameters) is { Count: > 0 } differences) throw Refusal(outDir, "finished", differences);
            return null;
        }
        else if (File.Exists(journalPath))
        {
            var journal = Read(journalPath);
            if (Differences(journal.Parameters, parameters) is { Count: > 0 } differences) throw Refusal(outDir, "unfinished", differences);
            return journal;
        }
        else if (owned.FirstOrDefault(p => Path.Exists(p)) is { } foreign)
        {
            throw new UsageException($"{outDir}: already holds {Path.GetFileName(foreign)}, not written by a run of this command; " +
                "pass --overwrite to replace it, or choose another --out");
        }
        var created = new RunRecord(journalPath, parameters, [], default, 0);
        created.Save();
        return created;
    }

    public void SetGrid(Long3 chunkShape, long chunks) => (ChunkShape, Chunks) = (chunkShape, chunks);

    /// <summary>
    /// Adds a finished stage (replacing an earlier record of it) with this process's memory high-water mark so far, so
    /// the manifest shows which stage needed the memory; <see cref="Save"/> makes it durable.
    /// </summary>
    public void Record(RunStage stage)
    {
        _stages.RemoveAll(s => s.Name == stage.Name);
        _stages.Add(stage with { PeakRssMb = PeakRssMb() });
    }

    /// <summary>This process's high-water mark (VmHWM) in MB.</summary>
    public static double PeakRssMb() => Math.Round(System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0, 1);

    public void Save() => WriteAtomically(_path, json =>
    {
        json.WriteStartObject();
        WriteParameters(json, Parameters);
        WriteGrid(json, ChunkShape, Chunks);
        if (Otsu is { } otsu) json.WriteNumber("otsu_threshold", otsu);
        WriteStages(json, _stages);
        json.WriteEndObject();
    });

    private static RunRecord Read(string path)
    {
        var root = ParseFile(path);
        var (shape, chunks) = ReadGrid(root);
        return new RunRecord(path, ReadParameters(root, path), ReadStages(root), shape, chunks) { Otsu = root["otsu_threshold"]?.GetValue<double>() };
    }

    /// <summary>manifest.json: the run's provenance and results, written atomically once every output is in place.</summary>
    public static void WriteManifest(string path, RunRequest request, SortedDictionary<string, string> parameters, RunRecord journal, RunOutcome outcome)
    {
        var info = request.Raw.Info;
        double seconds = outcome.Stages.Sum(s => s.Seconds);
        WriteAtomically(path, json =>
        {
            json.WriteStartObject();
            json.WriteString("format", "chunkseg-run/1");
            json.WriteString("chunkseg_version", Version);
            json.WriteString("finished_utc", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
            json.WriteStartObject("input");
            json.WriteString("location", info.Location);
            json.WriteString("axes", info.Axes.Names);
            json.WriteStartArray("shape");
            foreach (long s in info.Shape) json.WriteNumberValue(s);
            json.WriteEndArray();
            json.WriteString("dtype", info.DataType.ToString());
            json.WriteStartObject("voxel_size");
            json.WriteNumber("z", info.VoxelSize.Z);
            json.WriteNumber("y", info.VoxelSize.Y);
            json.WriteNumber("x", info.VoxelSize.X);
            json.WriteString("unit", info.VoxelSize.Unit);
            json.WriteEndObject();
            json.WriteString("metadata_sha256", parameters["input.metadataSha256"]);
            json.WriteEndObject();
            if (request.Classifier is { } classifier)
            {
                json.WriteStartObject("classifier");
                json.WriteString("source", classifier.Source);
                json.WriteString("kind", request.ClassifierParameters.ContainsKey("ilp") ? "ilastik project" : "chunkseg model");
                json.WriteString("sha256", parameters["classifier.sha256"]);
                json.WriteNumber("features", classifier.Classifier.FeatureCount);
                json.WriteString("feature_selection", classifier.Features.ToString());
                json.WriteStartArray("classes");
                foreach (var name in classifier.ClassNames) json.WriteStringValue(name);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            else
            {
                // --voronoi-otsu: no classifier; the raw image labelled as clEsperanto's voronoi_otsu_labeling labels it.
                json.WriteNull("classifier");
            }
            WriteParameters(json, parameters);
            WriteGrid(json, outcome.ChunkShape, outcome.Chunks);
            if (outcome.Otsu is { } otsu)
            {
                // --threshold otsu: the threshold found over the whole probabilities, as `label --threshold otsu` reports it.
                json.WriteStartObject("otsu_threshold");
                json.WriteNumber("channel", otsu.Channel);
                json.WriteBoolean("smoothed", otsu.Smoothed);
                json.WriteNumber("value", otsu.Threshold);
                json.WriteString("foreground", "above the value");
                json.WriteEndObject();
            }
            json.WriteNumber("objects", outcome.Objects);
            json.WriteNumber("voxels", info.SpatialShape.Volume * info.TimePoints);
            json.WriteNumber("seconds", Math.Round(seconds, 3));
            json.WriteNumber("voxels_per_second", seconds > 0 ? Math.Round(info.SpatialShape.Volume * info.TimePoints / seconds) : 0);
            // This process's high-water mark (VmHWM): what the run needed, bounded by the chunk size and worker count.
            json.WriteNumber("peak_rss_mb", PeakRssMb());
            WriteStages(json, outcome.Stages);
            json.WriteStartArray("outputs");
            string dir = Path.GetDirectoryName(path)!;
            foreach (var output in outcome.Outputs)
            {
                json.WriteStartObject();
                json.WriteString("path", output.Path);
                json.WriteString("holds", output.Holds);
                json.WriteString("open_with", output.OpenWith);
                string file = Path.Combine(dir, output.Path);
                if (File.Exists(file) && !file.EndsWith(".h5", StringComparison.Ordinal)) json.WriteString("sha256", FileSha256(file));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary>A finished run's outcome as its manifest records it.</summary>
    public static RunOutcome ReadOutcome(string manifestPath)
    {
        var root = ParseFile(manifestPath);
        var (shape, chunks) = ReadGrid(root);
        var outputs = root["outputs"]!.AsArray()
            .Select(o => new RunOutput(o!["path"]!.GetValue<string>(), o["holds"]!.GetValue<string>(), o["open_with"]!.GetValue<string>())).ToList();
        var otsu = root["otsu_threshold"] is JsonObject found
            ? new OtsuFound(found["channel"]!.GetValue<int>(), found["smoothed"]!.GetValue<bool>(), found["value"]!.GetValue<double>())
            : null;
        return new RunOutcome(true, false, ReadStages(root), root["objects"]!.GetValue<long>(), shape, chunks, outputs, manifestPath) { Otsu = otsu };
    }

    private static SortedDictionary<string, string> ReadParameters(string manifestPath) => ReadParameters(ParseFile(manifestPath), manifestPath);

    private static SortedDictionary<string, string> ReadParameters(JsonNode root, string path)
    {
        if (root["parameters"] is not JsonObject parameters)
            throw new VolumeException(path, "has no \"parameters\" object; it was not written by chunkseg run (pass --overwrite to replace it)");
        return new SortedDictionary<string, string>(parameters.ToDictionary(p => p.Key, p => p.Value?.GetValue<string>() ?? ""), StringComparer.Ordinal);
    }

    private static List<string> Differences(SortedDictionary<string, string> before, SortedDictionary<string, string> now) =>
        before.Keys.Union(now.Keys).Order(StringComparer.Ordinal)
            .Where(k => before.GetValueOrDefault(k) != now.GetValueOrDefault(k))
            .Select(k => $"{k} {before.GetValueOrDefault(k) ?? "(none)"} → {now.GetValueOrDefault(k) ?? "(none)"}")
            .ToList();

    private static UsageException Refusal(string outDir, string state, List<string> differences) =>
        new($"{outDir}: holds the {state} run of a different command ({string.Join("; ", differences.Take(6))}" +
            (differences.Count > 6 ? $"; and {differences.Count - 6} more" : "") + "); pass --overwrite to replace its outputs, or choose another --out");

    private static void WriteParameters(Utf8JsonWriter json, SortedDictionary<string, string> parameters)
    {
        json.WriteStartObject("parameters");
        foreach (var (key, value) in parameters) json.WriteString(key, value);
        json.WriteEndObject();
    }

    private static void WriteGrid(Utf8JsonWriter json, Long3 shape, long chunks)
    {
        json.WriteStartArray("chunk_shape");
        json.WriteNumberValue(shape.Z);
        json.WriteNumberValue(shape.Y);
        json.WriteNumberValue(shape.X);
        json.WriteEndArray();
        json.WriteNumber("chunks", chunks);
    }

    private static (Long3, long) ReadGrid(JsonNode root)
    {
        var s = root["chunk_shape"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray();
        return (new Long3(s[0], s[1], s[2]), root["chunks"]!.GetValue<long>());
    }

    private static void WriteStages(Utf8JsonWriter json, IEnumerable<RunStage> stages)
    {
        json.WriteStartArray("stages");
        foreach (var s in stages)
        {
            json.WriteStartObject();
            json.WriteString("name", s.Name);
            json.WriteNumber("seconds", Math.Round(s.Seconds, 3));
            json.WriteNumber("chunks", s.Chunks);
            json.WriteNumber("chunks_resumed", s.ChunksResumed);
            json.WriteNumber("voxels", s.Voxels);
            json.WriteNumber("voxels_per_second", s.Seconds > 0 ? Math.Round(s.Voxels / s.Seconds) : 0);
            json.WriteNumber("peak_rss_mb", s.PeakRssMb);
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    private static List<RunStage> ReadStages(JsonNode root) => root["stages"]!.AsArray().Select(s => new RunStage(
        s!["name"]!.GetValue<string>(), s["seconds"]!.GetValue<double>(), s["chunks"]!.GetValue<long>(), s["chunks_resumed"]!.GetValue<long>(),
        s["voxels"]!.GetValue<long>(), s["peak_rss_mb"]?.GetValue<double>() ?? 0)).ToList();

    private static JsonNode ParseFile(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllBytes(path)) ?? throw new JsonException("empty document");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new VolumeException(path, $"is not a readable run record ({e.Message}); pass --overwrite to start the run again", e);
        }
    }

    private static void WriteAtomically(string path, Action<Utf8JsonWriter> write) => Storage.Internal.AtomicFile.Write(path, stream =>
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        write(json);
    });

    /// <summary>
    /// SHA-256 of what defines the input without reading its voxels: location, axes, shape, type, storage chunks, voxel size,
    /// and the bytes of its Zarr metadata files (.zarray, .zattrs, .zgroup, zarr.json) where it is a Zarr array or image, or of
    /// an N5 dataset's attributes.json.
    /// </summary>
    private static string MetadataChecksum(VolumeInfo info)
    {
        string text = string.Create(CultureInfo.InvariantCulture, $"{info.Format} {info.Axes} [{string.Join(",", info.Shape)}] {info.DataType} " +
            $"chunks [{string.Join(",", info.StorageChunks)}] voxel {info.VoxelSize.Z},{info.VoxelSize.Y},{info.VoxelSize.X} {info.VoxelSize.Unit} {info.Codec}");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(text));
        if (info.Format == VolumeFormat.Zarr && Directory.Exists(info.Location))
        {
            string? parent = Path.GetDirectoryName(info.Location.TrimEnd('/'));
            foreach (var dir in new[] { parent, info.Location }.OfType<string>())
                foreach (var name in new[] { ".zgroup", ".zattrs", ".zarray", "zarr.json" })
                    if (File.Exists(Path.Combine(dir, name))) hash.AppendData(File.ReadAllBytes(Path.Combine(dir, name)));
        }
        if (info.Format == VolumeFormat.N5 && File.Exists(Path.Combine(info.Location, "attributes.json")))
            hash.AppendData(File.ReadAllBytes(Path.Combine(info.Location, "attributes.json")));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static string FileSha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
