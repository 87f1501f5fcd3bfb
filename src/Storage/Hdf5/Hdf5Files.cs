using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage.Hdf5.Native;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// Opening HDF5 files and finding objects in them, shared by <see cref="Hdf5Volume"/> (one image dataset) and
/// <see cref="Hdf5File"/> (small datasets and groups, e.g. an ilastik project). Except <see cref="RequireFile"/>,
/// callers hold <see cref="H5.Gate"/>.
/// </summary>
internal static unsafe class Hdf5Files
{
    /// <summary>
    /// A clear <see cref="VolumeException"/> when <paramref name="filePath"/> is missing or a directory, and a clear
    /// "install libhdf5" error before H5's type initializer runs.
    /// </summary>
    public static void RequireFile(string filePath)
    {
        if (!File.Exists(filePath))
            throw new VolumeException(filePath, Directory.Exists(filePath) ? "is a directory, not an HDF5 file" : "file not found");
        NativeLibraries.Require(NativeLibraries.Hdf5);
    }

    public static void Initialize(string filePath)
    {
        try
        {
            H5.EnsureInitialized();
        }
        catch (TypeInitializationException e)
        {
            throw new VolumeException(filePath, $"cannot use HDF5: {e.InnerException?.Message ?? e.Message}", e);
        }
    }

    public static long OpenFile(string filePath, bool writable)
    {
        if (!HasHdf5Signature(filePath))
            throw new VolumeException(filePath, "is not an HDF5 file (no HDF5 signature found)");
        long fapl = CreateFileAccessList();
        long file = H5.H5Fopen(filePath, writable ? H5.AccRdWr : H5.AccRdOnly, fapl);
        string error = file < 0 ? H5.TakeErrorStack() : "";   // before any other call clears the stack
        H5.H5Pclose(fapl);
        if (file >= 0) return file;
        // libhdf5 shares one open file per process and cannot upgrade it from read-only to read-write.
        if (writable && error.Contains("already open for read-only", StringComparison.Ordinal))
            throw new VolumeException(filePath,
                "cannot open for writing because this process already has it open read-only (e.g. as the input); " +
                "write the output to a different .h5 file");
        throw new VolumeException(filePath, $"cannot open{(writable ? " for writing" : "")}: {error}");
    }

    /// <summary>
    /// The superblock signature sits at offset 0 or after a user block of 512, 1024, 2048, ... bytes.
    /// Checked here rather than with H5Fis_hdf5, which would take the file lock that we disable below.
    /// </summary>
    public static bool HasHdf5Signature(string filePath)
    {
        ReadOnlySpan<byte> signature = [0x89, (byte)'H', (byte)'D', (byte)'F', (byte)'\r', (byte)'\n', 0x1a, (byte)'\n'];
        try
        {
            using var stream = new FileStream(filePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Span<byte> head = stackalloc byte[8];
            for (long offset = 0; offset + 8 <= stream.Length; offset = offset == 0 ? 512 : offset * 2)
            {
                stream.Position = offset;
                stream.ReadExactly(head);
                if (head.SequenceEqual(signature)) return true;
            }
            return false;
        }
        catch (IOException e)
        {
            throw new VolumeException(filePath, $"cannot read the file: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new VolumeException(filePath, $"cannot read the file: {e.Message}", e);
        }
    }

    /// <summary>
    /// File access without HDF5's advisory file locks (as HDF5_USE_FILE_LOCKING=FALSE does). The lock lives on
    /// the open file description, which any child process started meanwhile inherits (libhdf5 does not open with
    /// O_CLOEXEC), so a lock would outlive our H5Fclose and make later opens of the same file fail at random.
    /// Within this process all access is serialized by <see cref="H5.Gate"/>; concurrent writers in other processes
    /// are not supported by HDF5 anyway.
    /// </summary>
    public static long CreateFileAccessList()
    {
        long fapl = H5.Check(H5.H5Pcreate(H5.ClassFileAccess), "H5Pcreate(file access)");
        H5.Check(H5.H5Pset_file_locking(fapl, 0, 1), "H5Pset_file_locking");
        return fapl;
    }


    /// <summary>True when every link along <paramref name="path"/> exists (H5Lexists fails on a missing parent).</summary>
    public static bool LinkExists(long file, string path)
    {
        string prefix = "";
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            prefix = prefix.Length == 0 ? part : $"{prefix}/{part}";
            int exists = H5.H5Lexists(file, prefix, H5.Default);
            if (exists <= 0)
            {
                H5.H5Eclear2(H5.Default);
                return false;
            }
        }
        return true;
    }

    /// <summary>H5I type of the object at <paramref name="path"/>, or -1 when it cannot be opened (dangling link).</summary>
    public static int ObjectType(long file, string path)
    {
        long obj = H5.H5Oopen(file, path, H5.Default);
        if (obj < 0)
        {
            H5.H5Eclear2(H5.Default);
            return -1;
        }
        int type = H5.H5Iget_type(obj);
        H5.H5Oclose(obj);
        return type;
    }

    /// <summary>
    /// H5Literate/H5Lvisit callback: appends each link name to the <c>List&lt;string&gt;</c> behind the GCHandle
    /// passed as <paramref name="data"/>.
    /// </summary>
    [UnmanagedCallersOnly]
    internal static int CollectName(long group, byte* name, IntPtr info, IntPtr data)
    {
        var names = (List<string>)GCHandle.FromIntPtr(data).Target!;
        string? text = Marshal.PtrToStringUTF8((IntPtr)name);
        if (text is not null) names.Add(text);
        return 0;
    }
}
