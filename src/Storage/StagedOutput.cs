using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Storage;

/// <summary>
/// An output volume written under a staging name and renamed into place only when every chunk is done,
/// so that an interrupted or failed run can never be mistaken for a finished one:
/// <code>
///   out.zarr.partial/   ← while the job runs (and after a crash; the next run resumes it)
///   out.zarr/           ← after Commit(): a single rename of the whole store or file
/// </code>
/// The coordinator's manifest lives beside the staged data (<see cref="ManifestPath"/>) and moves with it.
/// A partial Zarr store always resumes: each chunk is its own file, renamed into place before the manifest
/// records it.
/// <para>
/// An HDF5 output is staged as Zarr too, and written at commit in one pass from the committed chunks:
/// <code>
///   out.h5.partial.zarr/   ← while the job runs; workers (on any node) write chunks; a rerun resumes it
///   out.h5.writing         ← Commit(): the HDF5 file written chunk after chunk from the staged store
///   out.h5                 ← renamed into place once complete; then the staged store is deleted
/// </code>
/// HDF5 (through PureHDF) is written whole and never edited, so a file is never trusted half-written: an
/// interrupted commit leaves <c>out.h5.writing</c>, which the next run deletes and writes again from the staged store.
/// </para>
/// </summary>
public sealed class StagedOutput : IDisposable
{
    public const string PartialSuffix = ".partial";

    /// <summary>Where an HDF5 output is written at commit before it is renamed into place.</summary>
    public const string WritingSuffix = ".writing";
    private bool _committed;

    private readonly VolumeCreateOptions _options;

    private StagedOutput(VolumeAddress final, VolumeAddress staging, VolumeCreateOptions options, IVolume volume, bool resumed)
    {
        Final = final;
        Staging = staging;
        _options = options;
        Volume = volume;
        Resumed = resumed;
    }

    public VolumeAddress Final { get; }
    public VolumeAddress Staging { get; }
    public IVolume Volume { get; private set; }

    /// <summary>True when a previous run's staged output was reopened; finished chunks can be skipped.</summary>
    public bool Resumed { get; }

    /// <summary>The manifest file for this output: inside a Zarr store, beside an HDF5 file.</summary>
    public string ManifestPath => ManifestPathFor(Staging);

    /// <summary>Where the manifest of an output at <paramref name="a"/> lives: inside a Zarr store, beside an HDF5 file.</summary>
    public static string ManifestPathFor(VolumeAddress a) => a.Format == VolumeFormat.Zarr
        ? Path.Combine(a.RootPath, ".chunkseg", "manifest.jsonl")
        : a.RootPath + ".chunkseg-manifest.jsonl";

    /// <summary>
    /// True when <paramref name="final"/> exists, i.e. a job committed it. An HDF5 commit killed after its rename but
    /// before it deleted the staged store is finished here (manifest moved, staged store deleted), so a rerun that skips
    /// the committed output leaves nothing of the run behind.
    /// </summary>
    public static bool IsCommitted(VolumeAddress final)
    {
        if (!Directory.Exists(final.RootPath) && !File.Exists(final.RootPath)) return false;
        if (final.Format != VolumeFormat.Zarr) FinishInterruptedCommit(final);
        return true;
    }

    private static void FinishInterruptedCommit(VolumeAddress final)
    {
        var staging = StagingAddress(final);
        if (!Directory.Exists(staging.RootPath)) return;
        string manifest = ManifestPathFor(staging);
        if (File.Exists(manifest)) File.Move(manifest, ManifestPathFor(final), overwrite: true);
        Directory.Delete(staging.RootPath, recursive: true);
    }

    /// <summary>
    /// Opens the staged output for <paramref name="final"/>: reopens a compatible partial one (resume) or
    /// creates it. A committed output at <paramref name="final"/> is an error unless <paramref name="overwrite"/>.
    /// </summary>
    public static StagedOutput Begin(VolumeAddress final, VolumeCreateOptions options, bool overwrite)
    {
        VolumeStore.RequireWritableFormat(final);    // before any work: the commit would fail only at the end
        var staging = StagingAddress(final);
        if (IsCommitted(final))
        {
            if (!overwrite)
                throw new UsageException($"{final.RootPath}: output already exists; pass --overwrite to replace it");
            DeleteRoot(final);
        }
        if (File.Exists(final.RootPath + WritingSuffix)) File.Delete(final.RootPath + WritingSuffix);   // an interrupted commit: written again
        if (overwrite && IsCommitted(staging)) DeleteRoot(staging);
        var stagingOptions = StagingOptions(final, options);

        if (IsCommitted(staging))
        {
            IVolume? existing = null;
            try
            {
                existing = VolumeStore.Open(staging, options.Axes, writable: true);
                if (Matches(existing.Info, stagingOptions))
                    return new StagedOutput(final, staging, options, existing, resumed: true);
            }
            catch (ChunkSegException)
            {
                // An unreadable partial output (killed mid-header) cannot be resumed; start it again.
            }
            existing?.Dispose();
            DeleteRoot(staging);
        }

        string? parent = Path.GetDirectoryName(Path.GetFullPath(final.RootPath));
        if (parent is not null) Directory.CreateDirectory(parent);
        return new StagedOutput(final, staging, options, VolumeStore.Create(staging, stagingOptions), resumed: false);
    }

    /// <summary>
    /// Where the output to <paramref name="final"/> is staged while its job runs: beside it with <see cref="PartialSuffix"/>;
    /// for an HDF5 output, a Zarr store (<c>out.h5.partial.zarr</c>), which any number of workers and nodes can write.
    /// </summary>
    public static VolumeAddress StagingAddress(VolumeAddress final) => final.Format == VolumeFormat.Zarr
        ? final with { RootPath = final.RootPath + PartialSuffix }
        : new VolumeAddress(VolumeFormat.Zarr, final.RootPath + PartialSuffix + ".zarr", "");

    /// <summary>An HDF5 output's staged store: the same array as Zarr, with Zarr's fast default codec (gzip is paid once, at commit).</summary>
    private static VolumeCreateOptions StagingOptions(VolumeAddress final, VolumeCreateOptions options) =>
        final.Format == VolumeFormat.Zarr ? options : options with { Codec = CodecSpec.Default };

    /// <summary>
    /// Flushes and closes the staged volume, then puts it in place: a Zarr store by one rename; an HDF5 file written
    /// from the staged store in one pass, renamed into place, and the staged store deleted.
    /// </summary>
    public void Commit()
    {
        Volume.Flush();
        Volume.Dispose();
        if (Final.Format == VolumeFormat.Zarr)
        {
            // A writer killed mid-write (an interrupted run this one resumed) left its temporary file; the finished store holds chunks only.
            Zarr.ZarrVolume.RemoveTemporaryFiles(Staging.RootPath);
            Directory.Move(Staging.RootPath, Final.RootPath);
        }
        else
        {
            string writing = Final.RootPath + WritingSuffix;
            if (File.Exists(writing)) File.Delete(writing);
            using (var staged = VolumeStore.Open(Staging, _options.Axes))
                VolumeCopy.ChunkByChunk(staged, Final with { RootPath = writing }, _options);
            File.Move(writing, Final.RootPath);
            FinishInterruptedCommit(Final);   // a kill from here on is finished by the next IsCommitted
        }
        _committed = true;
    }

    /// <summary>Closes the staged volume; a rerun resumes it.</summary>
    public void Dispose()
    {
        if (_committed) return;
        Volume.Dispose();
        _committed = true;
    }

    private static bool Matches(VolumeInfo info, VolumeCreateOptions options) =>
        info.Axes.Equals(options.Axes) && info.DataType == options.DataType && info.Shape.SequenceEqual(options.Shape);

    private static void DeleteRoot(VolumeAddress a)
    {
        if (Directory.Exists(a.RootPath)) Directory.Delete(a.RootPath, recursive: true);
        else if (File.Exists(a.RootPath)) File.Delete(a.RootPath);
        string sidecar = ManifestPathFor(a);
        if (a.Format == VolumeFormat.Hdf5 && File.Exists(sidecar)) File.Delete(sidecar);
    }
}
