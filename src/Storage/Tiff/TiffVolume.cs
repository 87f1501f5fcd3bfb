using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using BitMiracle.LibTiff.Classic;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using LibTiff = BitMiracle.LibTiff.Classic.Tiff;

namespace ChunkSeg.Storage.Tiff;

/// <summary>
/// A TIFF stack, read-only, through LibTiff.NET (managed; classic TIFF and BigTIFF; whatever compression it decodes).
/// <para>
/// <b>Pages, strips, tiles.</b> A TIFF file is a chain of pages (IFDs); each page is one y, x plane, cut into strips
/// of RowsPerStrip whole rows, or into TileWidth × TileLength tiles, each compressed on its own. Which page holds which
/// (t, c, z) comes from the ImageDescription (<see cref="TiffLayout"/>); samples of a pixel (RGB) are channels, either
/// interleaved in each strip (contiguous) or in one set of strips per sample (separate):
/// <code>
///   file:  IFD0 ──▶ IFD1 ──▶ IFD2 ──▶ …          plane index p = C-order index over the page axes
///            │        (ImageJ: c fastest, then z, then t; OME: DimensionOrder XY·fastest·…·slowest)
///            ▼
///   page:  ┌──────────────────────┐ strip 0     rows [0, R)          tiled page: ┌────┬────┬────┐
///          │      box rows ┌───┐  │ strip 1     rows [R, 2R)  ◀─ read            │ t0 │ t1 │ t2 │
///          ├───────────────┼───┼──┤ strip 2     rows [2R, 3R) ◀─ read            ├────┼────┼────┤
///          │               └───┘  │ …                                            │ t3 │▒t4▒│ t5 │ ◀─ only the
///          └──────────────────────┘ separate planar: strips of sample s follow    └────┴────┴────┘   tiles the box
///                                  those of sample s-1 (ComputeStrip(row, s))                       touches
/// </code>
/// <c>Read(box)</c> visits only the pages inside the box's t, c, z range, and on each page decodes only the strips or
/// tiles that meet its y, x range, then copies the overlap into the box (C order, machine byte order). Memory is one
/// strip or tile buffer per read, beyond the box itself; a compressed page stored as a single strip is decoded whole for
/// every box that touches it. Uncompressed strips need no decoding: the box's part of each row is read straight from
/// the file (<see cref="ReadRaw"/>), whatever the strip size; deflate without a predictor is inflated by .NET's zlib
/// (<see cref="Inflate"/>); other codecs by LibTiff.NET. Each page's tags and block offsets are parsed once, at the
/// walk over the file's IFDs (<see cref="TiffPageEntry"/>), not again by every chunk that crosses the page.
/// </para>
/// <para>
/// <b>Axes.</b> The volume reports the file's axes in OME order (t, c, z, y, x). <c>--axes</c> renames the file's
/// natural axes, as tifffile lists them (pages slowest first, then y, x, then samples): e.g. <c>--axes tyx</c> makes
/// the pages of a plain stack time points. Voxel size is in µm: ImageJ's 1/XResolution and spacing in its unit,
/// OME's PhysicalSize, or a plain TIFF's resolution in inch or cm; 1 when the file does not say.
/// </para>
/// <para>
/// <b>Threads.</b> A LibTiff handle is not thread-safe; each read rents its own from <see cref="TiffFiles"/>'s pool.
/// </para>
/// </summary>
internal sealed class TiffVolume : IVolume
{
    private readonly TiffLayout _layout;
    private readonly TiffFiles _files;
    private readonly int[] _reported;     // for each natural dimension, its index in the reported (OME-order) axes
    private readonly int _elementSize;
    private bool _disposed;

    private TiffVolume(string location, TiffLayout layout, TiffFiles files, AxisOrder? axes)
    {
        _layout = layout;
        _files = files;
        _elementSize = layout.DataType.SizeInBytes();
        string labels = layout.Labels;
        if (axes is not null)
        {
            if (axes.Rank != labels.Length)
                throw new VolumeException(location, $"--axes \"{axes}\" has {axes.Rank} axes but the file has {labels.Length} (\"{labels}\": " +
                    "page axes slowest first, then y, x, then the samples of a pixel)");
            int y = labels.IndexOf('y');
            if (axes[y] != 'y' || axes[y + 1] != 'x')
                throw new VolumeException(location, $"--axes \"{axes}\" must keep y and x where the file's rows and columns are (\"{labels}\")");
            labels = axes.Names;
        }
        var ome = AxisOrder.Parse(labels).ToOmeOrder();
        _reported = labels.Select(ome.IndexOf).ToArray();
        var shape = new long[labels.Length];
        var chunks = new int[labels.Length];
        for (int d = 0; d < labels.Length; d++)
        {
            shape[_reported[d]] = layout.Sizes[d];
            chunks[_reported[d]] = 1;
        }
        var page = layout.Page;
        int iy = labels.IndexOf('y');
        chunks[_reported[iy]] = page.Tiled ? Math.Min(page.TileLength, page.Height) : page.RowsPerStrip;
        chunks[_reported[iy + 1]] = page.Tiled ? Math.Min(page.TileWidth, page.Width) : page.Width;
        if (layout.SampleDim >= 0 && !page.Separate) chunks[_reported[layout.SampleDim]] = page.SamplesPerPixel;
        Info = new VolumeInfo(location, VolumeFormat.Tiff, ome, shape, layout.DataType, chunks, layout.VoxelSize, layout.Codec, 0);
    }

    public VolumeInfo Info { get; }

    /// <summary>
    /// Opens a TIFF file, a folder of TIFF files or a glob of them (<c>stack/*.tif</c>). TIFF is read-only here.
    /// </summary>
    public static TiffVolume Open(string path, AxisOrder? axes, bool writable)
    {
        if (writable)
            throw new VolumeException(path, "TIFF volumes are read-only in ChunkSeg; write to Zarr or HDF5");
        bool series = Directory.Exists(path) || Path.GetFileName(path).IndexOfAny(['*', '?']) >= 0;
        var walked = new Dictionary<string, TiffPageEntry[]>();
        int Walk(string f) => (walked.TryGetValue(f, out var o) ? o : walked[f] = TiffFiles.WalkPages(f)).Length;
        var layout = series ? TiffLayout.ForSeries(path, TiffFiles.List(path), Walk) : TiffLayout.ForFile(path, Walk);
        var files = new TiffFiles(layout.Files);
        try
        {
            for (int f = 0; f < layout.Files.Length; f++)
                if (walked.TryGetValue(layout.Files[f], out var o)) files.SetPages(f, o);
            if (!series)
            {
                // One file: every page is here already, so check now that the layout's pages exist.
                foreach (var group in layout.Planes.GroupBy(p => p.File))
                {
                    int max = group.Max(p => p.Ifd), have = files.Pages(group.Key).Length;
                    if (max >= have)
                        throw new VolumeException(layout.Files[group.Key], $"has {have} pages but the layout needs page {max}");
                }
            }
            return new TiffVolume(path, layout, files, axes);
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    // ---- data -----------------------------------------------------------------------------------------

    public void Read(NdBox box, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(box);
        var shape = Info.Shape;
        if (box.Rank != shape.Length)
            throw new VolumeException(Info.Location, $"box {box} has {box.Rank} dimensions but the volume has {shape.Length} ({Info.Axes})");
        if (!box.IsInside(shape))
            throw new VolumeException(Info.Location, $"box {box} lies outside the volume of shape [{string.Join(", ", shape)}] ({Info.Axes})");
        long bytes = box.ElementCount * _elementSize;
        if (destination.Length < bytes)
            throw new ArgumentException($"buffer holds {destination.Length} bytes; box {box} needs {bytes}");
        if (bytes == 0) return;

        // Strides of the destination (bytes), per natural dimension.
        var stride = new long[box.Rank];
        long s = _elementSize;
        for (int d = box.Rank - 1; d >= 0; d--) { stride[d] = s; s *= box.Shape[d]; }
        int pageDims = _layout.PageDims;
        long Start(int d) => box.Start[_reported[d]];
        long Count(int d) => box.Shape[_reported[d]];
        long Stride(int d) => stride[_reported[d]];
        var request = new PlaneRequest(
            (int)Start(pageDims), (int)(Start(pageDims) + Count(pageDims)),
            (int)Start(pageDims + 1), (int)(Start(pageDims + 1) + Count(pageDims + 1)),
            _layout.SampleDim >= 0 ? (int)Start(_layout.SampleDim) : 0,
            _layout.SampleDim >= 0 ? (int)(Start(_layout.SampleDim) + Count(_layout.SampleDim)) : 1,
            Stride(pageDims), _layout.SampleDim >= 0 ? Stride(_layout.SampleDim) : 0);

        // Every page inside the box, in plane order: an odometer over the page dimensions.
        var at = new long[pageDims];
        for (int d = 0; d < pageDims; d++) at[d] = Start(d);
        int heldFile = -1;
        LibTiff? held = null;
        try
        {
            while (true)
            {
                long plane = 0, offset = 0;
                for (int d = 0; d < pageDims; d++)
                {
                    plane = plane * _layout.Sizes[d] + at[d];
                    offset += (at[d] - Start(d)) * Stride(d);
                }
                var where = _layout.Planes[plane];
                if (where.File != heldFile && held is not null)
                {
                    _files.Return(heldFile, held);
                    held = null;
                }
                // A LibTiff handle only for pages it must decode: uncompressed and plain deflate pages are read here.
                ReadPlane(where, request, destination[(int)offset..], () =>
                {
                    if (held is null) (held, heldFile) = (_files.Rent(where.File), where.File);
                    return held;
                });

                int k = pageDims - 1;
                while (k >= 0 && ++at[k] == Start(k) + Count(k)) { at[k] = Start(k); k--; }
                if (k < 0) break;
            }
        }
        catch (Exception e) when (e is not ChunkSegException and not ObjectDisposedException and not ArgumentException)
        {
            held?.Dispose();
            held = null;
            throw new VolumeException(Info.Location, $"reading box {box} failed: {e.Message}", e);
        }
        finally
        {
            if (held is not null) _files.Return(heldFile, held);
        }
    }

    /// <summary>The y, x and sample range of a box, and where its rows and samples go in the destination.</summary>
    private readonly record struct PlaneRequest(int Y0, int Y1, int X0, int X1, int S0, int S1, long RowStride, long SampleStride);

    /// <summary>Decodes the strips or tiles of one page that meet the request and copies the overlap out.</summary>
    private void ReadPlane(TiffPlane where, PlaneRequest r, Span<byte> destination, Func<LibTiff> handle)
    {
        string file = _files.Path(where.File);
        var pages = _files.Pages(where.File);
        if (where.Ifd >= pages.Length)
            throw new VolumeException(file, $"has {pages.Length} pages; the volume needs page {where.Ifd} (files of a series must have as many pages as the first)");
        var entry = pages[where.Ifd];
        LibTiff? tif = null;
        if (entry.Page is null || !entry.PlainDeflate && entry.RawStrips(_elementSize) is null)
        {
            tif = handle();
            if (tif.CurrentDirOffset() != entry.IfdOffset && !tif.SetSubDirectory(entry.IfdOffset))
                throw new VolumeException(file, $"cannot read page {where.Ifd}: {TiffFiles.LastError ?? "bad IFD"}");
        }
        var page = entry.Page ?? TiffPage.Read(tif!, file, where.Ifd);   // throws, saying what the page lacks
        if (!page.SamePixels(_layout.Page))
            throw new VolumeException(file, $"page {where.Ifd} is {page.Describe()}, unlike the first page ({_layout.Page.Describe()}); " +
                "every page of a volume must have the same size and pixel type");

        if (entry.RawStrips(_elementSize) is { } strips)
        {
            ReadRaw(where.File, page, strips, where.Shift, entry.Swapped, r, destination);
            return;
        }
        if (where.Shift != 0)
            throw new VolumeException(file, $"page {where.Ifd} no longer holds contiguous uncompressed strips");
        if (tif is not null && !tif.IsCodecConfigured(page.Compression))
            throw new VolumeException(file, $"page {where.Ifd} is compressed with {TiffPage.CodecName(page.Compression)}, which LibTiff.NET (ChunkSeg's " +
                "TIFF library) cannot decode; re-save it uncompressed, LZW or deflate, e.g. tifffile.imwrite(out, tifffile.imread(in), compression='zlib')");

        int spp = page.SamplesPerPixel, e = _elementSize;
        int inBuffer = page.Separate ? 1 : spp;                      // samples interleaved in one decoded buffer
        int tileW = page.Tiled ? page.TileWidth : page.Width;
        int tileH = page.Tiled ? page.TileLength : page.RowsPerStrip;
        if (tileW <= 0 || tileH <= 0)
            throw new VolumeException(file, $"page {where.Ifd} has tiles of {tileW}×{tileH}");
        int rowBytes = tileW * inBuffer * e;
        int across = (page.Width + tileW - 1) / tileW, down = (page.Height + tileH - 1) / tileH;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(checked(rowBytes * tileH));
        try
        {
            // Separate planes: one pass per sample; contiguous: one pass serves every sample.
            int passes = page.Separate ? r.S1 - r.S0 : 1;
            for (int pass = 0; pass < passes; pass++)
            {
                int sample = page.Separate ? r.S0 + pass : 0;
                for (int ty = r.Y0 / tileH * tileH; ty < r.Y1; ty += tileH)
                {
                    int rows = Math.Min(tileH, page.Height - ty);
                    for (int tx = r.X0 / tileW * tileW; tx < r.X1; tx += tileW)
                    {
                        // Strips and tiles are numbered row by row, the planes of separate samples one after another.
                        int block = (sample * down + ty / tileH) * across + tx / tileW;
                        int want = rowBytes * (page.Tiled ? tileH : rows);
                        string? problem = null;
                        int n = tif is null
                            ? Inflate(where.File, entry, block, buffer.AsSpan(0, want), out problem)
                            : page.Tiled
                                ? tif.ReadEncodedTile(block, buffer, 0, want)
                                : tif.ReadEncodedStrip(block, buffer, 0, want);
                        if (n < 0)
                            throw new VolumeException(file, $"page {where.Ifd}: cannot decode the {(page.Tiled ? "tile" : "strip")} at row {ty}, column {tx}: " +
                                (problem ?? TiffFiles.LastError ?? "corrupt or truncated data"));
                        int y0 = Math.Max(r.Y0, ty), y1 = Math.Min(r.Y1, ty + rows);
                        int x0 = Math.Max(r.X0, tx), x1 = Math.Min(r.X1, tx + tileW);
                        for (int y = y0; y < y1; y++)
                        {
                            var src = buffer.AsSpan((y - ty) * rowBytes);
                            long rowAt = (y - r.Y0) * r.RowStride + (long)(x0 - r.X0) * e;
                            if (inBuffer == 1)
                            {
                                // One sample per pixel here: the overlap of a row is one block.
                                long at = rowAt + (page.Separate ? (sample - r.S0) * r.SampleStride : 0);
                                src.Slice((x0 - tx) * e, (x1 - x0) * e).CopyTo(destination[(int)at..]);
                                continue;
                            }
                            for (int s = r.S0; s < r.S1; s++)
                            {
                                var dst = destination[(int)(rowAt + (s - r.S0) * r.SampleStride)..];
                                for (int x = x0, o = 0; x < x1; x++, o += e)
                                    src.Slice(((x - tx) * spp + s) * e, e).CopyTo(dst[o..]);
                            }
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // ---- deflate strips and tiles: .NET's zlib ---------------------------------------------------------------

    /// <summary>
    /// Inflates strip or tile <paramref name="block"/> of a plain deflate page into <paramref name="decoded"/> (its full
    /// size: a tile is always whole) with .NET's zlib, reading the compressed bytes by a positioned read; swaps a
    /// big-endian file's samples. Returns the bytes decoded, or -1 with the <paramref name="problem"/>.
    /// </summary>
    private int Inflate(int file, TiffPageEntry entry, int block, Span<byte> decoded, out string? problem)
    {
        problem = null;
        if (block >= entry.BlockOffsets!.Length)
        {
            problem = $"the page has {entry.BlockOffsets.Length} strips or tiles; its size needs {block + 1}";
            return -1;
        }
        long at = entry.BlockOffsets[block];
        int count = checked((int)entry.BlockBytes![block]);
        var handle = _files.Raw(file, out bool owned);
        byte[] compressed = ArrayPool<byte>.Shared.Rent(count);
        try
        {
            ReadExactly(file, handle, compressed.AsSpan(0, count), at);
            using var stream = new ZLibStream(new MemoryStream(compressed, 0, count, writable: false), CompressionMode.Decompress);
            int done = stream.ReadAtLeast(decoded, decoded.Length, throwOnEndOfStream: false);
            if (done < decoded.Length)
            {
                problem = $"the deflate data at byte {at} holds {done} bytes; the page's size needs {decoded.Length}";
                return -1;
            }
            if (entry.Swapped) Swap(decoded, _elementSize);
            return done;
        }
        catch (InvalidDataException e)
        {
            problem = $"the deflate data at byte {at} is corrupt ({e.Message})";
            return -1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
            if (owned) handle.Dispose();
        }
    }

    // ---- uncompressed strips: read only the box's bytes ----------------------------------------------------

    /// <summary>
    /// Uncompressed strips are plain rows in the file: the box's part of each row is read directly (positioned reads on
    /// one shared handle, safe from any thread), so a page stored as one huge strip costs only the box's bytes.
    /// </summary>
    private void ReadRaw(int file, TiffPage page, long[] strips, long shift, bool swapped, PlaneRequest r, Span<byte> destination)
    {
        int spp = page.SamplesPerPixel, e = _elementSize;
        int inBuffer = page.Separate ? 1 : spp;
        long rowBytes = (long)page.Width * inBuffer * e;
        int rps = page.RowsPerStrip, perPlane = (page.Height + rps - 1) / rps;
        int width = r.X1 - r.X0;
        var handle = _files.Raw(file, out bool owned);
        byte[]? row = inBuffer == 1 ? null : ArrayPool<byte>.Shared.Rent(width * inBuffer * e);
        try
        {
            int passes = page.Separate ? r.S1 - r.S0 : 1;
            for (int pass = 0; pass < passes; pass++)
            {
                int sample = page.Separate ? r.S0 + pass : 0;
                long planeAt = page.Separate ? (sample - r.S0) * r.SampleStride : 0;
                for (int y = r.Y0; y < r.Y1; y++)
                {
                    long at = shift + strips[sample * perPlane + y / rps] + y % rps * rowBytes + (long)r.X0 * inBuffer * e;
                    long rowAt = (y - r.Y0) * r.RowStride + planeAt;
                    if (inBuffer == 1)
                    {
                        // Whole rows that lie back to back in the file (same strip) and in the destination: one read for
                        // the run of them, not one per row (a syscall per row made small rows slow).
                        int run = 1;
                        if (width == page.Width && r.RowStride == rowBytes)
                            run = Math.Min(r.Y1 - y, rps - y % rps);
                        var dst = destination.Slice((int)rowAt, checked(run * width * e));
                        ReadExactly(file, handle, dst, at);
                        if (swapped) Swap(dst, e);
                        y += run - 1;
                        continue;
                    }
                    var src = row.AsSpan(0, width * inBuffer * e);
                    ReadExactly(file, handle, src, at);
                    if (swapped) Swap(src, e);
                    for (int s = r.S0; s < r.S1; s++)
                    {
                        var dst = destination[(int)(rowAt + (s - r.S0) * r.SampleStride)..];
                        for (int x = 0, o = 0; x < width; x++, o += e)
                            src.Slice((x * spp + s) * e, e).CopyTo(dst[o..]);
                    }
                }
            }
        }
        finally
        {
            if (row is not null) ArrayPool<byte>.Shared.Return(row);
            if (owned) handle.Dispose();
        }
    }

    private void ReadExactly(int file, Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        for (int done = 0; done < buffer.Length;)
        {
            int n = RandomAccess.Read(handle, buffer[done..], offset + done);
            if (n <= 0) throw new VolumeException(_files.Path(file), $"is truncated: no data at byte {offset + done}");
            done += n;
        }
    }

    private static void Swap(Span<byte> data, int elementSize)
    {
        switch (elementSize)
        {
            case 2: var u16 = MemoryMarshal.Cast<byte, ushort>(data); BinaryPrimitives.ReverseEndianness(u16, u16); break;
            case 4: var u32 = MemoryMarshal.Cast<byte, uint>(data); BinaryPrimitives.ReverseEndianness(u32, u32); break;
            case 8: var u64 = MemoryMarshal.Cast<byte, ulong>(data); BinaryPrimitives.ReverseEndianness(u64, u64); break;
        }
    }

    public void Write(NdBox box, ReadOnlySpan<byte> source) =>
        throw new VolumeException(Info.Location, $"is open read-only; cannot write box {box} (ChunkSeg does not write TIFF)");

    public void Flush()
    {
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _files.Dispose();
    }

    public override string ToString() => Info.Location;
}
