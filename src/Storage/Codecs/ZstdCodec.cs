using System.Buffers;
using System.Text.Json;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Codecs;

/// <summary>
/// numcodecs "zstd" and Zarr v3 "zstd": one Zstandard frame with the content size in its header (libzstd); with
/// <see cref="Checksum"/> the frame also carries its XXH64 content checksum, which ZSTD_decompress verifies.
/// </summary>
internal sealed class ZstdCodec : IChunkCodec
{
    public ZstdCodec(int level, bool checksum = false)
    {
        NativeLibraries.Require(NativeLibraries.Zstd);
        Level = level;
        Checksum = checksum;
    }

    public int Level { get; }
    public bool Checksum { get; }
    public string Description => Checksum ? $"zstd(level {Level}, checksum)" : $"zstd(level {Level})";

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
        {
            if (!Checksum)
                n = ZstdNative.Compress(dst, (nuint)array.Length, src, (nuint)data.Length, Level);
            else
            {
                IntPtr cctx = ZstdNative.CreateCCtx();
                if (cctx == IntPtr.Zero)
                {
                    ArrayPool<byte>.Shared.Return(array);
                    throw new OutOfMemoryException("ZSTD_createCCtx returned null (out of memory)");
                }
                try
                {
                    n = ZstdNative.CCtxSetParameter(cctx, ZstdNative.CompressionLevelParameter, Level);
                    if (ZstdNative.IsError(n) == 0)
                        n = ZstdNative.CCtxSetParameter(cctx, ZstdNative.ChecksumFlagParameter, 1);
                    if (ZstdNative.IsError(n) == 0)
                        n = ZstdNative.Compress2(cctx, dst, (nuint)array.Length, src, (nuint)data.Length);
                }
                finally
                {
                    ZstdNative.FreeCCtx(cctx);
                }
            }
        }
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
