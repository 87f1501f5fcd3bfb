using System.Globalization;

namespace ChunkSeg.Storage;

/// <summary>
/// A chunk compressor as named on the command line: "none", "zlib", "gzip", "zstd", or "blosc-lz4",
/// "blosc-lz4hc", "blosc-zstd", "blosc-zlib", "blosc-blosclz" (Blosc with byte shuffle and that inner codec),
/// each with an optional ":level", e.g. "blosc-zstd:5". HDF5 output supports "none" and "gzip".
/// </summary>
public sealed record CodecSpec(string Name, int Level)
{
    public static readonly string[] Names = ["none", "zlib", "gzip", "zstd", "blosc-lz4", "blosc-lz4hc", "blosc-zstd", "blosc-zlib", "blosc-blosclz"];

    public static CodecSpec None => new("none", 0);

    /// <summary>The default of zarr-python: Blosc with lz4 at level 5 and byte shuffle.</summary>
    public static CodecSpec Default => new("blosc-lz4", 5);

    public static CodecSpec Gzip(int level = 4) => new("gzip", level);

    public bool IsBlosc => Name.StartsWith("blosc-", StringComparison.Ordinal);

    /// <summary>Blosc's name of the inner compressor ("lz4", "zstd", ...), for Blosc codecs only.</summary>
    public string BloscInner => IsBlosc ? Name["blosc-".Length..] : throw new InvalidOperationException($"{Name} is not a Blosc codec");

    public static CodecSpec Parse(string text)
    {
        string[] parts = text.Trim().ToLowerInvariant().Split(':');
        string name = parts[0];
        if (!Names.Contains(name))
            throw new ArgumentException($"unknown codec \"{text}\"; supported: {string.Join(", ", Names)} (optionally with :level)");
        int level = DefaultLevel(name);
        if (parts.Length > 2 || (parts.Length == 2 && !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out level)))
            throw new ArgumentException($"codec \"{text}\": the level after ':' must be an integer");
        var (min, max) = LevelRange(name);
        if (level < min || level > max)
            throw new ArgumentException($"codec \"{text}\": level {level} is outside {min}..{max}");
        return new CodecSpec(name, level);
    }

    private static int DefaultLevel(string name) => name switch
    {
        "none" => 0,
        "zlib" or "gzip" => 4,
        "zstd" => 3,
        _ => 5,
    };

    private static (int Min, int Max) LevelRange(string name) => name switch
    {
        "none" => (0, 0),
        "zlib" or "gzip" => (0, 9),
        "zstd" => (1, 22),
        _ => (0, 9),
    };

    public override string ToString() => Name == "none" ? "none" : $"{Name}:{Level}";
}
