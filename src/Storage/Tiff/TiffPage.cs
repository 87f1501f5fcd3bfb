using BitMiracle.LibTiff.Classic;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using LibTiff = BitMiracle.LibTiff.Classic.Tiff;

namespace ChunkSeg.Storage.Tiff;

/// <summary>The tags of one page (IFD) that say how its pixels are stored.</summary>
internal sealed record TiffPage(
    int Width, int Height, int SamplesPerPixel, int BitsPerSample, SampleFormat Format, bool Separate,
    bool Tiled, int TileWidth, int TileLength, int RowsPerStrip, Compression Compression)
{
    public static TiffPage Read(LibTiff tif, string file, int ifd)
    {
        int Int(TiffTag tag, int fallback) => tif.GetField(tag)?[0].ToInt() ?? fallback;
        int width = Int(TiffTag.IMAGEWIDTH, 0), height = Int(TiffTag.IMAGELENGTH, 0);
        if (width <= 0 || height <= 0)
            throw new VolumeException(file, $"page {ifd} has no image size (ImageWidth {width}, ImageLength {height})");
        bool tiled = tif.IsTiled();
        return new TiffPage(
            width, height,
            Int(TiffTag.SAMPLESPERPIXEL, 1),
            Int(TiffTag.BITSPERSAMPLE, 1),
            (SampleFormat)Int(TiffTag.SAMPLEFORMAT, (int)SampleFormat.UINT),
            (PlanarConfig)Int(TiffTag.PLANARCONFIG, (int)PlanarConfig.CONTIG) == PlanarConfig.SEPARATE,
            tiled,
            tiled ? Int(TiffTag.TILEWIDTH, 0) : width,
            tiled ? Int(TiffTag.TILELENGTH, 0) : 0,
            tiled ? 0 : Math.Clamp(Int(TiffTag.ROWSPERSTRIP, height), 1, height),   // absent or 2^32-1: one strip
            (Compression)Int(TiffTag.COMPRESSION, (int)Compression.NONE));
    }

    public DataType ToDataType(string file) => (Format, BitsPerSample) switch
    {
        (SampleFormat.UINT, 8) => DataType.UInt8,
        (SampleFormat.UINT, 16) => DataType.UInt16,
        (SampleFormat.UINT, 32) => DataType.UInt32,
        (SampleFormat.UINT, 64) => DataType.UInt64,
        (SampleFormat.INT, 8) => DataType.Int8,
        (SampleFormat.INT, 16) => DataType.Int16,
        (SampleFormat.INT, 32) => DataType.Int32,
        (SampleFormat.INT, 64) => DataType.Int64,
        (SampleFormat.IEEEFP, 32) => DataType.Float32,
        (SampleFormat.IEEEFP, 64) => DataType.Float64,
        _ => throw new VolumeException(file, $"unsupported pixel type: {BitsPerSample}-bit {FormatName(Format)} samples; ChunkSeg reads 8, 16, 32 " +
            "and 64-bit unsigned or signed integers and 32 or 64-bit floats (1, 4, 12 and 24-bit, complex and palette-packed pixels are not supported)"),
    };

    private static string FormatName(SampleFormat f) => f switch
    {
        SampleFormat.UINT => "unsigned integer", SampleFormat.INT => "signed integer", SampleFormat.IEEEFP => "float",
        SampleFormat.COMPLEXINT => "complex integer", SampleFormat.COMPLEXIEEEFP => "complex float", _ => $"SampleFormat {(int)f}",
    };

    /// <summary>Whether another page stores the same pixels (size, samples, type): only then can it join the volume.</summary>
    public bool SamePixels(TiffPage other) =>
        Width == other.Width && Height == other.Height && SamplesPerPixel == other.SamplesPerPixel &&
        BitsPerSample == other.BitsPerSample && Format == other.Format;

    public string Describe() => $"{Width}×{Height}, {SamplesPerPixel} sample(s) of {BitsPerSample}-bit {FormatName(Format)}";

    public static string CodecName(Compression c) => c switch
    {
        Compression.NONE => "none",
        Compression.LZW => "lzw",
        Compression.ADOBE_DEFLATE or Compression.DEFLATE => "deflate",
        Compression.PACKBITS => "packbits",
        Compression.JPEG or Compression.OJPEG => "jpeg",
        (Compression)34925 => "lzma (TIFF compression 34925)",
        (Compression)50000 => "zstd (TIFF compression 50000)",
        (Compression)50001 => "webp (TIFF compression 50001)",
        (Compression)33003 or (Compression)33005 or (Compression)34712 => $"jpeg2000 (TIFF compression {(int)c})",
        _ when Enum.IsDefined(c) => $"{c.ToString().ToLowerInvariant()} (TIFF compression {(int)c})",
        _ => $"TIFF compression {(int)c}",
    };
}
