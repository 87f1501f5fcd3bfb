using System.Buffers;
using System.IO.Compression;
using System.Text.Json;

namespace ChunkSeg.Storage.Codecs;

/// <summary>numcodecs "zlib" (RFC 1950) and "gzip" (RFC 1952, as Python's gzip module writes it), via System.IO.Compression.</summary>
internal sealed class DeflateCodec : IChunkCodec
{
    private readonly bool _gzip;

    public DeflateCodec(bool gzip, int level)
    {
        if (level is < 0 or > 9) throw new ArgumentOutOfRangeException(nameof(level), level, "zlib/gzip level must be 0..9");
        _gzip = gzip;
        Level = level;
    }

    public int Level { get; }
    private string Id => _gzip ? "gzip" : "zlib";
    public string Description => $"{Id}(level {Level})";

    public void WriteConfig(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("id", Id);
        json.WriteNumber("level", Level);
        json.WriteEndObject();
    }

    public PooledBuffer Encode(ReadOnlySpan<byte> data, int elementSize)
    {
        var sink = new PooledBufferStream(data.Length / 2 + 256);
        var options = new ZLibCompressionOptions { CompressionLevel = Level };
        using (Stream z = _gzip ? new GZipStream(sink, options, leaveOpen: true) : new ZLibStream(sink, options, leaveOpen: true))
            z.Write(data);
        return sink.Detach();
    }

    public unsafe void Decode(ReadOnlySpan<byte> compressed, Span<byte> destination)
    {
        fixed (byte* p = compressed)
        {
            using var input = new UnmanagedMemoryStream(p, compressed.Length);
            using Stream z = _gzip ? new GZipStream(input, CompressionMode.Decompress) : new ZLibStream(input, CompressionMode.Decompress);
            int n = z.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
            if (n != destination.Length)
                throw new InvalidDataException($"{Id} data decompresses to {n} bytes, expected {destination.Length}");
            Span<byte> extra = stackalloc byte[1];
            if (z.Read(extra) != 0)
                throw new InvalidDataException($"{Id} data decompresses to more than the expected {destination.Length} bytes");
        }
    }
}

/// <summary>A write-only stream into an <see cref="ArrayPool{T}"/> array, so compressing a chunk allocates no chunk-sized garbage.</summary>
internal sealed class PooledBufferStream(int initialCapacity) : Stream
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialCapacity, 256));
    private int _length;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> data)
    {
        if (_length + data.Length > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + data.Length));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        data.CopyTo(_buffer.AsSpan(_length));
        _length += data.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>Hands the written bytes to the caller, who returns the array to the pool.</summary>
    public PooledBuffer Detach()
    {
        var result = new PooledBuffer(_buffer, _length);
        _buffer = [];
        _length = 0;
        return result;
    }

    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
