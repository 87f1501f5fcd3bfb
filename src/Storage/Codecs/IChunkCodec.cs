using System.Buffers;
using System.Text.Json;

namespace ChunkSeg.Storage.Codecs;

/// <summary>
/// One Zarr v2 compressor, or one Zarr v3 bytes→bytes codec (gzip, blosc, zstd, crc32c; see Zarr/ZarrV3Codecs.cs). Implementations are immutable and thread-safe. <see cref="Decode"/> must fill the
/// destination exactly and throws <see cref="InvalidDataException"/> otherwise, so the caller can name the chunk.
/// </summary>
internal interface IChunkCodec
{
    /// <summary>For people: "blosc(lz4, clevel 5, shuffle)", "zlib(level 4)", "none".</summary>
    string Description { get; }

    /// <summary>Writes the .zarray "compressor" value (an object, or null for no compression).</summary>
    void WriteConfig(Utf8JsonWriter json);

    /// <summary>Compresses a whole chunk; the result lives in a pooled array the caller disposes.</summary>
    PooledBuffer Encode(ReadOnlySpan<byte> data, int elementSize);

    void Decode(ReadOnlySpan<byte> compressed, Span<byte> destination);
}

/// <summary>The first <see cref="Length"/> bytes of an <see cref="ArrayPool{T}.Shared"/> array; dispose once.</summary>
internal readonly struct PooledBuffer(byte[] array, int length) : IDisposable
{
    public byte[] Array { get; } = array;
    public int Length { get; } = length;
    public ReadOnlySpan<byte> Span => Array.AsSpan(0, Length);
    public void Dispose() => ArrayPool<byte>.Shared.Return(Array);
}

internal sealed class NoCodec : IChunkCodec
{
    public static readonly NoCodec Instance = new();
    public string Description => "none";
    public void WriteConfig(Utf8JsonWriter json) => json.WriteNullValue();

    public PooledBuffer Encode(ReadOnlySpan<byte> data, int elementSize)
    {
        var array = ArrayPool<byte>.Shared.Rent(data.Length);
        data.CopyTo(array);
        return new PooledBuffer(array, data.Length);
    }

    public void Decode(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        if (compressed.Length != destination.Length)
            throw new InvalidDataException($"uncompressed chunk has {compressed.Length} bytes, expected {destination.Length}");
        compressed.CopyTo(destination);
    }
}
