using System.Buffers;
using System.Text.Json;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Codecs;

/// <summary>
/// numcodecs "blosc" (c-blosc 1.x): a shuffle filter then an inner compressor. Decoding needs only the
/// buffer's own header; the configuration matters for encoding.
/// </summary>
internal sealed class BloscCodec : IChunkCodec
{
    public const int NoShuffle = 0, ByteShuffle = 1, BitShuffle = 2, AutoShuffle = -1;

    public BloscCodec(string cname, int clevel, int shuffle, int blocksize)
    {
        NativeLibraries.Require(NativeLibraries.Blosc);
        CName = cname;
        CLevel = clevel;
        Shuffle = shuffle;
        BlockSize = blocksize;
    }

    public string CName { get; }
    public int CLevel { get; }
    public int Shuffle { get; }
    public int BlockSize { get; }

    public string Description => $"blosc({CName}, clevel {CLevel}, {Shuffle switch
    {
        NoShuffle => "noshuffle",
        ByteShuffle => "shuffle",
        BitShuffle => "bitshuffle",
        _ => "autoshuffle",
    }})";

    public void WriteConfig(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("id", "blosc");
        json.WriteString("cname", CName);
        json.WriteNumber("clevel", CLevel);
        json.WriteNumber("shuffle", Shuffle);
        json.WriteNumber("blocksize", BlockSize);
        json.WriteEndObject();
    }

    public unsafe PooledBuffer Encode(ReadOnlySpan<byte> data, int elementSize)
    {
        // numcodecs' AUTOSHUFFLE: bit shuffle for bytes, byte shuffle otherwise.
        int shuffle = Shuffle == AutoShuffle ? (elementSize == 1 ? BitShuffle : ByteShuffle) : Shuffle;
        var array = ArrayPool<byte>.Shared.Rent(data.Length + BloscNative.MaxOverhead);
        int n;
        fixed (byte* src = data)
        fixed (byte* dst = array)
            n = BloscNative.CompressCtx(CLevel, shuffle, (nuint)elementSize, (nuint)data.Length, src, dst, (nuint)array.Length,
                CName, (nuint)BlockSize, numinternalthreads: 1);
        if (n <= 0)
        {
            ArrayPool<byte>.Shared.Return(array);
            throw new InvalidOperationException($"blosc compression with \"{CName}\" failed (code {n}); is that compressor built into libblosc?");
        }
        return new PooledBuffer(array, n);
    }

    public unsafe void Decode(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        fixed (byte* src = compressed)
        fixed (byte* dst = destination)
        {
            nuint nbytes;
            if (BloscNative.CbufferValidate(src, (nuint)compressed.Length, &nbytes) < 0)
                throw new InvalidDataException($"not a valid Blosc buffer of {compressed.Length} bytes");
            if (nbytes != (nuint)destination.Length)
                throw new InvalidDataException($"Blosc buffer holds {nbytes} bytes, expected {destination.Length}");
            int n = BloscNative.DecompressCtx(src, dst, (nuint)destination.Length, numinternalthreads: 1);
            if (n != destination.Length)
                throw new InvalidDataException($"Blosc decompression failed (code {n})");
        }
    }
}
