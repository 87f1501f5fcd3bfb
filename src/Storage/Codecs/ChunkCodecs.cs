using System.Text.Json;
using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Storage.Codecs;

/// <summary>Builds codecs from a <see cref="CodecSpec"/> (output) or a .zarray "compressor" (input).</summary>
internal static class ChunkCodecs
{
    public const string Supported = "zlib, gzip, zstd, blosc (or null for none)";

    public static IChunkCodec FromSpec(CodecSpec spec) => spec.Name switch
    {
        "none" => NoCodec.Instance,
        "zlib" => new DeflateCodec(gzip: false, spec.Level),
        "gzip" => new DeflateCodec(gzip: true, spec.Level),
        "zstd" => new ZstdCodec(spec.Level),
        _ when spec.IsBlosc => new BloscCodec(spec.BloscInner, spec.Level, BloscCodec.ByteShuffle, blocksize: 0),
        _ => throw new UsageException($"unknown codec \"{spec}\"; supported: {string.Join(", ", CodecSpec.Names)}"),
    };

    /// <summary>Reads a numcodecs configuration; defaults are numcodecs' own.</summary>
    public static IChunkCodec FromZarrConfig(JsonElement compressor, string location)
    {
        if (compressor.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return NoCodec.Instance;
        if (compressor.ValueKind != JsonValueKind.Object || !compressor.TryGetProperty("id", out var idElement) || idElement.ValueKind != JsonValueKind.String)
            throw new VolumeException(location, $"compressor {compressor.GetRawText()} has no \"id\"; supported: {Supported}");
        string id = idElement.GetString()!;
        try
        {
            return id switch
            {
                "zlib" => new DeflateCodec(gzip: false, Int(compressor, "level", 1)),
                "gzip" => new DeflateCodec(gzip: true, Int(compressor, "level", 1)),
                "zstd" => new ZstdCodec(Int(compressor, "level", 1)),
                "blosc" => new BloscCodec(Str(compressor, "cname", "lz4"), Int(compressor, "clevel", 5),
                    Int(compressor, "shuffle", BloscCodec.ByteShuffle), Int(compressor, "blocksize", 0)),
                _ => throw new VolumeException(location, $"compressor \"{id}\" is not supported; supported: {Supported}"),
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentOutOfRangeException)
        {
            throw new VolumeException(location, $"compressor {compressor.GetRawText()} is malformed: {e.Message}", e);
        }
    }

    private static int Int(JsonElement o, string name, int fallback) =>
        o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v.GetInt32() : fallback;

    private static string Str(JsonElement o, string name, string fallback) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;
}
