using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Zarr;

/// <summary>
/// The parts of a Zarr v3 array's <c>zarr.json</c> this layer understands
/// (https://zarr-specs.readthedocs.io/en/latest/v3/core/index.html#array-metadata): the ten numeric data types,
/// the regular chunk grid, the "default" and "v2" chunk key encodings, and the codecs of <see cref="ZarrV3Codecs"/>.
/// <see cref="GridChunks"/> is the chunk grid's shape: the shard shape when the array is sharded.
/// </summary>
internal sealed record ZarrV3ArrayMeta(
    long[] Shape, int[] GridChunks, DataType DataType, double FillValue, ZarrV3Codecs Codecs,
    bool DefaultKeyEncoding, char Separator, string[]? DimensionNames, string AttributesJson)
{
    public const string FileName = "zarr.json";

    public static ZarrV3ArrayMeta Parse(string arrayPath, byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            int format = root.GetProperty("zarr_format").GetInt32();
            if (format != 3)
                throw new VolumeException(arrayPath, $"zarr.json has zarr_format {format}; expected 3");
            string node = root.GetProperty("node_type").GetString() ?? "";
            if (node != "array")
                throw new VolumeException(arrayPath, $"zarr.json has node_type \"{node}\"; expected \"array\"");
            long[] shape = root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (shape.Any(s => s < 0))
                throw new VolumeException(arrayPath, $"shape [{string.Join(", ", shape)}] must be non-negative");

            string dtypeName = root.GetProperty("data_type").ValueKind == JsonValueKind.String ? root.GetProperty("data_type").GetString()! : root.GetProperty("data_type").GetRawText();
            var type = Enum.GetValues<DataType>().Where(t => t.Name() == dtypeName).Select(t => (DataType?)t).FirstOrDefault()
                ?? throw new VolumeException(arrayPath, $"data_type {dtypeName} is not supported; supported: {DataTypes.AllNames}");

            var grid = root.GetProperty("chunk_grid");
            string gridName = grid.GetProperty("name").GetString() ?? "";
            if (gridName != "regular")
                throw new VolumeException(arrayPath, $"chunk_grid \"{gridName}\" is not supported; only \"regular\" grids can be read");
            int[] chunks = grid.GetProperty("configuration").GetProperty("chunk_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            if (chunks.Length != shape.Length || chunks.Any(c => c <= 0))
                throw new VolumeException(arrayPath, $"chunk_shape [{string.Join(", ", chunks)}] must be positive and of the rank of shape [{string.Join(", ", shape)}]");

            bool defaultKeys = true;
            char separator = '/';
            if (root.TryGetProperty("chunk_key_encoding", out var keys))
            {
                string name = keys.GetProperty("name").GetString() ?? "";
                defaultKeys = name switch
                {
                    "default" => true,
                    "v2" => false,
                    _ => throw new VolumeException(arrayPath, $"chunk_key_encoding \"{name}\" is not supported; expected \"default\" or \"v2\""),
                };
                separator = defaultKeys ? '/' : '.';
                if (keys.TryGetProperty("configuration", out var kc) && kc.TryGetProperty("separator", out var sep))
                {
                    separator = sep.GetString() switch
                    {
                        "/" => '/',
                        "." => '.',
                        var other => throw new VolumeException(arrayPath, $"chunk key separator \"{other}\" is not supported; expected \"/\" or \".\""),
                    };
                }
            }

            if (root.TryGetProperty("storage_transformers", out var st) && st.ValueKind == JsonValueKind.Array && st.GetArrayLength() > 0)
                throw new VolumeException(arrayPath, $"storage_transformers {st.GetRawText()} are not supported");

            double fill = root.TryGetProperty("fill_value", out var f) ? ParseFill(arrayPath, f, type) : 0;
            var codecs = ZarrV3Codecs.Parse(root.GetProperty("codecs"), type, chunks.Select(c => (long)c).ToArray(), arrayPath);

            string[]? names = null;
            if (root.TryGetProperty("dimension_names", out var dn) && dn.ValueKind == JsonValueKind.Array)
                names = dn.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : "").ToArray();
            string attributes = root.TryGetProperty("attributes", out var a) && a.ValueKind == JsonValueKind.Object ? a.GetRawText() : "{}";
            return new ZarrV3ArrayMeta(shape, chunks, type, fill, codecs, defaultKeys, separator, names, attributes);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new VolumeException(arrayPath, $"zarr.json is malformed: {e.Message}", e);
        }
    }

    private static double ParseFill(string arrayPath, JsonElement fill, DataType type) => fill.ValueKind switch
    {
        JsonValueKind.Null => 0,
        JsonValueKind.Number => type == DataType.UInt64 && fill.TryGetUInt64(out ulong u) ? u : fill.GetDouble(),
        JsonValueKind.String => fill.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var hex when hex!.StartsWith("0x", StringComparison.Ordinal) && type.IsFloat() &&
                ulong.TryParse(hex.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong bits) =>
                type == DataType.Float32 ? BitConverter.UInt32BitsToSingle((uint)bits) : BitConverter.UInt64BitsToDouble(bits),
            var other => throw new VolumeException(arrayPath, $"fill_value \"{other}\" is not supported; expected a number, \"NaN\", \"Infinity\", \"-Infinity\" or a hex bit pattern"),
        },
        _ => throw new VolumeException(arrayPath, $"fill_value {fill.GetRawText()} is not supported"),
    };

    /// <summary>The chunk (or shard) key of grid index <paramref name="index"/>: "c/0/1/2" (default) or "0.1.2" (v2).</summary>
    public string ChunkKey(ReadOnlySpan<long> index)
    {
        var key = new StringBuilder(index.Length * 4 + 2);
        if (DefaultKeyEncoding) key.Append('c');
        for (int d = 0; d < index.Length; d++)
        {
            if (d > 0 || DefaultKeyEncoding) key.Append(Separator);
            key.Append(index[d]);
        }
        if (!DefaultKeyEncoding && index.Length == 0) key.Append('0');
        return key.ToString();
    }

    public byte[] ToJson() => ZarrV3Json.Write(json =>
    {
        json.WriteStartObject();
        json.WriteNumber("zarr_format", 3);
        json.WriteString("node_type", "array");
        json.WriteStartArray("shape");
        foreach (long s in Shape) json.WriteNumberValue(s);
        json.WriteEndArray();
        json.WriteString("data_type", DataType.Name());
        json.WriteStartObject("chunk_grid");
        json.WriteString("name", "regular");
        json.WriteStartObject("configuration");
        json.WriteStartArray("chunk_shape");
        foreach (int c in GridChunks) json.WriteNumberValue(c);
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteStartObject("chunk_key_encoding");
        json.WriteString("name", DefaultKeyEncoding ? "default" : "v2");
        json.WriteStartObject("configuration");
        json.WriteString("separator", Separator.ToString());
        json.WriteEndObject();
        json.WriteEndObject();
        json.WritePropertyName("fill_value");
        if (DataType.IsFloat())
        {
            if (double.IsNaN(FillValue)) json.WriteStringValue("NaN");
            else if (double.IsPositiveInfinity(FillValue)) json.WriteStringValue("Infinity");
            else if (double.IsNegativeInfinity(FillValue)) json.WriteStringValue("-Infinity");
            else json.WriteNumberValue(FillValue);
        }
        else if (DataType == DataType.UInt64) json.WriteNumberValue((ulong)FillValue);
        else json.WriteNumberValue((long)FillValue);
        json.WritePropertyName("codecs");
        json.WriteRawValue(Codecs.Json);
        json.WritePropertyName("attributes");
        json.WriteRawValue(AttributesJson);
        if (DimensionNames is not null)
        {
            json.WriteStartArray("dimension_names");
            foreach (string n in DimensionNames) json.WriteStringValue(n);
            json.WriteEndArray();
        }
        json.WriteEndObject();
    });
}

/// <summary>zarr.json of Zarr v3 nodes: which kind a directory holds, and the JSON of a group.</summary>
internal static class ZarrV3Json
{
    /// <summary>"array", "group", or null when <paramref name="dir"/> has no zarr.json.</summary>
    public static string? NodeType(string dir)
    {
        string file = Path.Combine(dir, ZarrV3ArrayMeta.FileName);
        if (!File.Exists(file)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            return doc.RootElement.TryGetProperty("node_type", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : "";
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(dir, $"cannot read zarr.json: {e.Message}", e);
        }
    }

    /// <summary>The "attributes" object of a group's zarr.json, cloned; an empty object when it has none.</summary>
    public static JsonElement GroupAttributes(string dir)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, ZarrV3ArrayMeta.FileName)));
            return doc.RootElement.TryGetProperty("attributes", out var a) && a.ValueKind == JsonValueKind.Object
                ? a.Clone() : JsonDocument.Parse("{}").RootElement.Clone();
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(dir, $"cannot read zarr.json: {e.Message}", e);
        }
    }

    /// <summary>A group's zarr.json with the attributes <paramref name="attributesJson"/> (an object).</summary>
    public static byte[] Group(string attributesJson = "{}") => Write(json =>
    {
        json.WriteStartObject();
        json.WriteNumber("zarr_format", 3);
        json.WriteString("node_type", "group");
        json.WritePropertyName("attributes");
        json.WriteRawValue(attributesJson);
        json.WriteEndObject();
    });

    public static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            write(json);
        return buffer.WrittenSpan.ToArray();
    }
}
