using System.Globalization;
using System.Xml.Linq;
using BitMiracle.LibTiff.Classic;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Tiff;

/// <summary>
/// Where each y, x plane of a TIFF volume lives, worked out once at open from the first page's tags and its
/// ImageDescription (ImageJ hyperstack, OME-XML, tifffile JSON, or none). <see cref="Labels"/>/<see cref="Sizes"/> are the file's
/// natural dimensions, slowest first, as tifffile's <c>series.axes</c> reports them: the page dimensions (size-1 ones
/// dropped), then y, x, then the samples of a pixel when there are several (RGB). <see cref="Planes"/> is indexed by
/// the C-order linear index over the page dimensions.
/// </summary>
internal sealed record TiffLayout(
    string[] Files,
    TiffPlane[] Planes,
    string Labels,
    long[] Sizes,
    int SampleDim,
    TiffPage Page,
    DataType DataType,
    VoxelSize VoxelSize,
    string Codec)
{
    public int PageDims => SampleDim >= 0 ? Labels.Length - 3 : Labels.Length - 2;

    // ---- one file -------------------------------------------------------------------------------------

    /// <summary>Reads the layout of one TIFF file (which may name other files: a multi-file OME-TIFF series).</summary>
    public static TiffLayout ForFile(string path, Func<string, int> pageCount)
    {
        int pages = pageCount(path);
        var (page, description, resolution, contiguous) = TiffFiles.WithHandle(path, tif =>
        {
            var p = TiffPage.Read(tif, path, 0);
            return (p, tif.GetField(TiffTag.IMAGEDESCRIPTION)?[0].ToString(), Resolution.Read(tif), ContiguousPlaneBytes(TiffPageEntry.Read(tif, path, 0)));
        });
        var type = page.ToDataType(path);
        string codec = TiffPage.CodecName(page.Compression);
        if (description is not null && description.TrimStart().StartsWith('<') && description.Contains("<OME", StringComparison.Ordinal))
            return OmeLayout(path, description, page, type, codec, pages);
        if (description is not null && description.StartsWith("ImageJ=", StringComparison.Ordinal))
            return ImageJLayout(path, description, page, type, codec, pages, resolution, contiguous);
        // A plain multi-page file: pages are z, unless tifffile's JSON description names their axes.
        var dims = TifffileAxes(description, page, pages) ?? [('z', pages)];
        long count = dims.Aggregate(1L, (n, d) => n * d.Size);
        var planes = Enumerable.Range(0, (int)count).Select(i => new TiffPlane(0, i)).ToArray();
        var size = resolution.ToMicrometers(1);
        return Build([path], planes, dims, page, type, size ?? new VoxelSize(1, 1, 1), codec);
    }

    /// <summary>
    /// tifffile's description of a plain file, <c>{"axes": "TCZYX", "shape": [2, 3, 4, 8, 9]}</c>: the page axes
    /// (those before Y, slowest first), when they are distinct t, c, z and fit in the file's pages; else null.
    /// </summary>
    private static List<(char Label, long Size)>? TifffileAxes(string? description, TiffPage page, int pages)
    {
        if (description is null || !description.TrimStart().StartsWith('{')) return null;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(description);
            if (!doc.RootElement.TryGetProperty("axes", out var a) || a.GetString() is not { } axes ||
                !doc.RootElement.TryGetProperty("shape", out var sh)) return null;
            long[] shape = sh.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            axes = axes.ToUpperInvariant();
            int y = axes.IndexOf('Y');
            string tail = page.SamplesPerPixel > 1 ? "YXS" : "YX";
            if (axes.Length != shape.Length || y < 0 || axes[y..] != tail || shape[y] != page.Height || shape[y + 1] != page.Width) return null;
            var dims = new List<(char Label, long Size)>();
            for (int i = 0; i < y; i++)
            {
                if (!"TCZ".Contains(axes[i]) || axes.IndexOf(axes[i]) != i) return null;
                dims.Add((char.ToLowerInvariant(axes[i]), shape[i]));
            }
            return dims.Aggregate(1L, (n, d) => n * d.Size) <= pages ? dims : null;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    private static TiffLayout Build(string[] files, TiffPlane[] planes, List<(char Label, long Size)> pageDims, TiffPage page,
        DataType type, VoxelSize size, string codec, char sampleLabel = 'c')
    {
        var kept = pageDims.Where(d => d.Size > 1).ToList();
        string labels = string.Concat(kept.Select(d => d.Label)) + "yx";
        var sizes = kept.Select(d => d.Size).Concat([page.Height, page.Width]).ToList();
        int sampleDim = -1;
        if (page.SamplesPerPixel > 1)
        {
            sampleDim = labels.Length;
            labels += sampleLabel;
            sizes.Add(page.SamplesPerPixel);
        }
        return new TiffLayout(files, planes, labels, sizes.ToArray(), sampleDim, page, type, size, codec);
    }

    // ---- ImageJ hyperstacks -----------------------------------------------------------------------------

    /// <summary>
    /// ImageJ writes "ImageJ=1.x\nimages=N\nchannels=C\nslices=Z\nframes=T\nspacing=..\nunit=..": pages run c fastest,
    /// then z, then t. Pixel width and height are 1/XResolution and 1/YResolution in <c>unit</c>; z is <c>spacing</c>.
    /// </summary>
    private static TiffLayout ImageJLayout(string path, string description, TiffPage page, DataType type, string codec, int pages, Resolution resolution,
        long? contiguousPlaneBytes)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in description.Split('\n'))
        {
            int eq = line.IndexOf('=');
            if (eq > 0) values[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        long Count(string key)
        {
            if (!values.TryGetValue(key, out var v)) return 1;
            if (long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) && n >= 1) return n;
            throw new VolumeException(path, $"ImageJ description has {key}={v}; expected a positive integer");
        }
        long c = Count("channels"), z = Count("slices"), t = Count("frames");
        long images = values.ContainsKey("images") ? Count("images") : pages;
        if (c * z * t != images)
            throw new VolumeException(path, $"ImageJ description says channels={c} × slices={z} × frames={t} = {c * z * t} planes but images={images}");
        // Over 4 GiB ImageJ writes one IFD and every plane after the first, uncompressed, back to back.
        long planeBytes = contiguousPlaneBytes ?? 0;
        bool oneIfd = images > pages;
        if (oneIfd && (pages != 1 || contiguousPlaneBytes is null))
            throw new VolumeException(path, $"ImageJ description says images={images} but the file has {pages} pages (IFDs), and the first page " +
                "is not one uncompressed run of bytes that the other planes could follow (ImageJ's layout for stacks over 4 GiB)");
        if (oneIfd && new FileInfo(path).Length < TiffFiles.FirstStripOffset(path) + images * planeBytes)
            throw new VolumeException(path, $"is truncated: ImageJ description says images={images} planes of {planeBytes} bytes after the first IFD, " +
                $"but the file has {new FileInfo(path).Length} bytes");
        if (page.SamplesPerPixel > 1 && c > 1)
            throw new VolumeException(path, $"ImageJ hyperstack has channels={c} of {page.SamplesPerPixel}-sample (RGB) pixels; ChunkSeg has one " +
                "channel axis: split the channels or save it as a plain RGB stack");

        double unit = VoxelSize.MicrometersPer(values.GetValueOrDefault("unit")) ?? 1;
        double spacing = values.TryGetValue("spacing", out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double sp) && sp > 0 ? sp : 1;
        var xy = resolution.PerPixel();
        var size = new VoxelSize(spacing * unit, (xy?.Y ?? 1) * unit, (xy?.X ?? 1) * unit);
        var planes = Enumerable.Range(0, checked((int)images))
            .Select(i => oneIfd ? new TiffPlane(0, 0, i * planeBytes) : new TiffPlane(0, i)).ToArray();
        return Build([path], planes, [('t', t), ('z', z), ('c', c)], page, type, size, codec);
    }

    /// <summary>The bytes of a page whose uncompressed strips follow each other in the file; null for any other page.</summary>
    private static long? ContiguousPlaneBytes(TiffPageEntry entry)
    {
        if (entry.Page is not { Separate: false } page || entry.RawStrips(page.BitsPerSample / 8) is not { } offsets) return null;
        long rowBytes = (long)page.Width * page.SamplesPerPixel * (page.BitsPerSample / 8);
        for (int i = 1; i < offsets.Length; i++)
            if (offsets[i] != offsets[i - 1] + Math.Min(page.RowsPerStrip, page.Height - (i - 1) * page.RowsPerStrip) * rowBytes) return null;
        return page.Height * rowBytes;
    }

    // ---- OME-TIFF ---------------------------------------------------------------------------------------

    /// <summary>
    /// The first Image of the OME-XML: DimensionOrder names the axes fastest first ("XYZCT": z fastest among the
    /// pages, then c, then t), so the plane index of (z, c, t) is the C-order index over the reversed order. Each
    /// TiffData maps PlaneCount planes from (FirstZ, FirstC, FirstT) on to consecutive IFDs from IFD, in this file or
    /// the one its UUID's FileName names (a multi-file series, resolved beside this file).
    /// </summary>
    private static TiffLayout OmeLayout(string path, string xml, TiffPage page, DataType type, string codec, int pages)
    {
        XElement pixels;
        try
        {
            var root = XDocument.Parse(xml).Root!;
            var ns = root.Name.Namespace;
            pixels = root.Element(ns + "Image")?.Element(ns + "Pixels") ?? throw new FormatException("no Image/Pixels element");
        }
        catch (Exception e) when (e is System.Xml.XmlException or FormatException)
        {
            throw new VolumeException(path, $"OME-XML in ImageDescription cannot be read: {e.Message}", e);
        }
        var pns = pixels.Name.Namespace;
        long Size(string axis)
        {
            string? v = (string?)pixels.Attribute("Size" + axis);
            return long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) && n >= 1 ? n
                : throw new VolumeException(path, $"OME-XML Pixels has Size{axis}=\"{v}\"; expected a positive integer");
        }
        long sx = Size("X"), sy = Size("Y"), sz = Size("Z"), sc = Size("C"), st = Size("T");
        if (sx != page.Width || sy != page.Height)
            throw new VolumeException(path, $"OME-XML says SizeX={sx}, SizeY={sy} but the first page is {page.Width}×{page.Height}");
        string order = ((string?)pixels.Attribute("DimensionOrder") ?? "XYZCT").ToUpperInvariant();
        if (order.Length != 5 || !order.StartsWith("XY", StringComparison.Ordinal) || order[2..].OrderBy(ch => ch).SequenceEqual("CTZ") is false)
            throw new VolumeException(path, $"OME-XML DimensionOrder=\"{order}\"; expected XY followed by Z, C, T in some order, e.g. XYZCT");
        long pageC = sc;
        if (page.SamplesPerPixel > 1)
        {
            if (sc % page.SamplesPerPixel != 0)
                throw new VolumeException(path, $"OME-XML SizeC={sc} is not a multiple of the {page.SamplesPerPixel} samples per pixel");
            pageC = sc / page.SamplesPerPixel;
            if (pageC > 1)
                throw new VolumeException(path, $"OME-TIFF has {pageC} planes of {page.SamplesPerPixel}-sample (RGB) pixels per z and t; ChunkSeg has one channel axis");
        }
        var sizeOf = new Dictionary<char, long> { ['Z'] = sz, ['C'] = pageC, ['T'] = st };
        var pageDims = order[2..].Reverse().Select(ch => (char.ToLowerInvariant(ch), sizeOf[ch])).ToList();
        long planeCount = sz * pageC * st;
        if (planeCount > int.MaxValue) throw new VolumeException(path, $"OME-XML describes {planeCount} planes; at most {int.MaxValue} are supported");

        // Strides of z, c, t in the plane index (DimensionOrder, fastest first).
        var stride = new Dictionary<char, long>();
        long step = 1;
        foreach (char ch in order[2..]) { stride[ch] = step; step *= sizeOf[ch]; }

        var files = new List<string> { path };
        var planes = new TiffPlane?[planeCount];
        var tiffData = pixels.Elements(pns + "TiffData").ToList();
        if (tiffData.Count == 0)
        {
            for (int i = 0; i < Math.Min(planeCount, pages); i++) planes[i] = new TiffPlane(0, i);
        }
        foreach (var td in tiffData)
        {
            int? Attr(string name)
            {
                string? v = (string?)td.Attribute(name);
                if (v is null) return null;
                return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 0 ? n
                    : throw new VolumeException(path, $"OME-XML TiffData has {name}=\"{v}\"; expected a non-negative integer");
            }
            int? ifd = Attr("IFD"), fz = Attr("FirstZ"), fc = Attr("FirstC"), ft = Attr("FirstT"), count = Attr("PlaneCount");
            long first = (fz ?? 0) * stride['Z'] + (fc ?? 0) * stride['C'] + (ft ?? 0) * stride['T'];
            // As Bio-Formats reads it: without PlaneCount, a bare TiffData covers every plane, one with attributes one plane.
            long n = count ?? (ifd is null && fz is null && fc is null && ft is null ? planeCount - first : 1);
            int file = 0;
            var uuid = td.Element(pns + "UUID");
            string? fileName = (string?)uuid?.Attribute("FileName");
            if (fileName is not null)
            {
                string other = Path.Combine(Path.GetDirectoryName(path) ?? ".", fileName);
                file = files.FindIndex(f => Path.GetFullPath(f) == Path.GetFullPath(other));
                if (file < 0) { files.Add(other); file = files.Count - 1; }
            }
            for (long k = 0; k < n && first + k < planeCount; k++)
                planes[first + k] = new TiffPlane(file, checked((int)((ifd ?? 0) + k)));
        }
        int missing = Array.FindIndex(planes, p => p is null);
        if (missing >= 0)
            throw new VolumeException(path, $"OME-XML maps no page to plane {missing} of {planeCount} (DimensionOrder {order}, SizeZ={sz}, SizeC={sc}, SizeT={st}); " +
                $"the file has {pages} pages");

        var size = new VoxelSize(
            OmeLength(path, pixels, "Z") ?? 1, OmeLength(path, pixels, "Y") ?? 1, OmeLength(path, pixels, "X") ?? 1);
        return Build(files.ToArray(), planes.Select(p => p!.Value).ToArray(), pageDims, page, type, size, codec);
    }

    private static double? OmeLength(string path, XElement pixels, string axis)
    {
        string? v = (string?)pixels.Attribute("PhysicalSize" + axis);
        if (v is null || !double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double size) || !(size > 0)) return null;
        string? unit = (string?)pixels.Attribute($"PhysicalSize{axis}Unit");
        double factor = unit is null ? 1 : VoxelSize.MicrometersPer(unit)
            ?? throw new VolumeException(path, $"OME-XML PhysicalSize{axis}Unit=\"{unit}\" is not a length unit ChunkSeg knows (µm, nm, mm, cm, m, Å)");
        return size * factor;
    }

    // ---- folders and globs ------------------------------------------------------------------------------

    /// <summary>
    /// Many files as one volume: each file is laid out like the first; single-page files are z slices, stacks are
    /// time points. Files are taken in natural name order (digits compared as numbers: z2 before z10).
    /// </summary>
    public static TiffLayout ForSeries(string pattern, string[] files, Func<string, int> pageCount)
    {
        var first = ForFile(files[0], pageCount);
        if (first.Files.Length > 1)
            throw new VolumeException(pattern, $"{files[0]} is a multi-file OME-TIFF; open it alone, not as part of a folder or glob");
        char label = first.PageDims == 0 ? 'z' : !first.Labels.Contains('t') ? 't' : '\0';
        if (label == '\0')
            throw new VolumeException(pattern, $"{files[0]} already has axes \"{first.Labels}\"; a series of such files would need a sixth axis");
        var planes = new TiffPlane[files.Length * first.Planes.Length];
        for (int f = 0; f < files.Length; f++)
            for (int p = 0; p < first.Planes.Length; p++)
                planes[f * first.Planes.Length + p] = new TiffPlane(f, first.Planes[p].Ifd);
        return first with
        {
            Files = files,
            Planes = planes,
            Labels = label + first.Labels,
            Sizes = [files.Length, .. first.Sizes],
            SampleDim = first.SampleDim < 0 ? -1 : first.SampleDim + 1,
        };
    }
}

/// <summary>
/// A y, x plane: page <see cref="Ifd"/> (0-based IFD index) of file <see cref="File"/>, its uncompressed strips moved
/// <see cref="Shift"/> bytes on (nonzero only for ImageJ's one-IFD stacks, whose planes all follow the first page's).
/// </summary>
internal readonly record struct TiffPlane(int File, int Ifd, long Shift = 0);

/// <summary>XResolution, YResolution and ResolutionUnit of a page (pixels per unit).</summary>
internal readonly record struct Resolution(double? X, double? Y, ResUnit Unit)
{
    public static Resolution Read(BitMiracle.LibTiff.Classic.Tiff tif) => new(
        tif.GetField(TiffTag.XRESOLUTION)?[0].ToDouble(),
        tif.GetField(TiffTag.YRESOLUTION)?[0].ToDouble(),
        (ResUnit)(tif.GetField(TiffTag.RESOLUTIONUNIT)?[0].ToInt() ?? (int)ResUnit.INCH));

    /// <summary>Pixel width and height in the file's unit (1/resolution), or null when not recorded.</summary>
    public (double Y, double X)? PerPixel() =>
        X is > 0 and var x && double.IsFinite(x) ? (Y is > 0 and var y && double.IsFinite(y) ? 1 / y : 1 / x, 1 / x) : null;

    /// <summary>For a plain TIFF: the pixel size in µm when ResolutionUnit is inch or centimeter; else null.</summary>
    public VoxelSize? ToMicrometers(double z)
    {
        double? factor = Unit switch { ResUnit.INCH => 25400, ResUnit.CENTIMETER => 1e4, _ => null };
        return factor is { } f && PerPixel() is { } p ? new VoxelSize(z, p.Y * f, p.X * f) : null;
    }
}
