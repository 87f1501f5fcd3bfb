using ChunkSeg.Contracts.Errors;
using ChunkSeg.Pipelines;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>Paths from messages stay inside the store root and the job's output folder, whatever ".." they carry.</summary>
public sealed class StoreGuardTests
{
    [Theory]
    [InlineData("/data/raw.zarr", true)]
    [InlineData("/data/runs/r1/labels.ome.zarr", true)]
    [InlineData("/data", true)]
    [InlineData("/data/../etc/passwd", false)]
    [InlineData("/database/x.zarr", false)]
    [InlineData("/etc/shadow", false)]
    [InlineData("relative/raw.zarr", false)]
    public void Store_root_admits_only_its_own_paths(string path, bool admitted)
    {
        var guard = new StoreGuard("/data/");
        if (admitted) Assert.Equal(Path.GetFullPath(path), guard.Check(path, "input"));
        else Assert.Contains("refused", Assert.Throws<UsageException>(() => guard.Check(path, "input")).Message);
    }

    [Fact]
    public void Outputs_stay_in_the_jobs_folder()
    {
        Assert.Equal("/data/runs/r1/labels.ome.zarr.partial", StoreGuard.Within("/data/runs/r1/labels.ome.zarr.partial", "/data/runs/r1"));
        Assert.Throws<UsageException>(() => StoreGuard.Within("/data/runs/r1/../r2/labels.ome.zarr", "/data/runs/r1"));
        Assert.Throws<UsageException>(() => StoreGuard.Within("/data/runs/r10/x", "/data/runs/r1"));
    }
}
