using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Storage.Internal;

/// <summary>
/// The one DllImport resolver of the Storage assembly (a process may install only one per assembly).
/// P/Invoke declarations use a logical name ("blosc", "zstd"); this table maps it to the file names Debian and others install, because the unversioned .so
/// exists only with the -dev package. Add a format's library by adding a row to <see cref="Table"/>.
/// </summary>
internal static class NativeLibraries
{
    public const string Blosc = "blosc";
    public const string Zstd = "zstd";

    /// <summary>Logical name → candidate file names (tried in order) and the Debian package that ships them.</summary>
    private static readonly Dictionary<string, (string[] Files, string Package)> Table = new(StringComparer.Ordinal)
    {
        [Blosc] = (["libblosc.so.1", "libblosc.so"], "libblosc1"),
        [Zstd] = (["libzstd.so.1", "libzstd.so"], "libzstd1"),
    };

    private static readonly ConcurrentDictionary<string, IntPtr> Loaded = new(StringComparer.Ordinal);

    static NativeLibraries() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);

    /// <summary>
    /// Loads <paramref name="logicalName"/> now, so that a missing library is reported when a volume is
    /// opened (naming the package to install) rather than as a DllNotFoundException in the middle of a job.
    /// </summary>
    public static void Require(string logicalName)
    {
        if (Loaded.ContainsKey(logicalName)) return;
        if (!Table.TryGetValue(logicalName, out var entry))
            throw new ArgumentException($"no native library is registered as \"{logicalName}\"", nameof(logicalName));
        foreach (string file in entry.Files)
        {
            if (NativeLibrary.TryLoad(file, out IntPtr handle))
            {
                Loaded.TryAdd(logicalName, handle);
                return;
            }
        }
        throw new UsageException(
            $"the native library {entry.Files[0]} is not installed (tried {string.Join(", ", entry.Files)}); " +
            $"install the Debian/Ubuntu package {entry.Package} (apt-get install {entry.Package})");
    }

    /// <summary>Installs the resolver (the static constructor does the work); safe to call any number of times.</summary>
    public static void Register() { }

    /// <summary>The handle of <paramref name="logicalName"/>, loading it first (see <see cref="Require"/>).</summary>
    public static IntPtr Load(string logicalName)
    {
        Require(logicalName);
        return Loaded[logicalName];
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!Table.ContainsKey(libraryName)) return IntPtr.Zero;   // not ours: default probing
        Require(libraryName);
        return Loaded[libraryName];
    }
}
