using System.Buffers;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Zarr;

/// <summary>Level 0 of an OME-Zarr image: where its array is, its axes and the size of one voxel.</summary>
internal sealed record OmeImage(string ArrayPath, string[] AxisNames, AxisOrder? Axes, VoxelSize VoxelSize);

/// <summary>
/// The attributes this layer reads and writes: OME-NGFF 0.4 "multiscales" (https://ngff.openmicroscopy.org/0.4/)
/// in a Zarr v2 image group's .zattrs, OME-NGFF 0.5 (https://ngff.openmicroscopy.org/0.5/) under "ome" in a Zarr v3
/// image group's zarr.json attributes, and xarray's "_ARRAY_DIMENSIONS" on plain v2 arrays (v3 arrays have dimension_names).
/// </summary>
internal static class OmeNgff
{
    /// <summary>Level 0 of a Zarr v2 group with OME-NGFF 0.4 (or 0.3) multiscales in its .zattrs.</summary>
    public static OmeImage ReadImage(string groupPath)
    {
        string attrsPath = Path.Combine(groupPath, ".zattrs");
        if (!File.Exists(attrsPath))
            throw NotAnImage(groupPath);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(attrsPath));
            return ReadMultiscales(groupPath, doc.RootElement, ".zattrs");
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new VolumeException(groupPath, $".zattrs has malformed multiscales metadata: {e.Message}", e);
        }
    }

    /// <summary>Level 0 of a Zarr v3 group with OME-NGFF 0.5 metadata: zarr.json attributes {"ome": {"version", "multiscales"}}.</summary>
    public static OmeImage ReadImageV3(string groupPath)
    {
        var attributes = ZarrV3Json.GroupAttributes(groupPath);
        if (!attributes.TryGetProperty("ome", out var ome) || ome.ValueKind != JsonValueKind.Object)
            throw NotAnImage(groupPath);
        return ReadMultiscales(groupPath, ome, "zarr.json");
    }

    /// <summary>Reads multiscales[0] of <paramref name="container"/>, the object that holds "multiscales" (0.4: .zattrs; 0.5: attributes.ome).</summary>
    private static OmeImage ReadMultiscales(string groupPath, JsonElement container, string file)
    {
        try
        {
            if (!container.TryGetProperty("multiscales", out var all) || all.ValueKind != JsonValueKind.Array || all.GetArrayLength() == 0)
                throw NotAnImage(groupPath);
            var ms = all[0];
            var datasets = ms.GetProperty("datasets");
            if (datasets.GetArrayLength() == 0)
                throw new VolumeException(groupPath, "multiscales[0] lists no datasets");
            var level0 = datasets[0];
            string path = level0.GetProperty("path").GetString() ?? throw new VolumeException(groupPath, "datasets[0] has no path");

            // 0.4 axes are objects {name, type, unit}; 0.3 axes are bare names.
            var names = new List<string>();
            var units = new Dictionary<string, string>(StringComparer.Ordinal);
            if (ms.TryGetProperty("axes", out var axes))
            {
                foreach (var a in axes.EnumerateArray())
                {
                    string name = (a.ValueKind == JsonValueKind.String ? a.GetString() : a.GetProperty("name").GetString())?.ToLowerInvariant() ?? "";
                    names.Add(name);
                    if (a.ValueKind == JsonValueKind.Object && a.TryGetProperty("unit", out var u) && u.ValueKind == JsonValueKind.String)
                        units[name] = u.GetString()!;
                }
            }

            double[]? scale = Scale(level0);
            double[]? global = Scale(ms);
            if (scale is not null && global is not null && global.Length == scale.Length)
                for (int i = 0; i < scale.Length; i++) scale[i] *= global[i];

            double SizeOf(char axis)
            {
                int i = names.IndexOf(axis.ToString());
                return scale is not null && i >= 0 && i < scale.Length ? scale[i] : 1;
            }
            string unit = new[] { "x", "y", "z" }.Select(n => units.GetValueOrDefault(n)).FirstOrDefault(u => u is not null) ?? VoxelSize.Micrometer;

            AxisOrder? order = null;
            if (names.Count > 0 && names.All(n => n.Length == 1))
            {
                try { order = AxisOrder.Parse(string.Concat(names)); }
                catch (ArgumentException) { order = null; }
            }
            string arrayPath = Path.Combine(groupPath, path);
            if (!File.Exists(Path.Combine(arrayPath, ".zarray")) && ZarrV3Json.NodeType(arrayPath) != "array")
                throw new VolumeException(groupPath, $"level 0 of the multiscales, \"{path}\", is not a Zarr array");
            return new OmeImage(arrayPath, [.. names], order, new VoxelSize(SizeOf('z'), SizeOf('y'), SizeOf('x'), unit));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or IOException)
        {
            throw new VolumeException(groupPath, $"{file} has malformed multiscales metadata: {e.Message}", e);
        }
    }

    private static VolumeException NotAnImage(string groupPath) =>
        new(groupPath, "is a Zarr group without OME-NGFF multiscales metadata; give the path of an array inside it, e.g. " +
            Path.Combine(groupPath, "0"));

    /// <summary>The "scale" of a node's coordinateTransformations, or null when it has none.</summary>
    private static double[]? Scale(JsonElement node)
    {
        if (!node.TryGetProperty("coordinateTransformations", out var transforms) || transforms.ValueKind != JsonValueKind.Array)
            return null;
        foreach (var t in transforms.EnumerateArray())
            if (t.TryGetProperty("type", out var type) && type.GetString() == "scale" && t.TryGetProperty("scale", out var s))
                return s.EnumerateArray().Select(v => v.GetDouble()).ToArray();
        return null;
    }

    /// <summary>Axes from xarray's _ARRAY_DIMENSIONS, or null when absent or not one letter per axis from t, c, z, y, x.</summary>
    public static AxisOrder? ArrayDimensions(string arrayPath, int rank)
    {
        string attrsPath = Path.Combine(arrayPath, ".zattrs");
        if (!File.Exists(attrsPath)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(attrsPath));
            if (!doc.RootElement.TryGetProperty("_ARRAY_DIMENSIONS", out var dims) || dims.ValueKind != JsonValueKind.Array || dims.GetArrayLength() != rank)
                return null;
            var names = dims.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.String ? d.GetString()! : "").ToArray();
            if (names.Any(n => n.Length != 1)) return null;
            return AxisOrder.Parse(string.Concat(names));
        }
        catch (Exception e) when (e is JsonException or ArgumentException or IOException)
        {
            return null;   // the attribute is a hint; the caller falls back to the default for the rank
        }
    }

    public static byte[] ArrayDimensionsAttributes(AxisOrder axes) => Json(json =>
    {
        json.WriteStartObject();
        json.WriteStartArray("_ARRAY_DIMENSIONS");
        foreach (char a in axes.Names) json.WriteStringValue(a.ToString());
        json.WriteEndArray();
        json.WriteEndObject();
    });

    /// <summary>
    /// The multiscale's "name": the image directory's, and for a store staged as NAME.partial the final store's
    /// (out.zarr, not out.zarr.partial), since the staged store is renamed at commit and the name goes with it.
    /// </summary>
    public static string ImageName(string imageDirectory)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(imageDirectory)));
        return name.EndsWith(StagedOutput.PartialSuffix, StringComparison.Ordinal) ? name[..^StagedOutput.PartialSuffix.Length] : name;
    }

    /// <summary>
    /// The image group's .zattrs: one multiscale with one dataset, "0", scaled by the voxel size; for a label image
    /// (<see cref="VolumeCreateOptions.LabelImage"/>) also NGFF's "image-label", which napari-ome-zarr opens as a labels layer.
    /// </summary>
    public static byte[] ImageAttributes(string name, VolumeCreateOptions options,
        (IReadOnlyList<OmeLevel> Levels, OmeDownscaling Downscaling)? pyramid = null) => Json(json =>
    {
        json.WriteStartObject();
        WriteMultiscales(json, name, options, version: "0.4", pyramid);
        if (options.LabelImage)
        {
            json.WriteStartObject("image-label");
            json.WriteString("version", "0.4");
            WriteLabelColors(json);
            json.WriteEndObject();
        }
        json.WriteEndObject();
    });

    /// <summary>
    /// The image group's zarr.json for OME-NGFF 0.5: a Zarr v3 group whose attributes hold {"ome": {"version": "0.5",
    /// "multiscales": [...]}} (the same multiscale as 0.4 without its own version), and "image-label" for label images.
    /// </summary>
    public static byte[] ImageGroupV3(string name, VolumeCreateOptions options,
        (IReadOnlyList<OmeLevel> Levels, OmeDownscaling Downscaling)? pyramid = null) => ZarrV3Json.Group(System.Text.Encoding.UTF8.GetString(Json(json =>
    {
        json.WriteStartObject();
        json.WriteStartObject("ome");
        json.WriteString("version", "0.5");
        WriteMultiscales(json, name, options, version: null, pyramid);
        if (options.LabelImage)
        {
            json.WriteStartObject("image-label");
            WriteLabelColors(json);
            json.WriteEndObject();
        }
        json.WriteEndObject();
        json.WriteEndObject();
    })));

    /// <summary>
    /// "colors": background (label 0) transparent, the one colour ChunkSeg can name for every label image (the ids of
    /// the objects are known only at the end and can be millions; viewers colour those themselves). The NGFF schemas'
    /// strict_label requires "colors".
    /// </summary>
    private static void WriteLabelColors(Utf8JsonWriter json)
    {
        json.WriteStartArray("colors");
        json.WriteStartObject();
        json.WriteNumber("label-value", 0);
        json.WriteStartArray("rgba");
        for (int i = 0; i < 4; i++) json.WriteNumberValue(0);
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndArray();
    }

    private static void WriteTransform(Utf8JsonWriter json, string type, AxisOrder axes, Func<char, double> value)
    {
        json.WriteStartObject();
        json.WriteString("type", type);
        json.WriteStartArray(type);
        foreach (char a in axes.Names) json.WriteNumberValue(value(a));
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteMultiscales(Utf8JsonWriter json, string name, VolumeCreateOptions options, string? version,
        (IReadOnlyList<OmeLevel> Levels, OmeDownscaling Downscaling)? pyramid)
    {
        var levels = pyramid?.Levels;
        json.WriteStartArray("multiscales");
        json.WriteStartObject();
        if (version is not null) json.WriteString("version", version);
        json.WriteString("name", name);
        if (pyramid is { Downscaling: var downscaling })
        {
            // How the levels were made (an image of one level was not downscaled, so it says nothing).
            json.WriteString("type", downscaling.Type);
            json.WriteStartObject("metadata");
            json.WriteString("description", downscaling.Description);
            json.WriteString("method", "ChunkSeg");
            json.WriteEndObject();
        }
        json.WriteStartArray("axes");
        foreach (char a in options.Axes.Names)
        {
            json.WriteStartObject();
            json.WriteString("name", a.ToString());
            var kind = AxisOrder.KindOf(a);
            json.WriteString("type", kind switch { AxisKind.Time => "time", AxisKind.Channel => "channel", _ => "space" });
            if (kind == AxisKind.Space) json.WriteString("unit", options.VoxelSize.Unit);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("datasets");
        if (levels is null)
        {
            json.WriteStartObject();
            json.WriteString("path", "0");
            json.WriteStartArray("coordinateTransformations");
            WriteTransform(json, "scale", options.Axes, a => AxisOrder.KindOf(a) == AxisKind.Space ? options.VoxelSize[a] : 1.0);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        else
        {
            // A pyramid: every level with its voxel size and the translation of its voxel centres (PyramidPlan).
            foreach (var level in levels)
            {
                json.WriteStartObject();
                json.WriteString("path", level.Path);
                json.WriteStartArray("coordinateTransformations");
                WriteTransform(json, "scale", options.Axes, a => AxisOrder.KindOf(a) == AxisKind.Space ? level.Scale[a] : 1.0);
                WriteTransform(json, "translation", options.Axes, a => a switch
                {
                    'z' => level.Translation.Z, 'y' => level.Translation.Y, 'x' => level.Translation.X, _ => 0.0,
                });
                json.WriteEndArray();
                json.WriteEndObject();
            }
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndArray();
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            write(json);
        return buffer.WrittenSpan.ToArray();
    }
}
