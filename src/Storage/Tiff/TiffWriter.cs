using System.Globalization;
using System.IO.Compression;
using System.Text;
using BitMiracle.LibTiff.Classic;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using LibTiff = BitMiracle.LibTiff.Classic.Tiff;

namespace ChunkSeg.Storage.Tiff;

/// <summary>
/// Writes a volume as an ImageJ hyperstack TIFF, page after page (TIFF pages are sequential, so this is a final copy
/// from a finished volume, not a chunk sink):
/// <code>
///   out.tif.writing   ← pages written in ImageJ order: c fastest, then z, then t (one grayscale page per plane)
///   out.tif           ← renamed into place once every page is written; an interrupted write never leaves out.tif
/// </code>
/// Description "ImageJ=1.11a\nimages=N\nchannels=C\nslices=Z\nframes=T\nhyperstack=true\nunit=micron\nspacing=Z\n";
/// XResolution/YResolution = 1/voxel size (µm). Data over ~4 GB are written as BigTIFF (tifffile reads it; ImageJ does not).
/// Samples are written in the volume's dtype (uint32 labels stay uint32: ImageJ opens them as 32-bit float, exact below 2^24).
/// Memory: one slab of whole planes (all channels of up to as many z planes as fit <see cref="SlabBudgetBytes"/>, at least one).
/// </summary>
public static class TiffWriter
{
    /// <summary>Suffix of the file written before it is renamed into place.</summary>
    public const string WritingSuffix = ".writing";

    /// <summary>Above this many bytes of pixel data (plus headroom for IFDs), the file is BigTIFF.</summary>
    public const long ClassicLimitBytes = (1L << 32) - (64L << 20);

    public static long SlabBudgetBytes { get; set; } = 256L << 20;

    /// <summary>Rows per strip: strips of about this many bytes (at least one row).</summary>
    private const long StripBytes = 8L << 20;

    /// <summary>Writes <paramref name="source"/> to <paramref name="path"/>; returns the number of pages written.</summary>
    public static long Write(IVolume source, string path, VoxelSize? voxelOverride = null, bool deflate = false,
        bool? bigTiff = null, IProgress<double>? progress = null, CancellationToken ct = default)
    {
        var info = source.Info;
        var axes = info.Axes;
        if (!axes.Names.Contains('y') || !axes.Names.Contains('x'))
            throw new UsageException($"{path}: a TIFF page is a y,x plane; the input's axes \"{axes}\" lack y or x");
        long width = info.Extent('x'), height = info.Extent('y');
        if (width > int.MaxValue || height > int.MaxValue)
            throw new UsageException($"{path}: planes of {height} x {width} are larger than TIFF allows");
        long channels = info.Channels, slices = info.Extent('z'), frames = info.TimePoints;
        long images = channels * slices * frames;
        int elem = info.DataType.SizeInBytes();
        long planeBytes = width * height * elem;
        bool big = bigTiff ?? info.SizeInBytes + images * 512 > ClassicLimitBytes;
        var voxel = voxelOverride ?? info.VoxelSize;
        double toMicrometers = VoxelSize.MicrometersPer(voxel.Unit) ?? 1;   // unknown units are taken as µm

        string temp = path + WritingSuffix;
        if (File.Exists(temp)) File.Delete(temp);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);

        string description = ImageJDescription(images, channels, slices, frames, voxel.Z * toMicrometers);
        int rowsPerStrip = (int)Math.Clamp(StripBytes / Math.Max(1, width * elem), 1, height);
        var (sampleFormat, bits) = Format(info.DataType);

        // Slab: one t, all c, zCount planes of z, whole y and x, in the source's axis order.
        long zCount = Math.Clamp(SlabBudgetBytes / Math.Max(1, planeBytes * channels), 1, slices);
        var slab = new byte[checked(zCount * channels * planeBytes)];
        var strip = new byte[checked(rowsPerStrip * width * elem)];
        var compressed = deflate ? new MemoryStream() : null;
        long pages = 0;
        try
        {
            using (var tif = LibTiff.Open(temp, big ? "w8" : "w")
                ?? throw new VolumeException(path, $"cannot create {temp}"))
            {
                for (long t = 0; t < frames; t++)
                for (long z0 = 0; z0 < slices; z0 += zCount)
                {
                    long zn = Math.Min(zCount, slices - z0);
                    var start = new long[axes.Rank];
                    var shape = new long[axes.Rank];
                    for (int a = 0; a < axes.Rank; a++)
                    {
                        char n = axes[a];
                        (start[a], shape[a]) = n switch
                        {
                            't' => (t, 1L), 'z' => (z0, zn), 'c' => (0L, channels), _ => (0L, info.Shape[a]),
                        };
                    }
                    var box = new NdBox(start, shape);
                    var span = slab.AsSpan(0, checked((int)(zn * channels * planeBytes)));
                    source.Read(box, span);
                    // Element strides of the slab (C order over the source's axes); absent axes have stride 0.
                    long[] strides = new long[axes.Rank];
                    long s = 1;
                    for (int a = axes.Rank - 1; a >= 0; a--) { strides[a] = s; s *= shape[a]; }
                    long Stride(char n) => axes.IndexOf(n) is var i and >= 0 ? strides[i] : 0;
                    long sz = Stride('z'), sc = Stride('c'), sy = Stride('y'), sx = Stride('x');

                    for (long z = 0; z < zn; z++)
                    for (long c = 0; c < channels; c++)
                    {
                        ct.ThrowIfCancellationRequested();
                        tif.SetField(TiffTag.SUBFILETYPE, 0);
                        tif.SetField(TiffTag.IMAGEWIDTH, (int)width);
                        tif.SetField(TiffTag.IMAGELENGTH, (int)height);
                        tif.SetField(TiffTag.BITSPERSAMPLE, bits);
                        tif.SetField(TiffTag.SAMPLEFORMAT, sampleFormat);
                        tif.SetField(TiffTag.SAMPLESPERPIXEL, 1);
                        tif.SetField(TiffTag.PHOTOMETRIC, Photometric.MINISBLACK);
                        tif.SetField(TiffTag.PLANARCONFIG, PlanarConfig.CONTIG);
                        tif.SetField(TiffTag.COMPRESSION, deflate ? Compression.ADOBE_DEFLATE : Compression.NONE);
                        tif.SetField(TiffTag.ROWSPERSTRIP, rowsPerStrip);
                        tif.SetField(TiffTag.XRESOLUTION, 1.0 / (voxel.X * toMicrometers));
                        tif.SetField(TiffTag.YRESOLUTION, 1.0 / (voxel.Y * toMicrometers));
                        tif.SetField(TiffTag.RESOLUTIONUNIT, ResUnit.NONE);
                        if (pages == 0) tif.SetField(TiffTag.IMAGEDESCRIPTION, description);

                        long origin = z * sz + c * sc;
                        int stripIndex = 0;
                        for (long y0 = 0; y0 < height; y0 += rowsPerStrip, stripIndex++)
                        {
                            long rows = Math.Min(rowsPerStrip, height - y0);
                            int n = (int)(rows * width * elem);
                            CopyRows(slab, origin, y0, rows, width, sy, sx, elem, strip);
                            if (deflate ? WriteDeflated(tif, stripIndex, strip.AsSpan(0, n), compressed!) < 0 : tif.WriteEncodedStrip(stripIndex, strip, n) < 0)
                                throw new VolumeException(path, $"writing page {pages} failed");
                        }
                        if (!tif.WriteDirectory())
                            throw new VolumeException(path, $"writing page {pages} failed");
                        pages++;
                        progress?.Report((double)pages / images);
                    }
                }
            }
            File.Move(temp, path, overwrite: true);
            return pages;
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>
    /// Deflates a strip with .NET's zlib (zlib's default level, as LibTiff's deflate codec and tifffile use; several
    /// times faster than LibTiff.NET's managed port) and writes it as the strip's raw bytes.
    /// </summary>
    private static int WriteDeflated(LibTiff tif, int stripIndex, ReadOnlySpan<byte> strip, MemoryStream compressed)
    {
        compressed.SetLength(0);
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) zlib.Write(strip);
        return tif.WriteRawStrip(stripIndex, compressed.GetBuffer(), (int)compressed.Length);
    }

    /// <summary>Copies rows y0..y0+rows of the plane at element <paramref name="origin"/> into <paramref name="dest"/> (y, x order, native little-endian).</summary>
    private static void CopyRows(byte[] slab, long origin, long y0, long rows, long width, long sy, long sx, int elem, byte[] dest)
    {
        long rowBytes = width * elem;
        for (long r = 0; r < rows; r++)
        {
            long rowStart = origin + (y0 + r) * sy;
            var d = dest.AsSpan((int)(r * rowBytes), (int)rowBytes);
            if (sx == 1)
            {
                slab.AsSpan(checked((int)(rowStart * elem)), (int)rowBytes).CopyTo(d);
                continue;
            }
            for (long x = 0; x < width; x++)
                slab.AsSpan((int)((rowStart + x * sx) * elem), elem).CopyTo(d.Slice((int)(x * elem), elem));
        }
    }

    internal static string ImageJDescription(long images, long channels, long slices, long frames, double spacing)
    {
        var b = new StringBuilder("ImageJ=1.11a\n");
        b.Append(CultureInfo.InvariantCulture, $"images={images}\n");
        if (channels > 1) b.Append(CultureInfo.InvariantCulture, $"channels={channels}\n");
        if (slices > 1) b.Append(CultureInfo.InvariantCulture, $"slices={slices}\n");
        if (frames > 1) b.Append(CultureInfo.InvariantCulture, $"frames={frames}\n");
        if (images > 1) b.Append("hyperstack=true\n");
        if (channels > 1) b.Append("mode=grayscale\n");
        b.Append("unit=micron\n");
        if (slices > 1) b.Append(CultureInfo.InvariantCulture, $"spacing={spacing:R}\n");
        if (images > 1) b.Append("loop=false\n");
        return b.ToString();
    }

    private static (SampleFormat Format, int Bits) Format(DataType type) => type switch
    {
        DataType.UInt8 => (SampleFormat.UINT, 8), DataType.UInt16 => (SampleFormat.UINT, 16),
        DataType.UInt32 => (SampleFormat.UINT, 32), DataType.UInt64 => (SampleFormat.UINT, 64),
        DataType.Int8 => (SampleFormat.INT, 8), DataType.Int16 => (SampleFormat.INT, 16),
        DataType.Int32 => (SampleFormat.INT, 32), DataType.Int64 => (SampleFormat.INT, 64),
        DataType.Float32 => (SampleFormat.IEEEFP, 32), DataType.Float64 => (SampleFormat.IEEEFP, 64),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
