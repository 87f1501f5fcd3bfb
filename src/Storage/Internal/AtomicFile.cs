namespace ChunkSeg.Storage.Internal;

/// <summary>Writes a file under a temporary name, flushes it to disk and renames it: readers never see half a file.</summary>
public static class AtomicFile
{
    private const string Suffix = ".tmp";

    public static void Write(string path, Action<Stream> write)
    {
        string temporary = $"{path}.{Guid.NewGuid():N}{Suffix}";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    /// <summary>
    /// Deletes the temporary files of writes of <paramref name="path"/> that a killed process left behind (its
    /// <c>finally</c> never ran). Only for a path no other process is writing at the same time.
    /// </summary>
    public static void RemoveLeftovers(string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is null || !Directory.Exists(directory)) return;
        string prefix = Path.GetFileName(path) + ".";
        foreach (var file in Directory.EnumerateFiles(directory, prefix + "*" + Suffix))
        {
            string guid = Path.GetFileName(file)[prefix.Length..^Suffix.Length];
            if (guid.Length == 32 && guid.All(char.IsAsciiHexDigitLower)) File.Delete(file);
        }
    }
}
