using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// <see cref="StagedOutput"/>: an HDF5 output is staged as Zarr and written at commit; whatever moment a kill cuts the
/// commit at, the next look at the output either resumes the staged store or finds the output committed and nothing
/// of the run left beside it.
/// </summary>
public sealed class StagedOutputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("chunkseg-staged-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly VolumeCreateOptions Options =
        new(AxisOrder.Parse("zyx"), [3, 4, 5], DataType.UInt8, [2, 2, 2], VoxelSize.Isotropic, CodecSpec.Gzip(1));

    private static readonly byte[] Voxels = Enumerable.Range(0, 60).Select(i => (byte)i).ToArray();

    private VolumeAddress Final => new(VolumeFormat.Hdf5, Path.Combine(_dir, "out.h5"), "data");

    private StagedOutput Written()
    {
        var staged = StagedOutput.Begin(Final, Options, overwrite: false);
        staged.Volume.Write(NdBox.Whole([3, 4, 5]), Voxels);
        Directory.CreateDirectory(Path.GetDirectoryName(staged.ManifestPath)!);   // where the coordinator keeps it
        File.WriteAllText(staged.ManifestPath, "{\"chunk\":0}\n");
        return staged;
    }

    [Fact]
    public void A_committed_hdf5_output_leaves_only_the_file_and_its_manifest()
    {
        using (var staged = Written()) staged.Commit();

        Assert.Equal(["out.h5", "out.h5.chunkseg-manifest.jsonl"], Directory.EnumerateFileSystemEntries(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        using var read = VolumeStore.Open(Final);
        var back = new byte[60];
        read.Read(NdBox.Whole([3, 4, 5]), back);
        Assert.Equal(Voxels, back);
    }

    [Fact]
    public void A_commit_killed_after_its_rename_is_finished_by_the_next_look_at_the_output()
    {
        using (var staged = Written()) staged.Commit();
        // The state a kill between the rename and the end of the staged store's deletion leaves: the file in place, the
        // staged store (with the manifest still in it) beside it.
        File.Delete(Path.Combine(_dir, "out.h5.chunkseg-manifest.jsonl"));
        using (var again = StagedOutput.Begin(Final with { RootPath = Path.Combine(_dir, "other.h5") }, Options, overwrite: false))
        {
            again.Volume.Write(NdBox.Whole([3, 4, 5]), Voxels);
            Directory.CreateDirectory(Path.GetDirectoryName(again.ManifestPath)!);
            File.WriteAllText(again.ManifestPath, "{\"chunk\":0}\n");
        }
        Directory.Move(Path.Combine(_dir, "other.h5.partial.zarr"), Path.Combine(_dir, "out.h5.partial.zarr"));   // the manifest inside

        Assert.True(StagedOutput.IsCommitted(Final));

        Assert.Equal(["out.h5", "out.h5.chunkseg-manifest.jsonl"], Directory.EnumerateFileSystemEntries(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("{\"chunk\":0}\n", File.ReadAllText(Path.Combine(_dir, "out.h5.chunkseg-manifest.jsonl")));
    }

    [Fact]
    public void A_commit_killed_while_writing_the_file_resumes_from_the_staged_store()
    {
        using (Written()) { }                                          // closed, not committed
        File.WriteAllBytes(Path.Combine(_dir, "out.h5.writing"), [1, 2, 3]);   // a half-written HDF5 file

        Assert.False(StagedOutput.IsCommitted(Final));
        using var resumed = StagedOutput.Begin(Final, Options, overwrite: false);
        Assert.True(resumed.Resumed);
        Assert.False(File.Exists(Path.Combine(_dir, "out.h5.writing")));
        resumed.Commit();
        using var read = VolumeStore.Open(Final);
        var back = new byte[60];
        read.Read(NdBox.Whole([3, 4, 5]), back);
        Assert.Equal(Voxels, back);
    }

    /// <summary>
    /// A Zarr output resumed after a writer was killed mid-write: the writer's temporary file (<c>KEY.tmp-GUID</c>) is
    /// gone once the store is committed, and nothing else is touched (a file that only looks like one stays).
    /// </summary>
    [Fact]
    public void A_committed_zarr_output_holds_no_temporary_file_of_a_killed_writer()
    {
        var final = new VolumeAddress(VolumeFormat.Zarr, Path.Combine(_dir, "out.zarr"), "");
        using (var first = StagedOutput.Begin(final, Options, overwrite: false)) first.Volume.Write(NdBox.Whole([3, 4, 5]), Voxels);
        string chunkDir = Directory.EnumerateFiles(Path.Combine(_dir, "out.zarr" + StagedOutput.PartialSuffix), "*", SearchOption.AllDirectories)
            .Select(Path.GetDirectoryName).First(d => Path.GetFileName(d) != "out.zarr" + StagedOutput.PartialSuffix)!;
        string dead = Path.Combine(chunkDir, "1.tmp-" + new string('a', 32)), lookalike = Path.Combine(chunkDir, "notes.tmp-1");
        File.WriteAllBytes(dead, [1, 2, 3]);
        File.WriteAllBytes(lookalike, [4]);

        using (var resumed = StagedOutput.Begin(final, Options, overwrite: false))
        {
            Assert.True(resumed.Resumed);
            resumed.Commit();
        }
        string committed = Path.Combine(_dir, "out.zarr", Path.GetRelativePath(Path.Combine(_dir, "out.zarr" + StagedOutput.PartialSuffix), chunkDir));
        Assert.False(File.Exists(Path.Combine(committed, Path.GetFileName(dead))));
        Assert.True(File.Exists(Path.Combine(committed, Path.GetFileName(lookalike))));
        using var read = VolumeStore.Open(final);
        var back = new byte[60];
        read.Read(NdBox.Whole([3, 4, 5]), back);
        Assert.Equal(Voxels, back);
    }
}
