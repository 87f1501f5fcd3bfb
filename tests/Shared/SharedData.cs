namespace ChunkSeg.Tests.Shared;

/// <summary>
/// Reference files nobody here wrote, in ../shared/data beside the repository (the folder holding
/// ChunkSeg.sln). A test skips with the reason when they are absent, and fails when CI is set.
/// </summary>
internal static class SharedData
{
    public static string Require(string relative)
    {
        string? dir = RepositoryRoot.Find();
        string? path = dir is null ? null : Path.GetFullPath(Path.Combine(dir, "..", "shared", "data", relative));
        if (path is not null && File.Exists(path)) return path;
        string message = $"../shared/data/{relative} not found beside the repository holding ChunkSeg.sln";
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            Assert.Fail(message + ", and CI must have it");
        Assert.Skip(message);
        return "";
    }
}
