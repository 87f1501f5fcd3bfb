using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using PureHDF;
using PureHDF.VOL.Native;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// Read-only access to the groups, small datasets and attributes of any HDF5 file (an ilastik project, a vigra
/// random forest), through the managed reader PureHDF. Whole datasets are read at once, flattened in C order and
/// widened here to the type asked for (PureHDF reads only the stored width); this is for metadata and models, not
/// for images (<see cref="Hdf5Volume"/>).
/// <para>
/// Paths are absolute or relative to the root ("/FeatureSelections/Scales" = "FeatureSelections/Scales"; "/" is
/// the root group). Every failure is a <see cref="VolumeException"/> whose location is "file: /path". Strings are
/// decoded as UTF-8 whatever their declared character set (ilastik stores UTF-8 "σ" in strings tagged ASCII) and
/// end at their first NUL. Numbers may be stored in either byte order: PureHDF refuses big-endian data, so those
/// datasets are read as raw bytes and swapped here (attributes cannot be read raw: a big-endian attribute is an
/// error).
/// </para>
/// <para>
/// Thread-safe without a lock: PureHDF reads one open file from several threads at once (positional reads, no
/// shared cursor), and the groups resolved so far are kept in a concurrent dictionary, so an instance may be shared
/// between threads. Dispose it only when no call is running.
/// </para>
/// </summary>
internal sealed class Hdf5File : IDisposable
{
    /// <summary>The start of PureHDF's refusal of data not in the host's (little-endian) byte order.</summary>
    private const string ByteOrderRefusal = "Byte order conversion";

    private volatile NativeFile? file;

    /// <summary>
    /// The groups resolved so far, by path without empty links. PureHDF resolves every path from its start and
    /// re-reads each group on the way (about 0.1 ms a level), so lookups start from here instead.
    /// </summary>
    private readonly ConcurrentDictionary<string, IH5Group> groups = new(StringComparer.Ordinal);

    private Hdf5File(string filePath, NativeFile file)
    {
        FilePath = filePath;
        this.file = file;
    }

    public string FilePath { get; }

    /// <summary>Opens <paramref name="filePath"/> read-only; a <see cref="VolumeException"/> when it is missing or not HDF5.</summary>
    public static Hdf5File Open(string filePath) => new(filePath, PureHdf.OpenRead(filePath));

    // ---- structure ------------------------------------------------------------------------------------

    /// <summary>True when an object (group, dataset or named datatype) exists at <paramref name="path"/>.</summary>
    public bool Exists(string path) => Find(Name(path)) is not null;

    /// <summary>True when <paramref name="path"/> is a group (false when it is a dataset or absent).</summary>
    public bool IsGroup(string path) => Find(Name(path)) is IH5Group;

    /// <summary>The names of the links in group <paramref name="groupPath"/>, sorted ordinally.</summary>
    public IReadOnlyList<string> Children(string groupPath)
    {
        string name = Name(groupPath);
        var found = Find(name);
        if (found is not IH5Group group)
            throw new VolumeException(Location(name), found is null ? "no such group" : "is a dataset, not a group");
        List<string> names;
        try
        {
            names = group.Children().Select(child => child.Name).ToList();
        }
        catch (Exception e) when (IsReadFailure(e))
        {
            throw new VolumeException(Location(name), $"cannot list group: {e.Message}", e);
        }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>The dimensions of dataset <paramref name="datasetPath"/>, slowest first; empty for a scalar.</summary>
    public long[] Shape(string datasetPath) => WithDataset(datasetPath, (dataset, _) =>
        dataset.Space.Type == H5DataspaceType.Simple ? Array.ConvertAll(dataset.Space.Dimensions, d => checked((long)d)) : []);

    // ---- datasets -------------------------------------------------------------------------------------

    /// <summary>An integer or floating-point dataset as doubles.</summary>
    public double[] ReadDoubles(string datasetPath) => WithDataset(datasetPath, (dataset, location) => ToDoubles(new Source(dataset), location));

    /// <summary>An integer dataset as int64 (uint64 values above <see cref="long.MaxValue"/> are an error).</summary>
    public long[] ReadInt64s(string datasetPath) => WithDataset(datasetPath, (dataset, location) => ReadIntegers(new Source(dataset), location));

    /// <summary>An integer dataset as int32; values out of range are an error, not clipped.</summary>
    public int[] ReadInt32s(string datasetPath) => Narrow(datasetPath, ReadInt64s(datasetPath), int.MinValue, int.MaxValue, "int32", v => (int)v);

    /// <summary>An integer dataset as uint32; values out of range are an error, not clipped.</summary>
    public uint[] ReadUInt32s(string datasetPath) => Narrow(datasetPath, ReadInt64s(datasetPath), uint.MinValue, uint.MaxValue, "uint32", v => (uint)v);

    /// <summary>
    /// A boolean dataset: h5py's bool (an HDF5 enum FALSE = 0, TRUE = 1 over int8) or any integer type;
    /// nonzero is true.
    /// </summary>
    public bool[] ReadBools(string datasetPath) => WithDataset(datasetPath, (dataset, location) =>
    {
        var source = new Source(dataset);
        var type = dataset.Type;
        if (type.Class == H5DataTypeClass.FixedPoint)
            return Array.ConvertAll(ReadIntegers(source, location), v => v != 0);
        if (type.Class != H5DataTypeClass.Enumerated || type.Size != 1) throw WrongClass(location, type, "booleans (a 1-byte enum or an integer type)");
        // A 1-byte enum read raw: the stored values themselves, whatever the members are called.
        return Array.ConvertAll(source.Read<byte>(), b => b != 0);
    });

    /// <summary>A string dataset (fixed or variable length, scalar or any rank), flattened in C order.</summary>
    public string[] ReadStrings(string datasetPath) => WithDataset(datasetPath, (dataset, location) =>
    {
        if (!IsString(dataset.Type)) throw WrongClass(location, dataset.Type, "strings");
        if (Count(dataset.Space) == 0) return [];
        // PureHDF decodes every string as UTF-8 and strips the padding its type declares.
        return Array.ConvertAll(dataset.Read<string[]>(), s => s is null ? "" : UpToNul(s));
    });

    /// <summary>A dataset holding exactly one string (ilastik's scalar <c>/ilastikVersion</c>).</summary>
    public string ReadString(string datasetPath)
    {
        string[] values = ReadStrings(datasetPath);
        if (values.Length != 1)
            throw new VolumeException(Location(Name(datasetPath)), $"holds {values.Length} strings; expected a single string");
        return values[0];
    }

    // ---- attributes -----------------------------------------------------------------------------------

    /// <summary>True when the object at <paramref name="path"/> has attribute <paramref name="name"/>; the object must exist.</summary>
    public bool HasAttribute(string path, string name) => WithObject(path, obj => obj.AttributeExists(name));

    /// <summary>A numeric attribute holding one value (scalar or length 1), e.g. vigra_random_forest_version.</summary>
    public double ReadAttributeDouble(string path, string name) => WithObject(path, obj =>
    {
        string location = $"{Location(Name(path))} attribute {name}";
        if (!obj.AttributeExists(name)) throw new VolumeException(location, "no such attribute");
        var attribute = obj.Attribute(name);
        if (attribute.Type.Class is not (H5DataTypeClass.FixedPoint or H5DataTypeClass.FloatingPoint)) throw WrongClass(location, attribute.Type, "a number");
        long count = Count(attribute.Space);
        if (count != 1) throw new VolumeException(location, $"holds {count} values; expected one");
        return ToDoubles(new Source(attribute), location)[0];
    });

    /// <summary>A string attribute (its first element); null when absent or not a string.</summary>
    public string? ReadAttributeString(string path, string name) => WithObject(path, obj =>
    {
        if (!obj.AttributeExists(name)) return null;
        var attribute = obj.Attribute(name);
        if (!IsString(attribute.Type) || Count(attribute.Space) < 1) return null;
        return attribute.Read<string[]>()[0] is { } text ? UpToNul(text) : null;
    });

    // ---- plumbing -------------------------------------------------------------------------------------

    /// <summary>"/" for the root, else the path without leading or trailing slashes.</summary>
    private static string Name(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string name = path.Trim('/');
        return name.Length == 0 ? "/" : name;
    }

    private string Location(string name) => $"{FilePath}: {(name == "/" ? "/" : "/" + name)}";

    private NativeFile Handle() => file ?? throw new ObjectDisposedException(nameof(Hdf5File), $"{FilePath} is closed");

    /// <summary>
    /// The group, dataset or named datatype at <paramref name="name"/> (soft links followed); null when a link along
    /// the path is missing, goes through a dataset, dangles or cannot be resolved. Like libhdf5, "a//b" is "a/b".
    /// </summary>
    private IH5Object? Find(string name)
    {
        var h5 = Handle();
        if (name == "/") return h5;
        IH5Object current = h5;
        string path = "";
        foreach (string link in name.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (current is not IH5Group parent) return null;
            path = path.Length == 0 ? link : $"{path}/{link}";
            if (groups.TryGetValue(path, out var known))
            {
                current = known;
                continue;
            }
            var child = Child(parent, link);
            if (child is null) return null;
            current = child is IH5Group group ? groups.GetOrAdd(path, group) : child;
        }
        return current;
    }

    /// <summary>The object that link <paramref name="link"/> of <paramref name="group"/> leads to; null as in <see cref="Find"/>.</summary>
    private static IH5Object? Child(IH5Group group, string link)
    {
        try
        {
            return group.LinkExists(link) && group.Get(link) is var obj and not IH5UnresolvedLink ? obj : null;
        }
        catch (Exception e) when (IsReadFailure(e))
        {
            return null;
        }
    }

    private T WithDataset<T>(string datasetPath, Func<IH5Dataset, string, T> read)
    {
        string name = Name(datasetPath);
        string location = Location(name);
        var found = Find(name);
        if (found is not IH5Dataset dataset)
            throw new VolumeException(location, found is null ? "no such dataset" : "is a group, not a dataset");
        try
        {
            return read(dataset, location);
        }
        catch (Exception e) when (IsReadFailure(e))
        {
            throw new VolumeException(location, $"reading failed: {e.Message}", e);
        }
    }

    private T WithObject<T>(string path, Func<IH5Object, T> use)
    {
        string name = Name(path);
        string location = Location(name);
        var obj = Find(name) ?? throw new VolumeException(location, "no such group or dataset");
        try
        {
            return use(obj);
        }
        catch (Exception e) when (IsReadFailure(e))
        {
            throw new VolumeException(location, $"reading attributes failed: {e.Message}", e);
        }
    }

    /// <summary>A failure of PureHDF or of the file (PureHDF throws plain <see cref="Exception"/>s), not one of ours.</summary>
    private static bool IsReadFailure(Exception e) => e is not (VolumeException or ObjectDisposedException or OutOfMemoryException);

    /// <summary>A dataset or an attribute: what the number readers need from either.</summary>
    private readonly struct Source
    {
        private readonly IH5Dataset? dataset;
        private readonly IH5Attribute? attribute;

        public Source(IH5Dataset dataset) => this.dataset = dataset;
        public Source(IH5Attribute attribute) => this.attribute = attribute;

        public IH5DataType Type => dataset?.Type ?? attribute!.Type;

        /// <summary>All values, stored as <typeparamref name="T"/> (same width; PureHDF does not convert).</summary>
        public T[] Read<T>() where T : unmanaged
        {
            long count = Count(dataset?.Space ?? attribute!.Space);
            if (count == 0) return [];   // PureHDF refuses to read a null dataspace (h5py.Empty)
            if (attribute is not null) return attribute.Read<T[]>();
            try
            {
                return dataset!.Read<T[]>();
            }
            catch (Exception e) when (e.Message.StartsWith(ByteOrderRefusal, StringComparison.Ordinal))
            {
                // Big-endian: PureHDF still hands out the stored bytes; reverse each element into host order.
                int size = Unsafe.SizeOf<T>();
                var raw = new byte[checked(count * size)];
                dataset!.Read(raw);
                for (int i = 0; i < raw.Length; i += size)
                    raw.AsSpan(i, size).Reverse();
                return MemoryMarshal.Cast<byte, T>(raw).ToArray();
            }
        }
    }

    private static double[] ToDoubles(Source source, string location)
    {
        var type = source.Type;
        return type.Class switch
        {
            H5DataTypeClass.FixedPoint when type.Size == 8 && !type.FixedPoint.IsSigned => Array.ConvertAll(source.Read<ulong>(), v => (double)v),
            H5DataTypeClass.FixedPoint => Array.ConvertAll(ReadIntegers(source, location), v => (double)v),
            H5DataTypeClass.FloatingPoint => type.Size switch
            {
                8 => source.Read<double>(),
                4 => Array.ConvertAll(source.Read<float>(), v => (double)v),
                2 => Array.ConvertAll(source.Read<Half>(), v => (double)v),
                _ => throw new VolumeException(location, $"holds {type.Size}-byte floats; only 2-, 4- and 8-byte floats are supported"),
            },
            _ => throw WrongClass(location, type, "numbers"),
        };
    }

    private static long[] ReadIntegers(Source source, string location)
    {
        var type = source.Type;
        if (type.Class != H5DataTypeClass.FixedPoint) throw WrongClass(location, type, "integers");
        bool signed = type.FixedPoint.IsSigned;
        switch (type.Size)
        {
            case 1: return signed ? Array.ConvertAll(source.Read<sbyte>(), v => (long)v) : Array.ConvertAll(source.Read<byte>(), v => (long)v);
            case 2: return signed ? Array.ConvertAll(source.Read<short>(), v => (long)v) : Array.ConvertAll(source.Read<ushort>(), v => (long)v);
            case 4: return signed ? Array.ConvertAll(source.Read<int>(), v => (long)v) : Array.ConvertAll(source.Read<uint>(), v => (long)v);
            case 8 when signed: return source.Read<long>();
            case 8:
                ulong[] unsigned = source.Read<ulong>();
                int big = Array.FindIndex(unsigned, v => v > long.MaxValue);
                if (big >= 0) throw new VolumeException(location, $"value {unsigned[big]} at index {big} does not fit int64");
                return Array.ConvertAll(unsigned, v => (long)v);
            default:
                throw new VolumeException(location, $"holds {type.Size}-byte integers; only 1-, 2-, 4- and 8-byte integers are supported");
        }
    }

    private T[] Narrow<T>(string datasetPath, long[] values, long min, long max, string typeName, Converter<long, T> convert)
    {
        int bad = Array.FindIndex(values, v => v < min || v > max);
        if (bad >= 0)
            throw new VolumeException(Location(Name(datasetPath)), $"value {values[bad]} at index {bad} does not fit {typeName}");
        return Array.ConvertAll(values, convert);
    }

    /// <summary>
    /// Fixed-length strings, and variable-length strings (a variable-length sequence of single bytes: PureHDF does not
    /// say whether one is a string, and refuses to decode a true byte sequence as text).
    /// </summary>
    private static bool IsString(IH5DataType type) =>
        type.Class == H5DataTypeClass.String ||
        type.Class == H5DataTypeClass.VariableLength && type.VariableLength.BaseType is { Class: H5DataTypeClass.FixedPoint, Size: 1 };

    /// <summary>The text before the first NUL, as C strings (and libhdf5) end.</summary>
    private static string UpToNul(string text)
    {
        int end = text.IndexOf('\0');
        return end < 0 ? text : text[..end];
    }

    private static long Count(IH5Dataspace space) => space.Type switch
    {
        H5DataspaceType.Null => 0,
        H5DataspaceType.Scalar => 1,
        _ => space.Dimensions.Aggregate(1L, (n, d) => checked(n * (long)d)),
    };

    private static VolumeException WrongClass(string location, IH5DataType type, string expected)
    {
        string className = IsString(type) ? "string" : type.Class switch
        {
            H5DataTypeClass.FixedPoint => "integer",
            H5DataTypeClass.FloatingPoint => "float",
            H5DataTypeClass.Time => "time",
            H5DataTypeClass.BitField => "bitfield",
            H5DataTypeClass.Opaque => "opaque",
            H5DataTypeClass.Compound => "compound",
            H5DataTypeClass.Reference => "reference",
            H5DataTypeClass.Enumerated => "enum",
            H5DataTypeClass.VariableLength => "variable-length",
            H5DataTypeClass.Array => "array",
            var other => other.ToString(),
        };
        return new VolumeException(location, $"holds {type.Size}-byte {className} values; expected {expected}");
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref file, null)?.Dispose();
        groups.Clear();
    }

    public override string ToString() => FilePath;
}
