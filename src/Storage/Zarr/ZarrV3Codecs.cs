using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Codecs;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Zarr;

// Zarr v3 codec pipelines (https://zarr-specs.readthedocs.io/en/latest/v3/core/index.html#chunk-encoding).
//
// A v3 chunk is encoded by a list of codecs in three kinds, always in this order: array→array codecs
// (here only "transpose"), exactly one array→bytes codec ("bytes", or "sharding_indexed"), then any number
// of bytes→bytes codecs ("gzip", "blosc", "zstd", "crc32c"). Decoding runs the list backwards:
//
//     encode:  chunk (C order, shape S) ─transpose(order)→ shape S[order] ─bytes(endian)→ raw bytes
//                                                         ─zstd→ compressed ─crc32c→ compressed ‖ crc (4 B, LE)
//     decode:  the same arrows, right to left; crc32c checks, zstd decompresses to the length "bytes" wrote.
//
// Every bytes→bytes codec is told how many bytes it must decode to: "bytes" always writes S·itemsize bytes and
// crc32c adds 4, so the length before each codec is known up to the compressor; behind it only crc32c may follow
// (its input is its output less 4). Two compressors in one list are refused: nobody writes that, and the inner
// length would be unknown.
//
// "sharding_indexed" is the array→bytes codec of a sharded array: the array's chunk grid then cuts shards, and
// each shard file holds a grid of inner chunks, encoded by the sharding codec's own list, followed (or, with
// index_location "start", preceded) by an index of (offset, nbytes) uint64 pairs in C order of the inner grid:
//
//     shard file, index at the end:
//     ┌──────────┬──────────┬─────┬──────────────────────────────────────────────────┬───────┐
//     │ chunk 0  │ chunk 2  │ ... │ index: (off0,n0) (2⁶⁴-1,2⁶⁴-1) (off2,n2) ...    │ crc32c│
//     └──────────┴──────────┴─────┴──────────────────────────────────────────────────┴───────┘
//       chunk 1 equals the fill value: it has no bytes, and both of its index entries are 2⁶⁴-1.
//
// The index codecs must have a fixed size ("bytes" and "crc32c" only), so a reader finds the index by the file
// length alone and then reads just the inner chunks it needs. A sharding codec is accepted only as the sole
// codec of the array (no transposes before it, no compression of the whole shard after it) and not nested.

/// <summary>One parsed Zarr v3 codec list for chunks of a fixed shape and data type; immutable and thread-safe.</summary>
internal sealed class ZarrV3Codecs
{
    private readonly int[][] _orders;                  // transpose orders, in encode order
    private readonly long[][] _shapes;                 // _shapes[k]: the shape transpose k reads; _shapes[^1]: what "bytes" writes
    private readonly bool _bigEndian;
    private readonly (IChunkCodec Codec, int TypeSize)[] _bytesCodecs;   // bytes→bytes, in encode order
    private readonly int[] _inputLengths;              // _inputLengths[i]: bytes codec i encodes (and decodes to); -1 after a compressor

    private ZarrV3Codecs(DataType type, long[] chunkShape, int chunkBytes, int[][] orders, bool bigEndian,
        (IChunkCodec, int)[] bytesCodecs, ShardingCodec? sharding, string json)
    {
        DataType = type;
        ChunkShape = chunkShape;
        ChunkBytes = chunkBytes;
        _orders = orders;
        _bigEndian = bigEndian;
        _bytesCodecs = bytesCodecs;
        Sharding = sharding;
        Json = json;
        _shapes = new long[orders.Length + 1][];
        _shapes[0] = chunkShape;
        for (int k = 0; k < orders.Length; k++)
            _shapes[k + 1] = orders[k].Select(a => _shapes[k][a]).ToArray();
        _inputLengths = new int[bytesCodecs.Length];
        long length = chunkBytes;
        for (int i = 0; i < bytesCodecs.Length; i++)
        {
            _inputLengths[i] = (int)length;
            length = bytesCodecs[i].Item1 is Crc32CCodec ? length + 4 : -1;
        }
    }

    public DataType DataType { get; }
    public long[] ChunkShape { get; }
    public int ChunkBytes { get; }

    /// <summary>The array→bytes codec when it is "sharding_indexed"; the other members then describe the whole shard.</summary>
    public ShardingCodec? Sharding { get; }

    /// <summary>The codec list as it stands in zarr.json.</summary>
    public string Json { get; }

    /// <summary>Whether the encoded size depends only on the chunk size (no compression): required of index codecs.</summary>
    public bool HasFixedSize => Sharding is null && _bytesCodecs.All(c => c.Codec is Crc32CCodec);

    public int FixedEncodedSize => ChunkBytes + 4 * _bytesCodecs.Length;

    /// <summary>Whether an encoded chunk is the chunk's own bytes (no transpose, no byte swap, no bytes→bytes codec).</summary>
    public bool IsRaw => Sharding is null && _orders.Length == 0 && (!_bigEndian || DataType.SizeInBytes() == 1) && _bytesCodecs.Length == 0;

    /// <summary>For people: "zstd(level 3)", "sharding_indexed(chunks [32, 32, 32]; blosc(lz4, clevel 5, shuffle))", "none".</summary>
    public string Description
    {
        get
        {
            if (Sharding is { } s)
                return $"sharding_indexed(chunks [{string.Join(", ", s.InnerShape)}]; {s.Inner.Description}" +
                    (s.IndexAtStart ? "; index at start)" : ")");
            var parts = new List<string>();
            foreach (var order in _orders) parts.Add($"transpose({string.Join(", ", order)})");
            if (_bigEndian && DataType.SizeInBytes() > 1) parts.Add("bytes(big)");
            foreach (var (codec, _) in _bytesCodecs) parts.Add(codec.Description);
            return parts.Count == 0 ? "none" : string.Join(", ", parts);
        }
    }

    /// <summary>Decodes one chunk into <paramref name="chunk"/> (C order, little-endian); throws <see cref="InvalidDataException"/>.</summary>
    public void Decode(ReadOnlySpan<byte> encoded, Span<byte> chunk)
    {
        if (Sharding is not null) throw new InvalidOperationException("a sharded array decodes inner chunks, not whole shards");
        var rented = new List<byte[]>(4);
        try
        {
            ReadOnlySpan<byte> current = encoded;
            for (int i = _bytesCodecs.Length - 1; i >= 0; i--)
            {
                // Known from the chunk size, except behind a compressor, where only a crc32c can sit: its input less 4.
                int length = _inputLengths[i] >= 0 ? _inputLengths[i] : current.Length - 4;
                if (length < 0)
                    throw new InvalidDataException($"{_bytesCodecs[i].Codec.Description}: {current.Length} bytes are too few");
                var output = Rent(rented, length);
                _bytesCodecs[i].Codec.Decode(current, output);
                current = output;
            }
            if (current.Length != ChunkBytes)
                throw new InvalidDataException($"the chunk has {current.Length} bytes after decoding, expected {ChunkBytes}");

            int elementSize = DataType.SizeInBytes();
            Span<byte> array = _orders.Length == 0 ? chunk : Rent(rented, ChunkBytes);
            current.CopyTo(array);
            if (_bigEndian) Strided.SwapBytes(array, elementSize);
            for (int k = _orders.Length - 1; k >= 0; k--)
            {
                Span<byte> target = k == 0 ? chunk : Rent(rented, ChunkBytes);
                Transpose(array, _shapes[k + 1], Inverse(_orders[k]), target, elementSize);
                array = target;
            }
        }
        finally
        {
            foreach (var a in rented) ArrayPool<byte>.Shared.Return(a);
        }
    }

    /// <summary>Encodes one chunk (C order, little-endian, <see cref="ChunkBytes"/> long); the caller disposes the result.</summary>
    public PooledBuffer Encode(ReadOnlySpan<byte> chunk)
    {
        if (Sharding is not null) throw new InvalidOperationException("a sharded array encodes inner chunks, not whole shards");
        var rented = new List<byte[]>(4);
        PooledBuffer? result = null;
        try
        {
            int elementSize = DataType.SizeInBytes();
            ReadOnlySpan<byte> current = chunk;
            for (int k = 0; k < _orders.Length; k++)
            {
                var target = Rent(rented, ChunkBytes);
                Transpose(current, _shapes[k], _orders[k], target, elementSize);
                current = target;
            }
            if (_bigEndian && elementSize > 1)
            {
                var swapped = Rent(rented, ChunkBytes);
                current.CopyTo(swapped);
                Strided.SwapBytes(swapped, elementSize);
                current = swapped;
            }
            foreach (var (codec, typeSize) in _bytesCodecs)
            {
                var encoded = codec.Encode(current, typeSize);
                result?.Dispose();
                result = encoded;
                current = encoded.Span;
            }
            if (result is { } done) return done;
            var copy = ArrayPool<byte>.Shared.Rent(current.Length);
            current.CopyTo(copy);
            return new PooledBuffer(copy, current.Length);
        }
        catch
        {
            result?.Dispose();
            throw;
        }
        finally
        {
            foreach (var a in rented) ArrayPool<byte>.Shared.Return(a);
        }
    }

    private static Span<byte> Rent(List<byte[]> rented, int length)
    {
        var a = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        rented.Add(a);
        return a.AsSpan(0, length);
    }

    private static int[] Inverse(int[] order)
    {
        var inverse = new int[order.Length];
        for (int i = 0; i < order.Length; i++) inverse[order[i]] = i;
        return inverse;
    }

    /// <summary>dst = src.transpose(order): axis i of dst is axis order[i] of src; dst is C-ordered.</summary>
    internal static void Transpose(ReadOnlySpan<byte> src, ReadOnlySpan<long> srcShape, ReadOnlySpan<int> order, Span<byte> dst, int elementSize)
    {
        switch (elementSize)
        {
            case 1: TransposeCore(src, srcShape, order, dst); break;
            case 2: TransposeCore(MemoryMarshal.Cast<byte, ushort>(src), srcShape, order, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case 4: TransposeCore(MemoryMarshal.Cast<byte, uint>(src), srcShape, order, MemoryMarshal.Cast<byte, uint>(dst)); break;
            case 8: TransposeCore(MemoryMarshal.Cast<byte, ulong>(src), srcShape, order, MemoryMarshal.Cast<byte, ulong>(dst)); break;
            default: throw new ArgumentOutOfRangeException(nameof(elementSize), elementSize, "element size must be 1, 2, 4 or 8");
        }
    }

    private static void TransposeCore<T>(ReadOnlySpan<T> src, ReadOnlySpan<long> srcShape, ReadOnlySpan<int> order, Span<T> dst) where T : unmanaged
    {
        int rank = order.Length;
        if (rank == 0) { dst[0] = src[0]; return; }
        Span<long> srcStrides = stackalloc long[rank], stride = stackalloc long[rank], shape = stackalloc long[rank], index = stackalloc long[rank];
        Strided.RowMajorStrides(srcShape, srcStrides);
        for (int i = 0; i < rank; i++)
        {
            stride[i] = srcStrides[order[i]];
            shape[i] = srcShape[order[i]];
        }
        index.Clear();
        long rowLength = shape[rank - 1], step = stride[rank - 1];
        int o = 0;
        while (true)   // one dst row (the last dst axis) per step; the outer dst axes run as an odometer
        {
            long s = 0;
            for (int d = 0; d < rank - 1; d++) s += index[d] * stride[d];
            for (long x = 0; x < rowLength; x++, s += step) dst[o++] = src[(int)s];
            int axis = rank - 2;
            while (axis >= 0 && ++index[axis] == shape[axis]) index[axis--] = 0;
            if (axis < 0) return;
        }
    }

    /// <summary>Parses a zarr.json "codecs" list for chunks of <paramref name="chunkShape"/>; errors name <paramref name="location"/>.</summary>
    public static ZarrV3Codecs Parse(JsonElement codecs, DataType type, long[] chunkShape, string location, bool allowSharding = true)
    {
        if (codecs.ValueKind != JsonValueKind.Array || codecs.GetArrayLength() == 0)
            throw new VolumeException(location, $"codecs must be a non-empty list; got {codecs.GetRawText()}");
        long chunkBytes = chunkShape.Aggregate((long)type.SizeInBytes(), (a, b) => a * b);
        if (chunkBytes > Array.MaxLength)
            throw new VolumeException(location, $"chunks [{string.Join(", ", chunkShape)}] of {type.Name()} hold {chunkBytes} bytes; at most {Array.MaxLength} are supported");

        var orders = new List<int[]>();
        bool? bigEndian = null;
        ShardingCodec? sharding = null;
        var bytesCodecs = new List<(IChunkCodec, int)>();
        int rank = chunkShape.Length, elementSize = type.SizeInBytes();
        var shape = chunkShape;
        foreach (var entry in codecs.EnumerateArray())
        {
            var (name, config) = NameAndConfiguration(entry, location);
            bool arraySide = bigEndian is null && sharding is null;
            try
            {
                switch (name)
                {
                    case "transpose" when arraySide:
                        var order = TransposeOrder(config, rank, location);
                        orders.Add(order);
                        shape = order.Select(a => shape[a]).ToArray();
                        break;
                    case "bytes" when arraySide:
                        string endian = Str(config, "endian", "little");
                        bigEndian = endian switch
                        {
                            "little" => false,
                            "big" => true,
                            _ => throw new VolumeException(location, $"bytes codec: endian \"{endian}\" is not supported; expected \"little\" or \"big\""),
                        };
                        break;
                    case "sharding_indexed" when arraySide:
                        if (!allowSharding)
                            throw new VolumeException(location, "nested sharding_indexed codecs are not supported");
                        if (orders.Count > 0)
                            throw new VolumeException(location, "transpose before sharding_indexed is not supported; put it in the sharding codec's own codecs");
                        sharding = ShardingCodec.Parse(config, type, chunkShape, location);
                        break;
                    case "transpose" or "bytes" or "sharding_indexed":
                        throw new VolumeException(location, $"codec \"{name}\" comes after the array→bytes codec; array codecs must come first and there must be exactly one of bytes or sharding_indexed");
                    case "gzip" or "blosc" or "zstd" or "crc32c" when bigEndian is null && sharding is null:
                        throw new VolumeException(location, $"codec \"{name}\" comes before the array→bytes codec (\"bytes\" or \"sharding_indexed\")");
                    case "gzip" or "blosc" or "zstd" or "crc32c" when sharding is not null:
                        throw new VolumeException(location, $"codec \"{name}\" after sharding_indexed is not supported; put it in the sharding codec's own codecs");
                    case "gzip":
                        bytesCodecs.Add((new DeflateCodec(gzip: true, Int(config, "level", 5)), elementSize));
                        break;
                    case "zstd":
                        bytesCodecs.Add((new ZstdCodec(Int(config, "level", 0), Bool(config, "checksum", false)), elementSize));
                        break;
                    case "blosc":
                        int shuffle = BloscShuffle(config, location);
                        bytesCodecs.Add((new BloscCodec(Str(config, "cname", "zstd"), Int(config, "clevel", 5), shuffle, Int(config, "blocksize", 0)),
                            Int(config, "typesize", elementSize)));
                        break;
                    case "crc32c":
                        bytesCodecs.Add((Crc32CCodec.Instance, 1));
                        break;
                    default:
                        throw new VolumeException(location, $"codec \"{name}\" is not supported; supported: transpose, bytes, gzip, blosc, zstd, crc32c, sharding_indexed");
                }
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentOutOfRangeException or KeyNotFoundException)
            {
                throw new VolumeException(location, $"codec {entry.GetRawText()} is malformed: {e.Message}", e);
            }
        }
        if (bigEndian is null && sharding is null)
            throw new VolumeException(location, $"codecs {codecs.GetRawText()} have no array→bytes codec (\"bytes\" or \"sharding_indexed\")");
        if (bytesCodecs.Count(c => c.Item1 is not Crc32CCodec) > 1)
            throw new VolumeException(location, "more than one compression codec in one list is not supported");
        return new ZarrV3Codecs(type, chunkShape, (int)chunkBytes, [.. orders], bigEndian ?? false, [.. bytesCodecs], sharding, codecs.GetRawText());
    }

    private static (string Name, JsonElement Configuration) NameAndConfiguration(JsonElement entry, string location)
    {
        if (entry.ValueKind == JsonValueKind.String) return (entry.GetString()!, default);
        if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String)
            return (n.GetString()!, entry.TryGetProperty("configuration", out var c) ? c : default);
        throw new VolumeException(location, $"codec {entry.GetRawText()} has no \"name\"");
    }

    private static int[] TransposeOrder(JsonElement config, int rank, string location)
    {
        if (config.ValueKind != JsonValueKind.Object || !config.TryGetProperty("order", out var o))
            throw new VolumeException(location, "transpose codec has no \"order\"");
        int[] order = o.ValueKind switch
        {
            JsonValueKind.String when o.GetString() == "C" => Enumerable.Range(0, rank).ToArray(),
            JsonValueKind.String when o.GetString() == "F" => Enumerable.Range(0, rank).Reverse().ToArray(),
            JsonValueKind.Array => o.EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            _ => throw new VolumeException(location, $"transpose order {o.GetRawText()} is not supported; expected a permutation such as [2, 1, 0]"),
        };
        if (order.Length != rank || !order.Order().SequenceEqual(Enumerable.Range(0, rank)))
            throw new VolumeException(location, $"transpose order [{string.Join(", ", order)}] is not a permutation of 0..{rank - 1}");
        return order;
    }

    private static int BloscShuffle(JsonElement config, string location)
    {
        if (config.ValueKind != JsonValueKind.Object || !config.TryGetProperty("shuffle", out var s)) return BloscCodec.NoShuffle;
        return s.ValueKind switch
        {
            JsonValueKind.Number => s.GetInt32(),
            JsonValueKind.String => s.GetString() switch
            {
                "noshuffle" => BloscCodec.NoShuffle,
                "shuffle" => BloscCodec.ByteShuffle,
                "bitshuffle" => BloscCodec.BitShuffle,
                var other => throw new VolumeException(location, $"blosc shuffle \"{other}\" is not supported; expected noshuffle, shuffle or bitshuffle"),
            },
            _ => throw new VolumeException(location, $"blosc shuffle {s.GetRawText()} is not supported"),
        };
    }

    internal static int Int(JsonElement o, string name, int fallback) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v.GetInt32() : fallback;

    private static bool Bool(JsonElement o, string name, bool fallback) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    private static string Str(JsonElement o, string name, string fallback) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;

    /// <summary>
    /// The codec list ChunkSeg writes for <paramref name="spec"/>: "bytes" (little-endian) and the compressor; with a
    /// shard shape, all of that inside "sharding_indexed" with inner chunks of <paramref name="chunks"/> and the index
    /// checked by crc32c at the end of each shard.
    /// </summary>
    public static string FromSpec(CodecSpec spec, DataType type, int[] chunks, int[]? shards)
    {
        var inner = new StringBuilder("[{\"name\": \"bytes\", \"configuration\": {\"endian\": \"little\"}}");
        inner.Append(spec.Name switch
        {
            "none" => "",
            "gzip" => $", {{\"name\": \"gzip\", \"configuration\": {{\"level\": {spec.Level}}}}}",
            "zstd" => $", {{\"name\": \"zstd\", \"configuration\": {{\"level\": {spec.Level}, \"checksum\": false}}}}",
            _ when spec.IsBlosc => $", {{\"name\": \"blosc\", \"configuration\": {{\"cname\": \"{spec.BloscInner}\", \"clevel\": {spec.Level}, " +
                $"\"shuffle\": \"shuffle\", \"typesize\": {type.SizeInBytes()}, \"blocksize\": 0}}}}",
            "zlib" => throw new UsageException("codec zlib is not a Zarr v3 codec; use gzip (or write Zarr v2)"),
            _ => throw new UsageException($"unknown codec \"{spec}\"; supported: {string.Join(", ", CodecSpec.Names)}"),
        });
        inner.Append(']');
        if (shards is null) return inner.ToString();
        return "[{\"name\": \"sharding_indexed\", \"configuration\": {" +
            $"\"chunk_shape\": [{string.Join(", ", chunks)}], \"codecs\": {inner}, " +
            "\"index_codecs\": [{\"name\": \"bytes\", \"configuration\": {\"endian\": \"little\"}}, {\"name\": \"crc32c\"}], " +
            "\"index_location\": \"end\"}}]";
    }
}

/// <summary>The "sharding_indexed" codec of a sharded array: inner chunk grid, inner codecs, index codecs and where the index is.</summary>
internal sealed class ShardingCodec
{
    /// <summary>Offset and nbytes of an inner chunk that is not stored (it reads as the fill value).</summary>
    public const ulong Missing = ulong.MaxValue;

    private ShardingCodec(long[] innerShape, long[] chunksPerShard, ZarrV3Codecs inner, ZarrV3Codecs index, bool indexAtStart)
    {
        InnerShape = innerShape;
        ChunksPerShard = chunksPerShard;
        InnerCount = checked((int)chunksPerShard.Aggregate(1L, (a, b) => a * b));
        Inner = inner;
        Index = index;
        IndexAtStart = indexAtStart;
        IndexBytes = index.FixedEncodedSize;
    }

    public long[] InnerShape { get; }
    public long[] ChunksPerShard { get; }
    public int InnerCount { get; }
    public ZarrV3Codecs Inner { get; }
    public ZarrV3Codecs Index { get; }
    public bool IndexAtStart { get; }

    /// <summary>Bytes the encoded index takes in the shard file.</summary>
    public int IndexBytes { get; }

    public static ShardingCodec Parse(JsonElement config, DataType type, long[] shardShape, string location)
    {
        if (config.ValueKind != JsonValueKind.Object)
            throw new VolumeException(location, "sharding_indexed has no configuration");
        long[] inner = config.GetProperty("chunk_shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        if (inner.Length != shardShape.Length || inner.Any(c => c <= 0) || inner.Where((c, d) => shardShape[d] % c != 0).Any())
            throw new VolumeException(location, $"sharding_indexed chunk_shape [{string.Join(", ", inner)}] must divide the shard shape [{string.Join(", ", shardShape)}] on every axis");
        long[] perShard = shardShape.Select((s, d) => s / inner[d]).ToArray();
        if (perShard.Aggregate(1L, (a, b) => a * b) > Array.MaxLength / 16)
            throw new VolumeException(location, $"shards of [{string.Join(", ", perShard)}] inner chunks are too many for one index");
        var innerCodecs = ZarrV3Codecs.Parse(config.GetProperty("codecs"), type, inner, location, allowSharding: false);
        var indexCodecs = config.TryGetProperty("index_codecs", out var ic) ? ic
            : JsonDocument.Parse("[{\"name\": \"bytes\", \"configuration\": {\"endian\": \"little\"}}, {\"name\": \"crc32c\"}]").RootElement;
        var index = ZarrV3Codecs.Parse(indexCodecs, DataType.UInt64, [.. perShard, 2], location, allowSharding: false);
        if (!index.HasFixedSize)
            throw new VolumeException(location, $"sharding_indexed index_codecs {indexCodecs.GetRawText()} must have a fixed size (bytes and crc32c only)");
        string where = config.TryGetProperty("index_location", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString()! : "end";
        if (where is not ("end" or "start"))
            throw new VolumeException(location, $"sharding_indexed index_location \"{where}\" is not supported; expected \"end\" or \"start\"");
        return new ShardingCodec(inner, perShard, innerCodecs, index, where == "start");
    }
}
