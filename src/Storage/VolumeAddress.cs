namespace ChunkSeg.Storage;

/// <summary>
/// Where a volume lives, as written on the command line:
/// <list type="bullet">
/// <item><c>path/to/x.zarr</c>: a Zarr v2 array or an OME-Zarr image (level 0 is read);</item>
/// <item><c>path/to/x.zarr/1</c> or <c>x.zarr/labels/cells</c>: a level or sub-array inside the store;</item>
/// <item><c>path/to/x.h5/internal/path</c>: a dataset in an HDF5 file (ilastik's convention; also .hdf5, .hdf, .ilp).</item>
/// </list>
/// </summary>
public sealed record VolumeAddress(VolumeFormat Format, string RootPath, string InnerPath)
{
    private static readonly string[] Hdf5Extensions = [".h5", ".hdf5", ".hdf", ".ilp"];

    public override string ToString() =>
        InnerPath.Length == 0 ? RootPath : $"{RootPath}/{InnerPath}";

    public static VolumeAddress Parse(string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        string normalized = text.Replace('\\', '/').TrimEnd('/');
        string[] parts = normalized.Split('/');
        for (int i = 0; i < parts.Length; i++)
        {
            string ext = Path.GetExtension(parts[i]).ToLowerInvariant();
            VolumeFormat? format = ext == ".zarr" ? VolumeFormat.Zarr : Hdf5Extensions.Contains(ext) ? VolumeFormat.Hdf5 : null;
            if (format is null) continue;
            string root = string.Join('/', parts[..(i + 1)]);
            string inner = string.Join('/', parts[(i + 1)..]);
            return new VolumeAddress(format.Value, root.Length == 0 ? "/" : root, inner);
        }
        // A Zarr store without the .zarr suffix is still recognised by its metadata files.
        if (Directory.Exists(normalized) &&
            (File.Exists(Path.Combine(normalized, ".zarray")) || File.Exists(Path.Combine(normalized, ".zgroup"))))
            return new VolumeAddress(VolumeFormat.Zarr, normalized, "");
        throw new ArgumentException(
            $"\"{text}\" is not a volume address: expected a Zarr store (path ending in .zarr, optionally followed by /level) " +
            "or an HDF5 dataset (file.h5/internal/path)");
    }
}
