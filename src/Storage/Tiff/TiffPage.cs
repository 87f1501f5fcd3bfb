using BitMiracle.LibTiff.Classic;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using LibTiff = BitMiracle.LibTiff.Classic.Tiff;

namespace ChunkSeg.Storage.Tiff;

/// <summary>
/// One page (IFD) of a file as the walk over its IFDs found it: where the IFD is, its pixel tags (null when they cannot
/// be read: reading the page then says why), where its strips or tiles are and how many bytes each holds, its
/// predictor and whether the file is byte-swapped. Kept for every page, so a read finds its bytes without LibTiff
/// parsing the IFD again (a page is read by every chunk that crosses it).
/// </summary>
internal sealed record TiffPageEntry(long IfdOffset, TiffPage? Page, long[]? BlockOffsets, long[]? BlockBytes, int Predictor, bool Swapped)
{
    public static TiffPageEntry Read(LibTiff tif, string file, int ifd)
    {
        long offset = tif.CurrentDirOffset();
        TiffPage page;
        try { page = TiffPage.Read(tif, file, ifd); }
        catch (VolumeException) { return new TiffPageEntry(offset, null, null, null, 1, false); }
        var (offsetsTag, bytesTag) = page.Tiled ? (TiffTag.TILEOFFSETS, TiffTag.TILEBYTECOUNTS) : (TiffTag.STRIPOFFSETS, TiffTag.STRIPBYTECOUNTS);
        long[]? offsets = Longs(tif.GetField(offsetsTag)), bytes = Longs(tif.GetField(bytesTag));
        if (offsets is null || bytes is null || offsets.Length != bytes.Length) (offsets, bytes) = (null, null);
        return new TiffPageEntry(offset, page, offsets, bytes, tif.GetField(TiffTag.PREDICTOR)?[0].ToInt() ?? 1, tif.IsByteSwapped());
    }

    private static long[]? Longs(FieldValue[]? field) => field?[0].Value switch
    {
        long[] a => a, ulong[] a => a.Select(v => (long)v).ToArray(), int[] a => a.Select(v => (long)(uint)v).ToArray(),
        uint[] a => a.Select(v => (long)v).ToArray(), ushort[] a => a.Select(v => (long)v).ToArray(), _ => null,
    };

    /// <summary>The strip offsets when every strip holds its full rows uncompressed (read straight from the file); else null.</summary>
    public long[]? RawStrips(int elementSize)
    {
        if (Page is not { Compression: Compression.NONE, Tiled: false } page || BlockOffsets is null || BlockBytes is null) return null;
        long rowBytes = (long)page.Width * (page.Separate ? 1 : page.SamplesPerPixel) * elementSize;
        int perPlane = (page.Height + page.RowsPerStrip - 1) / page.RowsPerStrip;
        if (BlockOffsets.Length != perPlane * (page.Separate ? page.SamplesPerPixel : 1)) return null;
        for (int i = 0; i < BlockOffsets.Length; i++)
        {
            int rows = Math.Min(page.RowsPerStrip, page.Height - i % perPlane * page.RowsPerStrip);
            if (BlockBytes[i] < rows * rowBytes) return null;
        }
        return BlockOffsets;
    }

    /// <summary>
    /// Whether the strips or tiles are deflate streams with no predictor, which .NET's zlib inflates (far faster than
    /// LibTiff.NET's managed port); other codecs and predictors are decoded by LibTiff.NET.
    /// </summary>
    public bool PlainDeflate => Page is { Compression: Compression.ADOBE_DEFLATE or Compression.DEFLATE } && Predictor == 1 && BlockOffsets is not null;
}

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
