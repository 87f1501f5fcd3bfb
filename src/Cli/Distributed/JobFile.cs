using System.Globalization;
using ChunkSeg.Contracts.Errors;
using YamlDotNet.RepresentationModel;

namespace ChunkSeg.Cli.Distributed;

/// <summary>
/// A job file for `chunkseg submit JOB.yaml`: a mapping whose keys are `chunkseg run`'s options without the dashes
/// (input: the raw volume). Relative paths are taken from the file's folder. For example:
/// <code>
///   input: raw.zarr
///   model: nuclei.chunkseg
///   out: runs/run1
///   chunk: 64,64,64
///   min-size: 20
///   export-probabilities: true
/// </code>
/// </summary>
internal static class JobFile
{
    private static readonly string[] PathKeys = ["input", "out", "model", "ilp"];

    public static bool IsJobFile(string? path) =>
        path is not null && (path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)) && File.Exists(path);

    /// <summary>The run arguments the file stands for; a malformed file is a usage error naming it and the key.</summary>
    public static string[] Read(string path)
    {
        var yaml = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            yaml.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new UsageException($"{path}: not valid YAML ({e.Message})");
        }
        if (yaml.Documents.Count != 1 || yaml.Documents[0].RootNode is not YamlMappingNode mapping)
            throw new UsageException($"{path}: expected one mapping of run options (input: ..., out: ..., model: ...)");
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string? input = null;
        var args = new List<string>();
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            string key = ((YamlScalarNode)keyNode).Value ?? "";
            if (valueNode is not YamlScalarNode { Value: { } value })
                throw new UsageException($"{path}: \"{key}\" must have a single value (a list or mapping was given)");
            if (PathKeys.Contains(key)) value = Path.GetFullPath(value, folder);
            if (key == "input") { input = value; continue; }
            if (bool.TryParse(value, out bool flag) && !key.Equals("threshold", StringComparison.Ordinal))
            {
                if (flag) args.Add("--" + key);
                continue;
            }
            args.Add("--" + key);
            args.Add(value.ToString(CultureInfo.InvariantCulture));
        }
        if (input is null) throw new UsageException($"{path}: no \"input\" (the raw volume to run on)");
        return [input, .. args];
    }
}
