using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Codecs;
using ChunkSeg.Storage.Tiff;

namespace ChunkSeg.Storage.N5;

/// <summary>
/// What an N5 dataset's <c>attributes.json</c> says (https://github.com/saalfeldlab/n5#file-system-specification),
/// already turned into ChunkSeg's order: N5 lists dimensions x first (Fortran order), so <see cref="Shape"/> and
/// <see cref="BlockSize"/> are the reversed lists (z, y, x). <see cref="Axes"/> is the "axes" attribute reversed, when
/// there is one.
/// </summary>
internal sealed record N5DatasetMeta(long[] Shape, int[] BlockSize, DataType DataType, IChunkCodec Codec, string CodecName, AxisOrder? Axes)
{
    public const string AttributesFile = "attributes.json";
    private const string SupportedCodecs = "raw, gzip (also with useZlib), zstd, blosc";

    /// <summary>Reads <c>dir/attributes.json</c>; a <see cref="VolumeException"/> naming the file when it is missing or malformed.</summary>
    public static JsonElement ReadAttributes(string dir)
    {
        string file = Path.Combine(dir, AttributesFile);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VolumeException(file, "is missing: the folder is not an N5 group or dataset", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(file, $"cannot be read: {e.Message}", e);
        }
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new VolumeException(file, $"is not a JSON object (found {doc.RootElement.ValueKind})");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new VolumeException(file, $"is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>The attributes of <paramref name="dir"/>, or null when it has none (a plain folder on the way down).</summary>
    public static JsonElement? TryReadAttributes(string dir) =>
        File.Exists(Path.Combine(dir, AttributesFile)) ? ReadAttributes(dir) : null;

    public static bool IsDataset(JsonElement attributes) => attributes.TryGetProperty("dimensions", out _);

    public static N5DatasetMeta Parse(string dir, JsonElement root)
    {
        string file = Path.Combine(dir, AttributesFile);
        try
        {
            long[] dims = root.GetProperty("dimensions").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            int[] block = root.GetProperty("blockSize").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            if (dims.Length == 0 || block.Length != dims.Length)
                throw new VolumeException(file, $"dimensions [{string.Join(", ", dims)}] and blockSize [{string.Join(", ", block)}] must have the same, non-zero rank");
            if (dims.Any(d => d < 0) || block.Any(b => b <= 0))
                throw new VolumeException(file, $"dimensions [{string.Join(", ", dims)}] must be non-negative and blockSize [{string.Join(", ", block)}] positive");
            string typeName = root.GetProperty("dataType").GetString() ?? "null";
            var type = typeName switch
            {
                "uint8" => DataType.UInt8, "uint16" => DataType.UInt16, "uint32" => DataType.UInt32, "uint64" => DataType.UInt64,
                "int8" => DataType.Int8, "int16" => DataType.Int16, "int32" => DataType.Int32, "int64" => DataType.Int64,
                "float32" => DataType.Float32, "float64" => DataType.Float64,
                _ => throw new VolumeException(file, $"dataType \"{typeName}\" is not supported; supported: {DataTypes.AllNames}"),
            };
            var (codec, codecName) = ParseCompression(file, root);
            Array.Reverse(dims);
            Array.Reverse(block);
            return new N5DatasetMeta(dims, block, type, codec, codecName, ParseAxes(file, root, dims.Length));
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new VolumeException(file, $"is not N5 dataset metadata (needs dimensions, blockSize, dataType and compression): {e.Message}", e);
        }
    }

    /// <summary>
    /// "compression": {"type": ...} (N5 ≥ 1.0), or the older "compressionType": "gzip". Only the parameters a decoder
    /// needs matter; the rest are kept for <c>info</c>.
    /// </summary>
    private static (IChunkCodec, string) ParseCompression(string file, JsonElement root)
    {
        JsonElement config = default;
        string type;
        if (root.TryGetProperty("compression", out config) && config.ValueKind == JsonValueKind.Object)
            type = config.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
                : throw new VolumeException(file, $"compression {config.GetRawText()} has no \"type\"; supported: {SupportedCodecs}");
        else if (root.TryGetProperty("compressionType", out var legacy) && legacy.ValueKind == JsonValueKind.String)
            (type, config) = (legacy.GetString()!, default);
        else
            type = "raw";   // N5's own default when nothing is said
        try
        {
            return type switch
            {
                "raw" => (NoCodec.Instance, "raw"),
                // Java's GzipCompression level -1 means zlib's default; the level matters only for writing.
                "gzip" when Bool(config, "useZlib") => (new DeflateCodec(gzip: false, Level(config, "level")), "gzip(useZlib)"),
                "gzip" => (new DeflateCodec(gzip: true, Level(config, "level")), "gzip"),
                "zstd" => (new ZstdCodec(Int(config, "level", 3)), "zstd"),
                "blosc" => (new BloscCodec(Str(config, "cname", "lz4"), Int(config, "clevel", 6), Int(config, "shuffle", BloscCodec.ByteShuffle),
                    Int(config, "blocksize", 0)), "blosc"),
                _ => throw new VolumeException(file, $"compression \"{type}\" is not supported; supported: {SupportedCodecs} " +
                    "(recompress the dataset, e.g. with n5-copy -c gzip or zarr-python's N5Store)"),
            };
        }
        catch (InvalidOperationException e)
        {
            throw new VolumeException(file, $"compression {config.GetRawText()} is malformed: {e.Message}", e);
        }
    }

    /// <summary>"axes": ["x", "y", "z"] (neuroglancer's and n5-ij's, x first like the dimensions) → "zyx"; null when absent.</summary>
    private static AxisOrder? ParseAxes(string file, JsonElement root, int rank)
    {
        if (!root.TryGetProperty("axes", out var axes) || axes.ValueKind != JsonValueKind.Array) return null;
        var names = axes.EnumerateArray().Select(a => a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText()).ToArray();
        if (names.Length != rank || names.Any(n => n.Length != 1))
            throw new VolumeException(file, $"axes [{string.Join(", ", names)}] must name each of the {rank} dimensions with one of t, c, z, y, x; " +
                "pass the axis order explicitly (--axes, in z, y, x order)");
        try
        {
            return AxisOrder.Parse(string.Concat(names.Reverse()));
        }
        catch (ArgumentException e)
        {
            throw new VolumeException(file, $"axes [{string.Join(", ", names)}]: {e.Message}; pass the axis order explicitly (--axes)", e);
        }
    }

    /// <summary>
    /// The voxel size of the dataset at <paramref name="datasetDir"/>: the nearest "pixelResolution" ({"unit", "dimensions"},
    /// n5-viewer and n5-spark) or "resolution" (an array, with "units" beside it: neuroglancer, Paintera, BigStitcher's
    /// timepoint groups), looking at the dataset and then each group up to <paramref name="rootDir"/>; times the level's
    /// "downsamplingFactors" (the dataset's own array, or, for a dataset named s<i>k</i>, entry k of a group's list as
    /// BigDataViewer's setup groups hold it), since those resolutions are the full-resolution level's. Values are in N5
    /// order (x first); lengths may be the rank or the number of spatial axes. Known units become micrometers.
    /// Isotropic 1 µm when no resolution is found.
    /// </summary>
    public static VoxelSize ReadVoxelSize(string rootDir, string datasetDir, JsonElement own, AxisOrder axes)
    {
        var chain = Chain(rootDir, datasetDir);
        double[]? resolution = null;
        string? unit = null, where = null;
        foreach (string dir in chain)
        {
            var attrs = dir == chain[0] ? own : TryReadAttributes(dir);
            if (attrs is not { } a) continue;
            where = Path.Combine(dir, AttributesFile);
            if (a.TryGetProperty("pixelResolution", out var pr))
            {
                if (pr.ValueKind == JsonValueKind.Object && pr.TryGetProperty("dimensions", out var dims))
                {
                    resolution = Numbers(where, "pixelResolution.dimensions", dims);
                    unit = pr.TryGetProperty("unit", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
                }
                else if (pr.ValueKind == JsonValueKind.Array)
                    resolution = Numbers(where, "pixelResolution", pr);
            }
            if (resolution is null && a.TryGetProperty("resolution", out var r) && r.ValueKind == JsonValueKind.Array)
            {
                resolution = Numbers(where, "resolution", r);
                if (a.TryGetProperty("units", out var us) && us.ValueKind == JsonValueKind.Array)
                    unit = us.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()).FirstOrDefault();
            }
            if (resolution is not null) break;
        }
        if (resolution is null) return VoxelSize.Isotropic;

        var size = Spatial(where!, "resolution", resolution, axes);
        var factors = DownsamplingFactors(chain, own);
        if (factors is not null)
        {
            var f = Spatial(factors.Value.Where, "downsamplingFactors", factors.Value.Values, axes);
            for (int i = 0; i < 3; i++) size[i] *= f[i];
        }
        double? scale = VoxelSize.MicrometersPer(unit ?? "um");
        return scale is { } s
            ? new VoxelSize(size[0] * s, size[1] * s, size[2] * s)
            : new VoxelSize(size[0], size[1], size[2], unit!);   // a unit we do not know ("pixel"): kept as written
    }

    private static (double[] Values, string Where)? DownsamplingFactors(List<string> chain, JsonElement own)
    {
        string ownFile = Path.Combine(chain[0], AttributesFile);
        if (own.TryGetProperty("downsamplingFactors", out var df) && df.ValueKind == JsonValueKind.Array
            && df.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number))
            return (Numbers(ownFile, "downsamplingFactors", df), ownFile);
        // BigDataViewer N5: setupN/ holds [[1,1,1],[2,2,1],…] for its levels timepointM/s0, s1, …
        var level = Regex.Match(Path.GetFileName(chain[0]), @"^s(\d+)$");
        if (!level.Success) return null;
        int k = int.Parse(level.Groups[1].Value, CultureInfo.InvariantCulture);
        foreach (string dir in chain.Skip(1))
        {
            if (TryReadAttributes(dir) is not { } a || !a.TryGetProperty("downsamplingFactors", out var list)) continue;
            string file = Path.Combine(dir, AttributesFile);
            if (list.ValueKind == JsonValueKind.Array && k < list.GetArrayLength() && list[k].ValueKind == JsonValueKind.Array)
                return (Numbers(file, $"downsamplingFactors[{k}]", list[k]), file);
            return null;
        }
        return null;
    }

    /// <summary>z, y, x values from an N5-order (x first) list over all dimensions or over the spatial ones only.</summary>
    private static double[] Spatial(string file, string name, double[] values, AxisOrder axes)
    {
        var n5Order = axes.Names.Reverse().ToArray();
        var spatial = n5Order.Where(a => a is 'x' or 'y' or 'z').ToArray();
        var result = new double[] { 1, 1, 1 };
        char[] names = values.Length == n5Order.Length ? n5Order
            : values.Length == spatial.Length ? spatial
            : throw new VolumeException(file, $"{name} [{string.Join(", ", values)}] has {values.Length} values; the dataset has {n5Order.Length} " +
                $"dimensions ({string.Concat(n5Order)}, x first) of which {spatial.Length} are spatial");
        for (int i = 0; i < names.Length; i++)
            if ("zyx".IndexOf(names[i]) is var j and >= 0)
            {
                if (!(values[i] > 0) || double.IsInfinity(values[i]))
                    throw new VolumeException(file, $"{name} [{string.Join(", ", values)}] must be positive");
                result[j] = values[i];
            }
        return result;
    }

    /// <summary>The dataset folder and each folder above it up to and including the container root, nearest first.</summary>
    private static List<string> Chain(string rootDir, string datasetDir)
    {
        string root = Path.GetFullPath(rootDir).TrimEnd(Path.DirectorySeparatorChar);
        var chain = new List<string>();
        for (string? dir = Path.GetFullPath(datasetDir).TrimEnd(Path.DirectorySeparatorChar); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            chain.Add(dir);
            if (dir == root) break;
        }
        return chain;
    }

    private static double[] Numbers(string file, string name, JsonElement array)
    {
        try
        {
            return array.EnumerateArray().Select(e => e.GetDouble()).ToArray();
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new VolumeException(file, $"{name} {array.GetRawText()} is not a list of numbers", e);
        }
    }

    private static bool Bool(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    private static int Int(JsonElement o, string name, int fallback) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;

    private static int Level(JsonElement o, string name) => Int(o, name, 6) is var l and >= 0 and <= 9 ? l : 6;

    private static string Str(JsonElement o, string name, string fallback) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;
}
