using YamlDotNet.RepresentationModel;

namespace ChunkSeg.Deployment.Tests;

/// <summary>
/// YAML as plain data: mappings become <see cref="Map"/>, sequences <see cref="List{T}"/> of object?, scalars
/// strings (kept as written, so "8080" and 8080 compare equal as text and nothing is guessed about types).
/// </summary>
internal sealed class Map : Dictionary<string, object?>
{
    public Map() : base(StringComparer.Ordinal) { }

    /// <summary>The value at a dotted path ("spec.template.spec"), or null where any step is missing.</summary>
    public object? At(string path)
    {
        object? node = this;
        foreach (string key in path.Split('.'))
        {
            if (node is not Map m || !m.TryGetValue(key, out node)) return null;
        }
        return node;
    }

    public Map? MapAt(string path) => At(path) as Map;

    public string? StringAt(string path) => At(path) as string;

    /// <summary>The sequence at <paramref name="path"/> (empty when absent).</summary>
    public IReadOnlyList<object?> ListAt(string path) => At(path) as List<object?> ?? [];

    public IEnumerable<Map> MapsAt(string path) => ListAt(path).OfType<Map>();

    public IEnumerable<string> StringsAt(string path) => ListAt(path).OfType<string>();
}

/// <summary>One document of a (possibly multi-document) YAML file.</summary>
internal sealed record YamlDoc(string File, int Index, Map Root)
{
    public string Kind => Root.StringAt("kind") ?? "";
    public string Name => Root.StringAt("metadata.name") ?? "";
    public string? Namespace => Root.StringAt("metadata.namespace");
    public override string ToString() => $"{File}#{Index} ({Kind} {Name})";
}

internal static class Yaml
{
    /// <summary>Every document of <paramref name="path"/>; throws (with the file and position) on invalid YAML.</summary>
    public static List<YamlDoc> LoadFile(string path, string displayName)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(path)) stream.Load(reader);
        var docs = new List<YamlDoc>();
        for (int i = 0; i < stream.Documents.Count; i++)
        {
            object? root = Convert(stream.Documents[i].RootNode);
            if (root is not Map map)
                throw new InvalidDataException($"{displayName}: document {i} is not a mapping (got {Describe(root)})");
            docs.Add(new YamlDoc(displayName, i, map));
        }
        return docs;
    }

    /// <summary>A YAML text held in a string (a ConfigMap value), which must be one mapping.</summary>
    public static Map LoadText(string text, string displayName)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        if (stream.Documents.Count != 1 || Convert(stream.Documents[0].RootNode) is not Map map)
            throw new InvalidDataException($"{displayName}: expected one YAML mapping");
        return map;
    }

    private static object? Convert(YamlNode node) => node switch
    {
        YamlMappingNode m => ConvertMap(m),
        YamlSequenceNode s => s.Children.Select(Convert).ToList(),
        YamlScalarNode s => IsNull(s) ? null : s.Value,
        _ => throw new InvalidDataException($"unsupported YAML node {node.NodeType} at {node.Start}"),
    };

    private static Map ConvertMap(YamlMappingNode node)
    {
        var map = new Map();
        foreach (var (key, value) in node.Children)
        {
            if (key is not YamlScalarNode { Value: { } name })
                throw new InvalidDataException($"non-scalar mapping key at {key.Start}");
            if (!map.TryAdd(name, Convert(value)))
                throw new InvalidDataException($"duplicate key \"{name}\" at {key.Start}");
        }
        return map;
    }

    // A plain (unquoted) empty, "~" or "null" scalar is YAML's null; quoted ones are strings.
    private static bool IsNull(YamlScalarNode s) =>
        s.Style == YamlDotNet.Core.ScalarStyle.Plain && s.Value is null or "" or "~" or "null" or "Null" or "NULL";

    private static string Describe(object? node) => node switch
    {
        null => "an empty document",
        string s => $"the scalar \"{s}\"",
        _ => "a sequence",
    };
}
