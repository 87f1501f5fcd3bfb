using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using BitMiracle.LibTiff.Classic;
using ChunkSeg.Contracts.Errors;
using LibTiff = BitMiracle.LibTiff.Classic.Tiff;

namespace ChunkSeg.Storage.Tiff;

/// <summary>
/// LibTiff.NET handles: opening with errors turned into <see cref="VolumeException"/>s, and a pool of open handles per
/// file. A handle holds a current directory and a read position, so it is never shared: each <c>Read</c> rents one
/// (opening a new one when the pool is empty) and returns it, so concurrent reads never wait on each other, and at most
/// <see cref="MaxIdle"/> idle handles stay open (a folder of thousands of slices does not hold thousands of files open).
/// </summary>
internal sealed class TiffFiles : IDisposable
{
    private static readonly int MaxIdle = Math.Max(16, 2 * Environment.ProcessorCount);

    private readonly string[] _paths;
    private readonly ConcurrentBag<LibTiff>[] _idle;
    private readonly TiffPageEntry[]?[] _pages;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle?[] _raw;
    private int _idleCount;
    private bool _disposed;

    static TiffFiles() => LibTiff.SetErrorHandler(new Messages());

    public TiffFiles(string[] paths)
    {
        _paths = paths;
        _idle = paths.Select(_ => new ConcurrentBag<LibTiff>()).ToArray();
        _pages = new TiffPageEntry[]?[paths.Length];
        _raw = new Microsoft.Win32.SafeHandles.SafeFileHandle?[paths.Length];
    }

    /// <summary>
    /// A plain read handle on file <paramref name="file"/> for positioned reads (<see cref="RandomAccess"/>: any thread).
    /// Kept open for volumes of up to <see cref="MaxIdle"/> files; for larger series, opened for the caller to dispose
    /// (<paramref name="owned"/>), so a folder of thousands of slices does not hold thousands of files open.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle Raw(int file, out bool owned)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        owned = _paths.Length > MaxIdle;
        if (owned) return File.OpenHandle(_paths[file], FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        var known = Volatile.Read(ref _raw[file]);
        if (known is not null) return known;
        var opened = File.OpenHandle(_paths[file], FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        var raced = Interlocked.CompareExchange(ref _raw[file], opened, null);
        if (raced is null) return opened;
        opened.Dispose();
        return raced;
    }

    public string Path(int file) => _paths[file];

    /// <summary>Opens <paramref name="path"/>; throws a <see cref="VolumeException"/> saying why it cannot be.</summary>
    public static LibTiff Open(string path)
    {
        if (!File.Exists(path))
            throw new VolumeException(path, Directory.Exists(path) ? "is a folder, not a TIFF file" : "no such file");
        Messages.Last = null;
        LibTiff? tif;
        try
        {
            tif = LibTiff.Open(path, "r");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(path, $"cannot open: {e.Message}", e);
        }
        if (tif is not null) return tif;
        if (IsBigEndianBigTiff(path))
            throw new VolumeException(path, "is a big-endian BigTIFF, which LibTiff.NET (ChunkSeg's TIFF library) cannot read (it finds no first page); " +
                "rewrite it little-endian, e.g. tifffile.imwrite(out, tifffile.imread(in), bigtiff=True)");
        throw new VolumeException(path, $"is not a readable TIFF file: {Messages.Last ?? "LibTiff.NET could not open it"}");
    }

    /// <summary>"MM", version 43: LibTiff.NET 2.4.660 misreads the 8-byte first-IFD offset of these (classic big-endian TIFF is fine).</summary>
    private static bool IsBigEndianBigTiff(string path)
    {
        Span<byte> header = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.ReadAtLeast(header, 4, throwOnEndOfStream: false) == 4 && header[0] == 'M' && header[1] == 'M' && header[2] == 0 && header[3] == 43;
    }

    public static T WithHandle<T>(string path, Func<LibTiff, T> use)
    {
        using var tif = Open(path);
        return use(tif);
    }

    /// <summary>Every page of <paramref name="path"/>, walked once (the chain of "next IFD" pointers).</summary>
    public static TiffPageEntry[] WalkPages(string path) => WithHandle(path, tif =>
    {
        var pages = new List<TiffPageEntry> { TiffPageEntry.Read(tif, path, 0) };
        while (tif.ReadDirectory()) pages.Add(TiffPageEntry.Read(tif, path, pages.Count));
        return pages.ToArray();
    });

    /// <summary>Where the first page's first strip starts.</summary>
    public static long FirstStripOffset(string path) => WithHandle(path, tif => TiffPageEntry.Read(tif, path, 0).BlockOffsets?[0] ?? 0);

    /// <summary>The pages of file <paramref name="file"/>, walked on first use (a series' later files only when read).</summary>
    public TiffPageEntry[] Pages(int file)
    {
        var known = Volatile.Read(ref _pages[file]);
        if (known is not null) return known;
        var walked = WalkPages(_paths[file]);
        Volatile.Write(ref _pages[file], walked);
        return walked;
    }

    public void SetPages(int file, TiffPageEntry[] pages) => _pages[file] = pages;

    public LibTiff Rent(int file)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_idle[file].TryTake(out var tif))
        {
            Interlocked.Decrement(ref _idleCount);
            return tif;
        }
        return Open(_paths[file]);
    }

    public void Return(int file, LibTiff tif)
    {
        if (_disposed || Interlocked.Increment(ref _idleCount) > MaxIdle)
        {
            Interlocked.Decrement(ref _idleCount);
            tif.Dispose();
            return;
        }
        _idle[file].Add(tif);
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var raw in _raw) raw?.Dispose();
        foreach (var bag in _idle)
            while (bag.TryTake(out var tif)) tif.Dispose();
    }

    /// <summary>The last error LibTiff.NET reported on this thread (it reports through a process-wide handler).</summary>
    public static string? LastError => Messages.Last;

    public static void ClearError() => Messages.Last = null;

    /// <summary>Keeps errors for the exception message instead of printing them; drops warnings (unknown tags are common).</summary>
    private sealed class Messages : TiffErrorHandler
    {
        [ThreadStatic] public static string? Last;

        public override void ErrorHandler(LibTiff tif, string method, string format, params object[] args) =>
            Last = $"{method}: {string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args)}";

        public override void ErrorHandlerExt(LibTiff tif, object clientData, string method, string format, params object[] args)
        {
            if (format is { Length: > 0 }) ErrorHandler(tif, method, format, args);
        }

        public override void WarningHandler(LibTiff tif, string method, string format, params object[] args)
        {
        }

        public override void WarningHandlerExt(LibTiff tif, object clientData, string method, string format, params object[] args)
        {
        }
    }

    // ---- folders and globs ------------------------------------------------------------------------------

    /// <summary>
    /// The files of a folder (every .tif/.tiff/.btf in it) or a glob (<c>*</c> and <c>?</c> in the file name only),
    /// in natural name order.
    /// </summary>
    public static string[] List(string pattern)
    {
        string dir, glob;
        if (Directory.Exists(pattern))
        {
            (dir, glob) = (pattern, "*");
        }
        else
        {
            dir = System.IO.Path.GetDirectoryName(pattern) is { Length: > 0 } d ? d : ".";
            glob = System.IO.Path.GetFileName(pattern);
            if (dir.IndexOfAny(['*', '?']) >= 0)
                throw new VolumeException(pattern, "wildcards are allowed only in the file name, not in folder names");
            if (!Directory.Exists(dir)) throw new VolumeException(pattern, $"no such folder: {dir}");
        }
        var regex = new Regex("^" + Regex.Escape(glob).Replace("\\*", ".*").Replace("\\?", ".") + "$", RegexOptions.IgnoreCase);
        var files = Directory.EnumerateFiles(dir)
            .Where(f => VolumeAddress.IsTiffFileName(f) && regex.IsMatch(System.IO.Path.GetFileName(f)))
            .OrderBy(f => System.IO.Path.GetFileName(f), NaturalOrder.Instance)
            .ToArray();
        if (files.Length == 0)
            throw new VolumeException(pattern, glob == "*" ? "the folder holds no .tif, .tiff or .btf files" : "no .tif, .tiff or .btf file matches");
        return files;
    }

    private sealed class NaturalOrder : IComparer<string>
    {
        public static readonly NaturalOrder Instance = new();

        public int Compare(string? a, string? b)
        {
            a ??= ""; b ??= "";
            int i = 0, j = 0;
            while (i < a.Length && j < b.Length)
            {
                if (char.IsAsciiDigit(a[i]) && char.IsAsciiDigit(b[j]))
                {
                    int si = i, sj = j;
                    while (i < a.Length && char.IsAsciiDigit(a[i])) i++;
                    while (j < b.Length && char.IsAsciiDigit(b[j])) j++;
                    string na = a[si..i].TrimStart('0'), nb = b[sj..j].TrimStart('0');
                    int c = na.Length != nb.Length ? na.Length.CompareTo(nb.Length) : string.CompareOrdinal(na, nb);
                    if (c != 0) return c;
                }
                else
                {
                    int c = char.ToLowerInvariant(a[i]).CompareTo(char.ToLowerInvariant(b[j]));
                    if (c != 0) return c;
                    i++; j++;
                }
            }
            int rest = (a.Length - i).CompareTo(b.Length - j);
            return rest != 0 ? rest : string.CompareOrdinal(a, b);
        }
    }
}
