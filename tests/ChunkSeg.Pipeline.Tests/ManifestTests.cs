using ChunkSeg.Contracts.Errors;
using ChunkSeg.Coordinator.Manifest;

namespace ChunkSeg.Pipeline.Tests;

public sealed class ManifestTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "chunkseg-tests", Guid.NewGuid().ToString("N"));
    private string ManifestFile => Path.Combine(_dir, "m.jsonl");

    [Fact]
    public void Reopening_resumes_the_recorded_chunks()
    {
        using (var m = ChunkManifest.OpenOrCreate(ManifestFile, "job", 10))
        {
            Assert.True(m.MarkDone(3, 1, 8, "w"));
            Assert.True(m.MarkDone(7, 2, 8, "w"));
            Assert.False(m.MarkDone(3, 1, 8, "w"));       // a duplicate reply is not recorded twice
        }
        using var again = ChunkManifest.OpenOrCreate(ManifestFile, "job", 10);
        Assert.Equal(2, again.DoneCount);
        Assert.True(again.IsDone(3));
        Assert.True(again.IsDone(7));
        Assert.False(again.IsDone(4));
    }

    [Fact]
    public void A_torn_last_line_is_dropped_and_appends_stay_readable()
    {
        using (var m = ChunkManifest.OpenOrCreate(ManifestFile, "job", 10))
            m.MarkDone(1, 1, 8, "w");
        File.AppendAllText(ManifestFile, "{\"chunk\":5,\"chec");   // the process died mid-write
        using (var m = ChunkManifest.OpenOrCreate(ManifestFile, "job", 10))
        {
            Assert.Equal(1, m.DoneCount);
            Assert.False(m.IsDone(5));
            m.MarkDone(2, 1, 8, "w");
        }
        using var last = ChunkManifest.OpenOrCreate(ManifestFile, "job", 10);
        Assert.Equal(2, last.DoneCount);
        Assert.True(last.IsDone(2));
    }

    [Fact]
    public void A_manifest_of_another_job_is_refused()
    {
        using (ChunkManifest.OpenOrCreate(ManifestFile, "job A", 10)) { }
        var e = Assert.Throws<UsageException>(() => ChunkManifest.OpenOrCreate(ManifestFile, "job B", 10));
        Assert.Contains("different job", e.Message);
        Assert.Contains("--overwrite", e.Message);
        Assert.Throws<UsageException>(() => ChunkManifest.OpenOrCreate(ManifestFile, "job A", 11));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }
}
