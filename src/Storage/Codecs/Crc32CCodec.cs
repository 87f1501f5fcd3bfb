using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Codecs;

/// <summary>
/// Zarr v3 "crc32c" (a bytes-to-bytes codec): appends the CRC-32C of the bytes, little-endian, and checks it on
/// decode. Shard indexes carry it by default, so a torn or overwritten index is caught instead of misread.
/// </summary>
internal sealed class Crc32CCodec : IChunkCodec
{
    public static readonly Crc32CCodec Instance = new();

    public string Description => "crc32c";

    /// <summary>numcodecs' checksum codec of the same layout (CRC-32C appended little-endian); v3 lists write {"name": "crc32c"}.</summary>
    public void WriteConfig(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("id", "crc32c");
        json.WriteEndObject();
    }

    public PooledBuffer Encode(ReadOnlySpan<byte> data, int elementSize)
    {
        var array = ArrayPool<byte>.Shared.Rent(data.Length + 4);
        data.CopyTo(array);
        BinaryPrimitives.WriteUInt32LittleEndian(array.AsSpan(data.Length), Crc32C.Compute(data));
        return new PooledBuffer(array, data.Length + 4);
    }

    public void Decode(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        if (compressed.Length != destination.Length + 4)
            throw new InvalidDataException($"crc32c: {compressed.Length} bytes, expected {destination.Length} + 4");
        var data = compressed[..^4];
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(compressed[^4..]);
        uint actual = Crc32C.Compute(data);
        if (stored != actual)
            throw new InvalidDataException($"crc32c checksum mismatch: stored 0x{stored:x8}, computed 0x{actual:x8}");
        data.CopyTo(destination);
    }
}
