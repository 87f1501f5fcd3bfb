using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Storage.Models;

/// <summary>One tree in the flat layout of ChunkSeg.Kernels.Forest.DecisionTree (see docs/model-format.md).</summary>
public sealed record TreeArrays(int[] Feature, double[] Threshold, int[] Left, int[] Right, double[] LeafValues);

/// <summary>
/// A pixel classifier trained by `chunkseg train`: how to compute its features, which classes it votes
/// for, and its trees. Raw data only; the kernels turn it into a forest.
/// </summary>
public sealed record ForestModel(
    string FeatureSpec,
    string? AxisScales,
    bool VigraStructureTensor,
    int InputChannels,
    int FeatureCount,
    string[] FeatureNames,
    int[] ClassLabels,
    string[] ClassNames,
    IReadOnlyList<TreeArrays> Trees,
    string Provenance);

/// <summary>
/// Reads and writes <see cref="ForestModel"/> files: gzip-compressed UTF-8 JSON with a format name and a
/// version number (docs/model-format.md). Writes go to a temporary file that is renamed into place.
/// </summary>
public static class ForestModelFile
{
    public const string FormatName = "chunkseg-forest";
    public const int Version = 1;

    public static void Save(string path, ForestModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Validate(model, path);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = $"{full}.tmp-{Guid.NewGuid():N}";
        try
        {
            using (var file = File.Create(temp))
            using (var gzip = new GZipStream(file, CompressionLevel.Optimal))
                JsonSerializer.Serialize(gzip, new Envelope(FormatName, Version, model), Options);
            File.Move(temp, full, overwrite: true);
        }
        catch (IOException e)
        {
            File.Delete(temp);
            throw new VolumeException(path, $"cannot write the model: {e.Message}", e);
        }
    }

    public static ForestModel Load(string path)
    {
        if (!File.Exists(path)) throw new VolumeException(path, "model file not found");
        Envelope? envelope;
        try
        {
            using var file = File.OpenRead(path);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            envelope = JsonSerializer.Deserialize<Envelope>(gzip, Options);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or NotSupportedException)
        {
            throw new VolumeException(path, $"is not a readable ChunkSeg model file (gzip-compressed JSON expected): {e.Message}", e);
        }
        if (envelope is null || envelope.Format != FormatName)
            throw new VolumeException(path, $"is not a ChunkSeg model file (format \"{envelope?.Format}\", expected \"{FormatName}\")");
        if (envelope.Version > Version)
            throw new VolumeException(path, $"was written by a newer ChunkSeg (model format version {envelope.Version}; this one reads up to {Version})");
        if (envelope.Model is null) throw new VolumeException(path, "is corrupt: it holds no model");
        Validate(envelope.Model, path);
        return envelope.Model;
    }

    /// <summary>Checks every array against the others, so a truncated or edited file fails here, not mid-prediction.</summary>
    private static void Validate(ForestModel m, string path)
    {
        void Corrupt(string what) => throw new VolumeException(path, $"is corrupt: {what}");
        if (m.ClassLabels is null || m.ClassNames is null || m.ClassLabels.Length == 0 || m.ClassLabels.Length != m.ClassNames.Length)
            Corrupt("class labels and names are missing or of different lengths");
        if (m.Trees is null || m.Trees.Count == 0) Corrupt("it has no trees");
        if (m.FeatureCount <= 0 || m.InputChannels <= 0) Corrupt($"feature count {m.FeatureCount} or input channel count {m.InputChannels} is not positive");
        if (m.FeatureNames is null || m.FeatureNames.Length != m.FeatureCount) Corrupt($"{m.FeatureNames?.Length ?? 0} feature names for {m.FeatureCount} features");
        if (string.IsNullOrWhiteSpace(m.FeatureSpec)) Corrupt("it has no feature spec");
        for (int t = 0; t < m.Trees!.Count; t++)
        {
            var tree = m.Trees[t];
            int n = tree.Feature?.Length ?? 0;
            if (n == 0 || tree.Threshold?.Length != n || tree.Left?.Length != n || tree.Right?.Length != n || tree.LeafValues is null)
                Corrupt($"tree {t} has arrays of different lengths");
            for (int i = 0; i < n; i++)
                if (tree.Feature![i] >= m.FeatureCount)
                    Corrupt($"tree {t} node {i} reads feature {tree.Feature[i]} of {m.FeatureCount}");
        }
    }

    private sealed record Envelope(string Format, int Version, ForestModel? Model);

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
