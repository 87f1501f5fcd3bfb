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
/// records it. A partial HDF5 file resumes only when it was closed cleanly (a failed run): libhdf5 keeps data
/// and metadata in its caches, so a file whose process was killed may lack chunks the manifest records, or
/// be torn; without the <see cref="ClosedMarkerSuffix"/> file beside it, it is started again.
/// </summary>
public sealed class StagedOutput : IDisposable
{
    public const string PartialSuffix = ".partial";
    public const string ClosedMarkerSuffix = ".closed";
    private bool _committed;

    private StagedOutput(VolumeAddress final, VolumeAddress staging, IVolume volume, bool resumed)
    {
        Final = final;
        Staging = staging;
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

    /// <summary>Where the manifest of a committed output lives (it moved with the data).</summary>
    public string FinalManifestPath => ManifestPathFor(Final);

    /// <summary>Where the manifest of an output at <paramref name="a"/> lives: inside a Zarr store, beside an HDF5 file.</summary>
    public static string ManifestPathFor(VolumeAddress a) => a.Format == VolumeFormat.Zarr
        ? Path.Combine(a.RootPath, ".chunkseg", "manifest.jsonl")
        : a.RootPath + ".chunkseg-manifest.jsonl";

    /// <summary>True when <paramref name="final"/> exists, i.e. a job committed it.</summary>
    public static bool IsCommitted(VolumeAddress final) => Directory.Exists(final.RootPath) || File.Exists(final.RootPath);

    /// <summary>
    /// Opens the staged output for <paramref name="final"/>: reopens a compatible partial one (resume) or
    /// creates it. A committed output at <paramref name="final"/> is an error unless <paramref name="overwrite"/>.
    /// </summary>
    public static StagedOutput Begin(VolumeAddress final, VolumeCreateOptions options, bool overwrite)
    {
        var staging = final with { RootPath = final.RootPath + PartialSuffix };
        if (IsCommitted(final))
        {
            if (!overwrite)
                throw new UsageException($"{final.RootPath}: output already exists; pass --overwrite to replace it");
            DeleteRoot(final);
        }
        string closedMarker = staging.RootPath + ClosedMarkerSuffix;
        if (overwrite || (staging.Format == VolumeFormat.Hdf5 && !File.Exists(closedMarker)))
        {
            if (IsCommitted(staging)) DeleteRoot(staging);
        }
        if (File.Exists(closedMarker)) File.Delete(closedMarker);   // open for writing again: no longer cleanly closed

        if (IsCommitted(staging))
        {
            IVolume? existing = null;
            try
            {
                existing = VolumeStore.Open(staging, options.Axes, writable: true);
                if (Matches(existing.Info, options))
                    return new StagedOutput(final, staging, existing, resumed: true);
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
        return new StagedOutput(final, staging, VolumeStore.Create(staging, options), resumed: false);
    }

    /// <summary>Flushes and closes the staged volume, then renames it to the final name.</summary>
    public void Commit()
    {
        Volume.Flush();
        Volume.Dispose();
        if (Final.Format == VolumeFormat.Zarr)
        {
            Directory.Move(Staging.RootPath, Final.RootPath);
        }
        else
        {
            File.Move(Staging.RootPath, Final.RootPath);
            if (File.Exists(ManifestPath)) File.Move(ManifestPath, FinalManifestPath, overwrite: true);
        }
        _committed = true;
    }

    /// <summary>Closes the staged volume; an uncommitted HDF5 file is then marked as cleanly closed, so a rerun may resume it.</summary>
    public void Dispose()
    {
        if (_committed) return;
        Volume.Dispose();
        _committed = true;
        if (Staging.Format == VolumeFormat.Hdf5 && File.Exists(Staging.RootPath))
            File.WriteAllBytes(Staging.RootPath + ClosedMarkerSuffix, []);
    }

    private static bool Matches(VolumeInfo info, VolumeCreateOptions options) =>
        info.Axes.Equals(options.Axes) && info.DataType == options.DataType && info.Shape.SequenceEqual(options.Shape);

    private static void DeleteRoot(VolumeAddress a)
    {
        if (Directory.Exists(a.RootPath)) Directory.Delete(a.RootPath, recursive: true);
        else if (File.Exists(a.RootPath)) File.Delete(a.RootPath);
        string sidecar = ManifestPathFor(a);
        if (a.Format == VolumeFormat.Hdf5 && File.Exists(sidecar)) File.Delete(sidecar);
        if (File.Exists(a.RootPath + ClosedMarkerSuffix)) File.Delete(a.RootPath + ClosedMarkerSuffix);
    }
}
