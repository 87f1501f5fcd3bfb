using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Hdf5;
using ChunkSeg.Storage.N5;
using ChunkSeg.Storage.Tiff;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage;

/// <summary>Opens and creates volumes by address; the only place that dispatches on the file format.</summary>
public static class VolumeStore
{
    /// <summary>
    /// When set, every Zarr chunk file is flushed to disk before it is renamed into place. Distributed workers set it:
    /// they answer a chunk to the coordinator only once its output is durable; one machine's runs need not pay for it
    /// (their manifest is rebuilt from the same process's writes).
    /// </summary>
    public static bool SyncWrites { get; set; }

    /// <summary>
    /// Opens an existing volume. <paramref name="axes"/> overrides the file's axis metadata (and is required
    /// to say the order when a dataset has none and its rank is ambiguous).
    /// </summary>
    public static IVolume Open(string address, AxisOrder? axes = null, bool writable = false) =>
        Open(ParseAddress(address), axes, writable);

    public static IVolume Open(VolumeAddress address, AxisOrder? axes = null, bool writable = false) => address.Format switch
    {
        VolumeFormat.Zarr => ZarrVolume.Open(address.RootPath, address.InnerPath, axes, writable),
        VolumeFormat.Hdf5 => Hdf5Volume.Open(address.RootPath, address.InnerPath, axes, writable),
        VolumeFormat.Tiff => TiffVolume.Open(address.RootPath, axes, writable),
        VolumeFormat.N5 => N5Volume.Open(address.RootPath, address.InnerPath, axes, writable),
        _ => throw new ArgumentOutOfRangeException(nameof(address)),
    };

    /// <summary>
    /// Creates a new volume at exactly <paramref name="address"/>. Zarr output is an OME-Zarr image when the axes are in
    /// OME order (t, c, z, y, x), else a plain array: Zarr v2 with OME-NGFF 0.4 by default, Zarr v3 with OME-NGFF 0.5
    /// (sharded when <see cref="VolumeCreateOptions.ShardShape"/> is set) when <see cref="VolumeCreateOptions.ZarrFormat"/>
    /// is 3. HDF5 output is a chunked dataset with ilastik's axistags.
    /// Use <see cref="StagedOutput"/> for outputs of a job, so that unfinished ones are never mistaken for finished.
    /// </summary>
    public static IVolume Create(VolumeAddress address, VolumeCreateOptions options)
    {
        RequireWritableFormat(address);
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{address}: {e.Message}", e);
        }
        return address.Format switch
        {
            // OME-NGFF requires t, c, z, y, x; other orders (a channels-last feature matrix) are written as a plain
            // array that names its axes (v2: _ARRAY_DIMENSIONS, v3: dimension_names).
            VolumeFormat.Zarr when options.Axes.IsOmeOrder => ZarrVolume.Create(address.RootPath, address.InnerPath, options),
            VolumeFormat.Zarr => ZarrVolume.CreateArray(Path.Combine(address.RootPath, address.InnerPath), options),
            VolumeFormat.Hdf5 when options.ZarrFormat != 2 || options.ShardShape is not null =>
                throw new UsageException($"{address}: Zarr format and shards apply to Zarr output only; HDF5 output takes neither"),
            VolumeFormat.Hdf5 => Hdf5Writer.Create(address.RootPath, address.InnerPath, options),
            _ => throw new ArgumentOutOfRangeException(nameof(address)),
        };
    }

    /// <summary>
    /// Throws a <see cref="UsageException"/> when <paramref name="address"/> names TIFF: chunked outputs cannot be TIFF
    /// (pages are sequential); only `chunkseg convert IN OUT.tif` writes it, page by page (<see cref="TiffWriter"/>).
    /// N5 is input only.
    /// </summary>
    public static void RequireWritableFormat(VolumeAddress address)
    {
        if (address.Format == VolumeFormat.N5)
            throw new UsageException($"{address}: ChunkSeg reads N5; write Zarr (out.zarr) or HDF5 (out.h5/data)");
        if (address.Format == VolumeFormat.Tiff)
            throw new UsageException($"{address}: this command cannot write TIFF; write to Zarr (out.zarr) or HDF5 (out.h5/data), then `chunkseg convert OUT out.tif`");
    }

    public static VolumeAddress ParseAddress(string address)
    {
        try
        {
            return VolumeAddress.Parse(address);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message, e);
        }
    }
}
