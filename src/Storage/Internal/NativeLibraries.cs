using System.Reflection;
using System.Runtime.InteropServices;

namespace ChunkSeg.Storage.Internal;

/// <summary>
/// Resolves the logical library names used in this assembly's <c>[LibraryImport]</c>s ("hdf5", "blosc",
/// "zstd") to the file names Debian and other distributions install, so that no "-dev" symlink is needed.
/// A process may install only one resolver per assembly, hence this single table for every native library.
/// </summary>
internal static class NativeLibraries
{
    /// <summary>Logical name → candidate file names, tried in order.</summary>
    private static readonly Dictionary<string, string[]> Candidates = new(StringComparer.Ordinal)
    {
        ["hdf5"] = ["libhdf5_serial.so.103", "libhdf5.so.103", "libhdf5_serial.so", "libhdf5.so"],
        ["blosc"] = ["libblosc.so.1", "libblosc.so"],
        ["zstd"] = ["libzstd.so.1", "libzstd.so"],
    };

    /// <summary>The Debian package that provides each library, for the error message.</summary>
    private static readonly Dictionary<string, string> Packages = new(StringComparer.Ordinal)
    {
        ["hdf5"] = "libhdf5-103-1",
        ["blosc"] = "libblosc1",
        ["zstd"] = "libzstd1",
    };

    private static readonly Lock Gate = new();
    private static bool registered;

    /// <summary>Installs the resolver once; later calls do nothing. Call before the first P/Invoke.</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (registered) return;
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
            registered = true;
        }
    }

    /// <summary>Loads <paramref name="logicalName"/> or throws <see cref="DllNotFoundException"/> naming the files tried and the package.</summary>
    public static IntPtr Load(string logicalName)
    {
        var handle = TryLoad(logicalName);
        if (handle != IntPtr.Zero) return handle;
        string package = Packages.TryGetValue(logicalName, out var p) ? p : "lib" + logicalName;
        string tried = Candidates.TryGetValue(logicalName, out var names) ? string.Join(", ", names) : logicalName;
        throw new DllNotFoundException(
            $"native library \"{logicalName}\" could not be loaded (tried {tried}); install it, e.g. `apt-get install {package}` on Debian/Ubuntu");
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!Candidates.ContainsKey(libraryName)) return IntPtr.Zero;   // not ours: default probing
        return Load(libraryName);
    }

    private static IntPtr TryLoad(string logicalName)
    {
        if (!Candidates.TryGetValue(logicalName, out var names))
            return NativeLibrary.TryLoad(logicalName, out var h) ? h : IntPtr.Zero;
        foreach (string name in names)
            if (NativeLibrary.TryLoad(name, out var handle)) return handle;
        return IntPtr.Zero;
    }
}
