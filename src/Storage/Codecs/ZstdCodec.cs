using System.Buffers;
using System.Text.Json;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Codecs;

/// <summary>numcodecs "zstd": one Zstandard frame with the content size in its header (libzstd).</summary>
internal sealed class ZstdCodec : IChunkCodec
{
    public ZstdCodec(int level)
    {
        NativeLibraries.Require(NativeLibraries.Zstd);
        Level = level;
    }

    public int Level { get; }
    public string Description => $"zstd(level {Level})";

    public void WriteConfig(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("id", "zstd");
        json.WriteNumber("level", Level);
        json.WriteEndObject();
    }

    public unsafe PooledBuffer Encode(ReadOnlySpan<byte> data, int elementSize)
    {
        int bound = checked((int)ZstdNative.CompressBound((nuint)data.Length));
        var array = ArrayPool<byte>.Shared.Rent(bound);
        nuint n;
        fixed (byte* src = data)
        fixed (byte* dst = array)
            n = ZstdNative.Compress(dst, (nuint)array.Length, src, (nuint)data.Length, Level);
        if (ZstdNative.IsError(n) != 0)
        {
            ArrayPool<byte>.Shared.Return(array);
            throw new InvalidOperationException($"zstd compression failed: {ZstdNative.ErrorName(n)}");
        }
        return new PooledBuffer(array, (int)n);
    }

    public unsafe void Decode(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        fixed (byte* src = compressed)
        fixed (byte* dst = destination)
        {
            ulong size = ZstdNative.GetFrameContentSize(src, (nuint)compressed.Length);
            if (size == ZstdNative.ContentSizeError)
                throw new InvalidDataException("not a zstd frame");
            if (size != ZstdNative.ContentSizeUnknown && size != (ulong)destination.Length)
                throw new InvalidDataException($"zstd frame holds {size} bytes, expected {destination.Length}");
            nuint n = ZstdNative.Decompress(dst, (nuint)destination.Length, src, (nuint)compressed.Length);
            if (ZstdNative.IsError(n) != 0)
                throw new InvalidDataException($"zstd: {ZstdNative.ErrorName(n)}");
            if (n != (nuint)destination.Length)
                throw new InvalidDataException($"zstd data decompresses to {n} bytes, expected {destination.Length}");
        }
    }
}
