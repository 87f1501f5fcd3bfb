namespace ChunkSeg.Storage;

/// <summary>
/// Where a volume lives, as written on the command line:
/// <list type="bullet">
/// <item><c>path/to/x.zarr</c>: a Zarr v2 or v3 array or an OME-Zarr image (level 0 is read); a directory without the
/// suffix is recognised as Zarr by its zarr.json, .zarray or .zgroup;</item>
/// <item><c>path/to/x.zarr/1</c> or <c>x.zarr/labels/cells</c>: a level or sub-array inside the store;</item>
/// <item><c>path/to/x.h5/internal/path</c>: a dataset in an HDF5 file (ilastik's convention; also .hdf5, .hdf, .ilp);</item>
/// <item><c>path/to/x.tif</c> (.tiff, .btf, .ome.tif): a TIFF file; <c>path/to/slices/*.tif</c> or a folder of TIFF
/// files (and nothing that looks like Zarr): one volume, files in natural name order.</item>
/// <item><c>path/to/x.n5/dataset/path</c>: a dataset in an N5 container (read-only); also a folder without the suffix
/// whose attributes.json (or a parent's, up to the one that says "n5": version) marks it as N5.</item>
/// </list>
/// </summary>
public sealed record VolumeAddress(VolumeFormat Format, string RootPath, string InnerPath)
{
    private static readonly string[] Hdf5Extensions = [".h5", ".hdf5", ".hdf", ".ilp"];
    private static readonly string[] TiffExtensions = [".tif", ".tiff", ".btf", ".tf8"];

    /// <summary>Whether <paramref name="path"/> ends in a TIFF extension (.tif, .tiff, .btf, .tf8).</summary>
    public static bool IsTiffFileName(string path) => TiffExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());

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
            VolumeFormat? format = ext == ".zarr" ? VolumeFormat.Zarr : Hdf5Extensions.Contains(ext) ? VolumeFormat.Hdf5
                : TiffExtensions.Contains(ext) ? VolumeFormat.Tiff : ext == ".n5" ? VolumeFormat.N5 : null;
            if (format is null) continue;
            if (format == VolumeFormat.Tiff && i != parts.Length - 1)
                throw new ArgumentException($"\"{text}\": a TIFF file has no inner paths (\"{parts[i]}\" is followed by \"{string.Join('/', parts[(i + 1)..])}\")");
            string root = string.Join('/', parts[..(i + 1)]);
            string inner = string.Join('/', parts[(i + 1)..]);
            return new VolumeAddress(format.Value, root.Length == 0 ? "/" : root, inner);
        }
        // A Zarr store without the .zarr suffix is still recognised by its metadata files.
        if (Directory.Exists(normalized) &&
            (File.Exists(Path.Combine(normalized, "zarr.json")) || File.Exists(Path.Combine(normalized, ".zarray")) ||
             File.Exists(Path.Combine(normalized, ".zgroup"))))
            return new VolumeAddress(VolumeFormat.Zarr, normalized, "");
        // An N5 container or dataset without the .n5 suffix: attributes.json marks it.
        if (Directory.Exists(normalized) && File.Exists(Path.Combine(normalized, "attributes.json")))
            return N5Address(normalized);
        // A folder of TIFF files is one volume (slices in name order).
        if (Directory.Exists(normalized) && Directory.EnumerateFiles(normalized).Any(IsTiffFileName))
            return new VolumeAddress(VolumeFormat.Tiff, normalized, "");
        throw new ArgumentException(
            $"\"{text}\" is not a volume address: expected a Zarr store (path ending in .zarr, optionally followed by /level), " +
            "an HDF5 dataset (file.h5/internal/path), " +
            "TIFF (file.tif, a folder of .tif files, or a glob such as slices/*.tif), " +
            "or an N5 dataset (container.n5/dataset/path)");
    }

    /// <summary>
    /// The container root is the topmost folder at or above <paramref name="dir"/>, through an unbroken line of
    /// attributes.json files, whose attributes.json has the "n5" version key (N5 writes it at the root; zarr-python
    /// writes it in every group); without one, <paramref name="dir"/> itself.
    /// </summary>
    private static VolumeAddress N5Address(string dir)
    {
        string full = Path.GetFullPath(dir);
        string? root = null;
        for (string? d = full; d is not null && File.Exists(Path.Combine(d, "attributes.json")); d = Path.GetDirectoryName(d))
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(d, "attributes.json")));
                if (doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("n5", out _))
                    root = d;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
            {
                break;   // N5Volume.Open names the file and the problem
            }
        }
        if (root is null) return new VolumeAddress(VolumeFormat.N5, dir, "");
        string inner = Path.GetRelativePath(root, full).Replace('\\', '/');
        return new VolumeAddress(VolumeFormat.N5, root, inner == "." ? "" : inner);
    }
}
