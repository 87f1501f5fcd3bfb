using System.Security.Cryptography;
using System.Text;

namespace ChunkSeg.OpenCl;

/// <summary>What <see cref="ProgramCache.TryLoad"/> found.</summary>
internal enum CacheLookup
{
    Miss,
    Hit,
    Corrupt,
}

/// <summary>
/// A directory of compiled program binaries, so a worker pays the OpenCL compiler once per device and driver,
/// not once per process. The key is the SHA-256 of source, build options, platform name and version, device
/// name and version, and driver version: a driver update or an edited kernel misses. A file is
/// <c>&lt;key&gt;.bin</c> = magic, SHA-256 of the payload, payload; a truncated or damaged file fails the
/// checksum and is removed, a binary the driver refuses is removed by <see cref="OpenClProgram"/>, and either
/// way the program is built from source. Writes are atomic (temp file, then rename), so concurrent processes
/// may share the directory. The cache is an optimisation: a directory that cannot be written only costs the
/// compile time, never fails a build.
/// </summary>
public sealed class ProgramCache
{
    /// <summary>Environment variable overriding <see cref="DefaultDirectory"/>.</summary>
    public const string DirectoryVariable = "CHUNKSEG_OPENCL_CACHE";

    private static readonly byte[] Magic = "CSCLBIN1"u8.ToArray();
    private const int HeaderLength = 8 + 32;

    /// <summary>A cache in <paramref name="directory"/> (created on the first store).</summary>
    public ProgramCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
    }

    /// <summary>The directory holding the binaries.</summary>
    public string Directory { get; }

    /// <summary>The cache in <see cref="DefaultDirectory"/>.</summary>
    public static ProgramCache Default => new(DefaultDirectory());

    /// <summary>
    /// <c>$CHUNKSEG_OPENCL_CACHE</c> when set, else <c>$XDG_CACHE_HOME/chunkseg/opencl</c>, else
    /// <c>~/.cache/chunkseg/opencl</c> (the temp directory when there is no home either).
    /// </summary>
    public static string DefaultDirectory()
    {
        string? explicitDir = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrWhiteSpace(explicitDir)) return explicitDir;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)) return Path.Combine(xdg, "chunkseg", "opencl");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return string.IsNullOrEmpty(home)
            ? Path.Combine(Path.GetTempPath(), "chunkseg-opencl-cache")
            : Path.Combine(home, ".cache", "chunkseg", "opencl");
    }

    /// <summary>The file that holds (or would hold) the binary of <paramref name="source"/> built with <paramref name="options"/> for <paramref name="device"/>.</summary>
    public string PathOf(OpenClDevice device, string source, string options) => FileOf(KeyOf(device, source, options));

    internal string KeyOf(OpenClDevice device, string source, string options)
    {
        var text = new StringBuilder("chunkseg opencl program v1");
        foreach (string part in (string[])[source, options, device.Platform.Name, device.Platform.Version, device.Name, device.Version, device.DriverVersion])
            text.Append('\0').Append(part);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    internal CacheLookup TryLoad(string key, out byte[]? binary)
    {
        binary = null;
        string path = FileOf(key);
        byte[] file;
        try
        {
            if (!File.Exists(path)) return CacheLookup.Miss;
            file = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return CacheLookup.Miss;
        }
        if (file.Length <= HeaderLength || !file.AsSpan(0, 8).SequenceEqual(Magic)
            || !SHA256.HashData(file.AsSpan(HeaderLength)).AsSpan().SequenceEqual(file.AsSpan(8, 32)))
        {
            Remove(key);
            return CacheLookup.Corrupt;
        }
        binary = file[HeaderLength..];
        return CacheLookup.Hit;
    }

    internal void Store(string key, byte[] binary)
    {
        string path = FileOf(key);
        string temp = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(Magic);
                stream.Write(SHA256.HashData(binary));
                stream.Write(binary);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);                                      // a read-only or full cache costs compile time only
        }
    }

    internal void Remove(string key) => TryDelete(FileOf(key));

    private string FileOf(string key) => Path.Combine(Directory, key + ".bin");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
