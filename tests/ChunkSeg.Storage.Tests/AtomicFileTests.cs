using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// <see cref="AtomicFile"/>: a write replaces the file whole; the temporary files a killed writer leaves are swept by
/// <see cref="AtomicFile.RemoveLeftovers"/>, and nothing else is.
/// </summary>
public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("chunkseg-atomic-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_write_leaves_only_the_file()
    {
        string path = Path.Combine(_dir, "manifest.json");
        AtomicFile.Write(path, s => s.Write("one"u8));
        AtomicFile.Write(path, s => s.Write("two"u8));
        Assert.Equal("two", File.ReadAllText(path));
        Assert.Equal(["manifest.json"], Directory.EnumerateFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Leftovers_of_a_killed_write_are_removed_and_nothing_else()
    {
        string path = Path.Combine(_dir, "manifest.json");
        File.WriteAllText(path, "kept");
        string leftover = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(leftover, "half");
        string[] kept = [path, path + ".backup.tmp", path + ".ABCDEF0123456789ABCDEF0123456789.tmp", Path.Combine(_dir, $"other.json.{Guid.NewGuid():N}.tmp")];
        foreach (var file in kept.Skip(1)) File.WriteAllText(file, "");

        AtomicFile.RemoveLeftovers(path);

        Assert.False(File.Exists(leftover));
        Assert.All(kept, file => Assert.True(File.Exists(file), file));
        AtomicFile.RemoveLeftovers(Path.Combine(_dir, "missing", "x.json"));    // no folder: nothing to do
    }
}
