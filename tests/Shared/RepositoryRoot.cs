namespace ChunkSeg.Tests.Shared;

/// <summary>The checkout the tests run from: the first folder above the test's binaries that holds ChunkSeg.sln.</summary>
internal static class RepositoryRoot
{
    /// <summary>The folder, or null when the binaries do not lie inside a checkout.</summary>
    public static string? Find()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "ChunkSeg.sln")))
            dir = Path.GetDirectoryName(dir);
        return dir;
    }

    public static string Require() => Find() ?? throw new InvalidOperationException($"no ChunkSeg.sln above {AppContext.BaseDirectory}");
}
