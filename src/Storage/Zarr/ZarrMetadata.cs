using System.Buffers;
using System.Globalization;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Codecs;

namespace ChunkSeg.Storage.Zarr;

/// <summary>
/// The parts of a Zarr v2 <c>.zarray</c> this layer understands
/// (https://zarr-specs.readthedocs.io/en/latest/v2/v2.0.html). Only C order, no filters, and the ten numeric
/// dtypes of <see cref="DataType"/> in either byte order.
/// </summary>
internal sealed record ZarrArrayMeta(
    long[] Shape, int[] Chunks, DataType DataType, bool BigEndian, IChunkCodec Codec, double FillValue, char Separator)
{
    public static ZarrArrayMeta Parse(string arrayPath, byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            int format = root.GetProperty("zarr_format").GetInt32();
            if (format != 2)
                throw new VolumeException(arrayPath, $"zarr_format {format} is not supported; only Zarr v2 arrays can be read");
            long[] shape = root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            int[] chunks = root.GetProperty("chunks").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            if (chunks.Length != shape.Length)
                throw new VolumeException(arrayPath, $"chunks [{string.Join(", ", chunks)}] and shape [{string.Join(", ", shape)}] differ in rank");
            if (chunks.Any(c => c <= 0) || shape.Any(s => s < 0))
                throw new VolumeException(arrayPath, $"chunks [{string.Join(", ", chunks)}] must be positive and shape [{string.Join(", ", shape)}] non-negative");

            var (type, bigEndian) = ParseDtype(arrayPath, root.GetProperty("dtype"));

            string order = root.TryGetProperty("order", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString()! : "C";
            if (order != "C")
                throw new VolumeException(arrayPath, $"order {order} is not supported; only C-ordered arrays can be read");

            if (root.TryGetProperty("filters", out var filters) && filters.ValueKind == JsonValueKind.Array && filters.GetArrayLength() > 0)
            {
                var ids = filters.EnumerateArray().Select(f => f.ValueKind == JsonValueKind.Object && f.TryGetProperty("id", out var id) ? id.ToString() : f.GetRawText());
                throw new VolumeException(arrayPath, $"filters [{string.Join(", ", ids)}] are not supported; only arrays without filters can be read");
            }

            char separator = '.';
            if (root.TryGetProperty("dimension_separator", out var sep) && sep.ValueKind == JsonValueKind.String)
            {
                separator = sep.GetString() switch
                {
                    "." => '.',
                    "/" => '/',
                    var other => throw new VolumeException(arrayPath, $"dimension_separator \"{other}\" is not supported; expected \".\" or \"/\""),
                };
            }

            var codec = ChunkCodecs.FromZarrConfig(root.TryGetProperty("compressor", out var c) ? c : default(JsonElement), arrayPath);
            double fill = root.TryGetProperty("fill_value", out var f2) ? ParseFill(arrayPath, f2) : 0;
            return new ZarrArrayMeta(shape, chunks, type, bigEndian, codec, fill, separator);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new VolumeException(arrayPath, $".zarray is malformed: {e.Message}", e);
        }
    }

    private static (DataType, bool BigEndian) ParseDtype(string arrayPath, JsonElement dtype)
    {
        string text = dtype.ValueKind == JsonValueKind.String ? dtype.GetString()! : dtype.GetRawText();
        DataType? type = null;
        int size = 0;
        if (text.Length >= 3 && "<>|".Contains(text[0]) && int.TryParse(text.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out size))
        {
            type = (text[1], size) switch
            {
                ('u', 1) => DataType.UInt8, ('u', 2) => DataType.UInt16, ('u', 4) => DataType.UInt32, ('u', 8) => DataType.UInt64,
                ('i', 1) => DataType.Int8, ('i', 2) => DataType.Int16, ('i', 4) => DataType.Int32, ('i', 8) => DataType.Int64,
                ('f', 4) => DataType.Float32, ('f', 8) => DataType.Float64,
                _ => null,
            };
        }
        if (type is null)
            throw new VolumeException(arrayPath, $"dtype {text} is not supported; supported: {DataTypes.AllNames} (either byte order)");
        return (type.Value, text[0] == '>' && size > 1);
    }

    private static double ParseFill(string arrayPath, JsonElement fill) => fill.ValueKind switch
    {
        JsonValueKind.Null => 0,
        JsonValueKind.Number => fill.GetDouble(),
        JsonValueKind.True => 1,
        JsonValueKind.False => 0,
        JsonValueKind.String => fill.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var other => throw new VolumeException(arrayPath, $"fill_value \"{other}\" is not supported; expected a number, null, \"NaN\", \"Infinity\" or \"-Infinity\""),
        },
        _ => throw new VolumeException(arrayPath, $"fill_value {fill.GetRawText()} is not supported"),
    };

    /// <summary>The .zarray text; dtype is always written little-endian.</summary>
    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("zarr_format", 2);
            json.WriteStartArray("shape");
            foreach (long s in Shape) json.WriteNumberValue(s);
            json.WriteEndArray();
            json.WriteStartArray("chunks");
            foreach (int c in Chunks) json.WriteNumberValue(c);
            json.WriteEndArray();
            json.WriteString("dtype", DtypeString(DataType));
            json.WritePropertyName("compressor");
            Codec.WriteConfig(json);
            json.WritePropertyName("fill_value");
            WriteFill(json, FillValue, DataType);
            json.WriteString("order", "C");
            json.WriteNull("filters");
            json.WriteString("dimension_separator", Separator.ToString());
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static string DtypeString(DataType type) => type switch
    {
        DataType.UInt8 => "|u1", DataType.Int8 => "|i1",
        DataType.UInt16 => "<u2", DataType.Int16 => "<i2",
        DataType.UInt32 => "<u4", DataType.Int32 => "<i4",
        DataType.UInt64 => "<u8", DataType.Int64 => "<i8",
        DataType.Float32 => "<f4", DataType.Float64 => "<f8",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static void WriteFill(Utf8JsonWriter json, double value, DataType type)
    {
        if (type.IsFloat())
        {
            if (double.IsNaN(value)) json.WriteStringValue("NaN");
            else if (double.IsPositiveInfinity(value)) json.WriteStringValue("Infinity");
            else if (double.IsNegativeInfinity(value)) json.WriteStringValue("-Infinity");
            else json.WriteNumberValue(value);
        }
        else if (type == DataType.UInt64) json.WriteNumberValue((ulong)value);
        else json.WriteNumberValue((long)value);
    }
}
