using System.Reflection;
using ChunkSeg.Contracts.Errors;
using PureHDF;
using PureHDF.VOL.Native;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// What ChunkSeg needs of PureHDF beyond its public API, in one place: opening a file with ChunkSeg's errors, finding
/// datasets, and the two facts PureHDF 2.2.0 reads but does not publish, a dataset's filter pipeline and its byte order
/// (from its internal <c>InternalFilterPipeline</c> and <c>InternalDataType</c> messages, pinned to that version;
/// the tests read both on h5py's files, so a PureHDF upgrade that renames them fails there, not in a user's run).
/// </summary>
internal static class PureHdf
{
    private const BindingFlags Internal = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
    private const int MaxListed = 20;

    /// <summary>One filter of a dataset's pipeline: HDF5 filter id, name as stored, client data.</summary>
    public readonly record struct Filter(int Id, string Name, uint[] ClientData);

    /// <summary>The filters PureHDF decodes (deflate, shuffle, fletcher32; others need a registered IH5Filter).</summary>
    public static readonly int[] ReadableFilters = [1, 2, 3];

    /// <summary>Opens <paramref name="filePath"/> for reading; a <see cref="VolumeException"/> when it is missing, not HDF5 or unreadable.</summary>
    public static NativeFile OpenRead(string filePath)
    {
        if (!File.Exists(filePath))
            throw new VolumeException(filePath, Directory.Exists(filePath) ? "is a directory, not an HDF5 file" : "file not found");
        if (!HasHdf5Signature(filePath))
            throw new VolumeException(filePath, "is not an HDF5 file (no HDF5 signature found)");
        try
        {
            // Others may read, write or delete the file meanwhile: HDF5 readers take no lock on it either.
            return H5File.Open(filePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(filePath, $"cannot read the file: {e.Message}", e);
        }
        catch (Exception e) when (e is not ChunkSegException)
        {
            throw new VolumeException(filePath, $"cannot open: {e.Message}", e);
        }
    }

    /// <summary>
    /// The superblock signature sits at offset 0 or after a user block of 512, 1024, 2048, ... bytes.
    /// (A user block of ilastik or MATLAB files puts it further in.)
    /// </summary>
    public static bool HasHdf5Signature(string filePath)
    {
        ReadOnlySpan<byte> signature = [0x89, (byte)'H', (byte)'D', (byte)'F', (byte)'\r', (byte)'\n', 0x1a, (byte)'\n'];
        try
        {
            using var stream = new FileStream(filePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Span<byte> head = stackalloc byte[8];
            for (long offset = 0; offset + 8 <= stream.Length; offset = offset == 0 ? 512 : offset * 2)
            {
                stream.Position = offset;
                stream.ReadExactly(head);
                if (head.SequenceEqual(signature)) return true;
            }
            return false;
        }
        catch (IOException e)
        {
            throw new VolumeException(filePath, $"cannot read the file: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new VolumeException(filePath, $"cannot read the file: {e.Message}", e);
        }
    }

    /// <summary>Paths of all datasets under <paramref name="group"/>, in name order.</summary>
    public static List<string> ListDatasets(IH5Group group, string prefix = "")
    {
        var found = new List<string>();
        foreach (var child in group.Children().OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            string path = prefix.Length == 0 ? child.Name : $"{prefix}/{child.Name}";
            if (child is IH5Dataset) found.Add(path);
            else if (child is IH5Group inner) found.AddRange(ListDatasets(inner, path));
        }
        return found;
    }

    /// <summary>The dataset to open: the one named, or the file's only dataset when none is named.</summary>
    public static string ResolveDatasetPath(NativeFile file, string filePath, string datasetPath)
    {
        string name = datasetPath.Trim('/');
        if (name.Length == 0)
        {
            var all = ListDatasets(file);
            var atRoot = all.Where(d => !d.Contains('/')).ToList();
            if (atRoot.Count == 1) return atRoot[0];
            if (all.Count == 1) return all[0];
            throw new VolumeException(filePath, all.Count == 0
                ? "holds no datasets"
                : $"holds {all.Count} datasets ({Listing(all)}); name one, e.g. {filePath}/{all[0]}");
        }
        IH5Object? found = Find(file, name);
        if (found is IH5Dataset) return name;
        var datasets = ListDatasets(file);
        string what = found is null ? "no such dataset" : "is not a dataset (a group?)";
        throw new VolumeException($"{filePath}/{name}", datasets.Count == 0
            ? $"{what}; the file holds no datasets"
            : $"{what}; the file holds: {Listing(datasets)}");
    }

    /// <summary>The object at <paramref name="path"/>, or null when a link along it is missing or dangling.</summary>
    public static IH5Object? Find(IH5Group root, string path)
    {
        IH5Group group = root;
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            if (!group.LinkExists(parts[i])) return null;
            IH5Object next;
            try
            {
                next = group.Get(parts[i]);
            }
            catch (Exception e) when (e is not ChunkSegException)
            {
                return null;   // a dangling soft or external link
            }
            if (i == parts.Length - 1) return next;
            if (next is not IH5Group inner) return null;
            group = inner;
        }
        return root;
    }

    private static string Listing(List<string> names) =>
        names.Count <= MaxListed ? string.Join(", ", names) : string.Join(", ", names.Take(MaxListed)) + $", ... ({names.Count} in all)";

    /// <summary>The dataset's filter pipeline, in order (empty when unfiltered).</summary>
    public static IReadOnlyList<Filter> Filters(NativeDataset dataset)
    {
        object? pipeline = InternalValue(dataset, "InternalFilterPipeline");
        if (pipeline is null) return [];
        var descriptions = (System.Collections.IEnumerable)InternalValue(pipeline, "FilterDescriptions")!;
        var filters = new List<Filter>();
        foreach (object d in descriptions)
        {
            int id = Convert.ToInt32(InternalValue(d, "Identifier"));
            string name = InternalValue(d, "Name") as string ?? "";
            uint[] data = InternalValue(d, "ClientData") as uint[] ?? [];
            filters.Add(new Filter(id, name, data));
        }
        return filters;
    }

    /// <summary>True when the dataset's numbers are stored big-endian (PureHDF does not convert them).</summary>
    public static bool IsBigEndian(NativeDataset dataset)
    {
        object? bitField = InternalValue(InternalValue(dataset, "InternalDataType")!, "BitField");
        return bitField?.GetType().GetProperty("ByteOrder", Internal)?.GetValue(bitField)?.ToString() == "BigEndian";
    }

    private static object? InternalValue(object owner, string property)
    {
        var info = owner.GetType().GetProperty(property, Internal)
            ?? throw new InvalidOperationException($"PureHDF's {owner.GetType().Name} has no {property}: this code reads PureHDF 2.2.0's internals; pin that version");
        return info.GetValue(owner);
    }

    /// <summary>A filter in words, as HDF5's tools name it ("gzip(level 4)", "shuffle", "lzf").</summary>
    public static string Describe(Filter f) => f.Id switch
    {
        1 => f.ClientData.Length >= 1 ? $"gzip(level {f.ClientData[0]})" : "gzip",
        2 => "shuffle",
        3 => "fletcher32",
        4 => "szip",
        5 => "nbit",
        6 => "scaleoffset",
        32000 => "lzf",
        32001 => "blosc",
        307 => "bzip2",
        32004 => "lz4",
        32015 => "zstd",
        32008 => "bitshuffle",
        _ => f.Name.Length > 0 ? $"filter {f.Id} ({f.Name})" : $"filter {f.Id}",
    };
}
