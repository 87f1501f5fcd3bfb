using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Zarr;

/// <summary>One level of a multiscale OME-Zarr image: its array's path in the image group and its NGFF transformations (z, y, x).</summary>
public sealed record OmeLevel(string Path, VoxelSize Scale, (double Z, double Y, double X) Translation);

/// <summary>
/// How a pyramid's levels were made: the multiscale's "type" and the "description" of its "metadata" (the NGFF schemas'
/// strict_image requires both; the spec: the type and details of the downscaling method).
/// </summary>
public sealed record OmeDownscaling(string Type, string Description);

/// <summary>
/// The levels of a multiscale OME-Zarr image beside its level "0": sibling arrays "1", "2", … in the image group, and
/// the group's multiscales rewritten to list them all (OME-NGFF 0.4 .zattrs on Zarr v2, 0.5 zarr.json on Zarr v3).
/// The pipeline decides what goes in the levels (src/Pipelines/PyramidPasses.cs); this is only where they live.
/// </summary>
public static class OmePyramid
{
    /// <summary>The image group of an OME-Zarr level-0 volume (made by <see cref="VolumeStore.Create"/> in OME order).</summary>
    public static string ImageDirectory(IVolume level0)
    {
        string location = Path.TrimEndingDirectorySeparator(level0.Info.Location);
        if (level0.Info.Format != VolumeFormat.Zarr || Path.GetFileName(location) != "0")
            throw new VolumeException(level0.Info.Location, "is not level \"0\" of an OME-Zarr image; pyramids are written into OME-Zarr images only");
        return Path.GetDirectoryName(location)!;
    }

    /// <summary>
    /// Opens level <paramref name="level"/> of the image for writing, or creates it as <paramref name="options"/> say. A level
    /// left by an interrupted run is reopened when its shape and type match (its chunks resume), else made anew.
    /// </summary>
    public static IVolume CreateOrOpenLevel(string imageDirectory, int level, VolumeCreateOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(level);
        string path = Path.Combine(imageDirectory, level.ToString(System.Globalization.CultureInfo.InvariantCulture));
        bool hasMeta = File.Exists(Path.Combine(path, ".zarray")) || File.Exists(Path.Combine(path, "zarr.json"));
        if (hasMeta)
        {
            var existing = ZarrVolume.Open(path, "", options.Axes, writable: true);
            if (existing.Info.DataType == options.DataType && existing.Info.Shape.SequenceEqual(options.Shape) &&
                existing.Info.StorageChunks.SequenceEqual(options.Chunks))
                return existing;
            existing.Dispose();
        }
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        return ZarrVolume.CreateLevelArray(path, options);
    }

    /// <summary>Opens level <paramref name="level"/> of the image (read-only).</summary>
    public static IVolume OpenLevel(string imageDirectory, int level, Contracts.Volumes.AxisOrder axes) =>
        ZarrVolume.Open(Path.Combine(imageDirectory, level.ToString(System.Globalization.CultureInfo.InvariantCulture)), "", axes, writable: false);

    /// <summary>
    /// Rewrites the image group's multiscales to list <paramref name="levels"/> (level 0 first) made by
    /// <paramref name="downscaling"/>, atomically; "image-label" stays when <paramref name="level0"/> is a label image.
    /// Writing it again gives the same bytes.
    /// </summary>
    public static void WriteMultiscales(string imageDirectory, VolumeCreateOptions level0, IReadOnlyList<OmeLevel> levels, OmeDownscaling downscaling)
    {
        if (levels.Count == 0 || levels[0].Path != "0")
            throw new ArgumentException("a multiscale image lists level \"0\" first", nameof(levels));
        string name = OmeNgff.ImageName(imageDirectory);
        if (level0.ZarrFormat == 3)
            ZarrVolume.WriteAtomic(Path.Combine(imageDirectory, "zarr.json"), OmeNgff.ImageGroupV3(name, level0, (levels, downscaling)));
        else
            ZarrVolume.WriteAtomic(Path.Combine(imageDirectory, ".zattrs"), OmeNgff.ImageAttributes(name, level0, (levels, downscaling)));
    }
}
