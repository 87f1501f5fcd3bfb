using System.Runtime.InteropServices;
using System.Text;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage.Hdf5.Native;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// Read-only access to the groups, small datasets and attributes of any HDF5 file (an ilastik project, a vigra
/// random forest), through <see cref="H5"/>. Whole datasets are read at once, flattened in C order and converted
/// by HDF5 to the native type asked for; this is for metadata and models, not for images (<see cref="Hdf5Volume"/>).
/// <para>
/// Paths are absolute or relative to the root ("/FeatureSelections/Scales" = "FeatureSelections/Scales"; "/" is
/// the root group). Every failure is a <see cref="VolumeException"/> whose location is "file: /path". Strings are
/// decoded as UTF-8 whatever their declared character set (ilastik stores UTF-8 "σ" in strings tagged ASCII).
/// Each call holds <see cref="H5.Gate"/>, so an instance may be shared between threads.
/// </para>
/// </summary>
internal sealed unsafe class Hdf5File : IDisposable
{
    private long file;

    private Hdf5File(string filePath, long file)
    {
        FilePath = filePath;
        this.file = file;
    }

    public string FilePath { get; }

    /// <summary>Opens <paramref name="filePath"/> read-only; a <see cref="VolumeException"/> when it is missing or not HDF5.</summary>
    public static Hdf5File Open(string filePath)
    {
        Hdf5Files.RequireFile(filePath);
        lock (H5.Gate)
        {
            Hdf5Files.Initialize(filePath);
            return new Hdf5File(filePath, Hdf5Files.OpenFile(filePath, writable: false));
        }
    }

    // ---- structure ------------------------------------------------------------------------------------

    /// <summary>True when an object (group or dataset) exists at <paramref name="path"/>.</summary>
    public bool Exists(string path)
    {
        string name = Name(path);
        lock (H5.Gate)
        {
            ThrowIfDisposed();
            return name == "/" || (Hdf5Files.LinkExists(file, name) && Hdf5Files.ObjectType(file, name) >= 0);
        }
    }

    /// <summary>True when <paramref name="path"/> is a group (false when it is a dataset or absent).</summary>
    public bool IsGroup(string path)
    {
        string name = Name(path);
        lock (H5.Gate)
        {
            ThrowIfDisposed();
            return TypeOf(name) == H5.IdGroup;
        }
    }

    /// <summary>The names of the links in group <paramref name="groupPath"/>, sorted ordinally.</summary>
    public IReadOnlyList<string> Children(string groupPath)
    {
        string name = Name(groupPath);
        lock (H5.Gate)
        {
            ThrowIfDisposed();
            int type = TypeOf(name);
            if (type != H5.IdGroup)
                throw new VolumeException(Location(name), type < 0 ? "no such group" : "is a dataset, not a group");
            long group = H5.H5Oopen(file, name, H5.Default);
            if (group < 0) throw new VolumeException(Location(name), $"cannot open group: {H5.TakeErrorStack()}");
            var names = new List<string>();
            var handle = GCHandle.Alloc(names);
            try
            {
                if (H5.H5Literate(group, 0 /* H5_INDEX_NAME */, 0 /* H5_ITER_INC */, null, &Hdf5Files.CollectName, GCHandle.ToIntPtr(handle)) < 0)
                    throw new VolumeException(Location(name), $"cannot list group: {H5.TakeErrorStack()}");
            }
            finally
            {
                handle.Free();
                H5.H5Oclose(group);
            }
            names.Sort(StringComparer.Ordinal);
            return names;
        }
    }

    /// <summary>The dimensions of dataset <paramref name="datasetPath"/>, slowest first; empty for a scalar.</summary>
    public long[] Shape(string datasetPath) => WithDataset(datasetPath, (_, _, space, _) => Dims(space));

    // ---- datasets -------------------------------------------------------------------------------------

    /// <summary>An integer or floating-point dataset as doubles.</summary>
    public double[] ReadDoubles(string datasetPath) => WithDataset(datasetPath, (dataset, type, space, location) =>
    {
        int cls = H5.H5Tget_class(type);
        if (cls is not (H5.ClassInteger or H5.ClassFloat)) throw WrongClass(location, type, "numbers");
        var values = new double[Count(space)];
        fixed (double* p = values)
            H5.Check(H5.H5Dread(dataset, H5.NativeDouble, H5.Default, H5.Default, H5.Default, p), "H5Dread");
        return values;
    });

    /// <summary>An integer dataset as int64 (uint64 values above <see cref="long.MaxValue"/> are an error).</summary>
    public long[] ReadInt64s(string datasetPath) => WithDataset(datasetPath, ReadIntegers);

    /// <summary>An integer dataset as int32; values out of range are an error, not clipped.</summary>
    public int[] ReadInt32s(string datasetPath) => Narrow(datasetPath, ReadInt64s(datasetPath), int.MinValue, int.MaxValue, "int32", v => (int)v);

    /// <summary>An integer dataset as uint32; values out of range are an error, not clipped.</summary>
    public uint[] ReadUInt32s(string datasetPath) => Narrow(datasetPath, ReadInt64s(datasetPath), uint.MinValue, uint.MaxValue, "uint32", v => (uint)v);

    /// <summary>
    /// A boolean dataset: h5py's bool (an HDF5 enum FALSE = 0, TRUE = 1 over int8) or any integer type;
    /// nonzero is true.
    /// </summary>
    public bool[] ReadBools(string datasetPath) => WithDataset(datasetPath, (dataset, type, space, location) =>
    {
        int cls = H5.H5Tget_class(type);
        if (cls == H5.ClassInteger)
            return Array.ConvertAll(ReadIntegers(dataset, type, space, location), v => v != 0);
        if (cls != H5.ClassEnum || H5.H5Tget_size(type) != 1) throw WrongClass(location, type, "booleans (a 1-byte enum or an integer type)");
        // A 1-byte enum read in its own type: no conversion, the stored values themselves.
        long mem = H5.Check(H5.H5Tcopy(type), "H5Tcopy");
        try
        {
            var bytes = new byte[Count(space)];
            fixed (byte* p = bytes)
                H5.Check(H5.H5Dread(dataset, mem, H5.Default, H5.Default, H5.Default, p), "H5Dread");
            return Array.ConvertAll(bytes, b => b != 0);
        }
        finally
        {
            H5.H5Tclose(mem);
        }
    });

    /// <summary>A string dataset (fixed or variable length, scalar or any rank), flattened in C order.</summary>
    public string[] ReadStrings(string datasetPath) => WithDataset(datasetPath, (dataset, type, space, location) =>
    {
        if (H5.H5Tget_class(type) != H5.ClassString) throw WrongClass(location, type, "strings");
        long count = Count(space);
        var result = new string[count];
        if (H5.H5Tis_variable_str(type) > 0)
        {
            long mem = H5.Check(H5.H5Tcopy(H5.CS1), "H5Tcopy");
            var pointers = new IntPtr[count];
            try
            {
                H5.Check(H5.H5Tset_size(mem, H5.Variable), "H5Tset_size");
                H5.Check(H5.H5Tset_cset(mem, H5.H5Tget_cset(type)), "H5Tset_cset");
                fixed (IntPtr* p = pointers)
                {
                    H5.Check(H5.H5Dread(dataset, mem, H5.Default, H5.Default, H5.Default, p), "H5Dread");
                    for (long i = 0; i < count; i++)
                        result[i] = pointers[i] == IntPtr.Zero ? "" : Marshal.PtrToStringUTF8(pointers[i]) ?? "";
                    H5.H5Dvlen_reclaim(mem, space, H5.Default, p);
                }
            }
            finally
            {
                H5.H5Tclose(mem);
            }
            return result;
        }
        // Fixed length: read in the file's own type (no conversion, so a NULLPAD string keeps its last byte),
        // then cut each element at its first NUL (and trailing blanks for SPACEPAD).
        int size = checked((int)H5.H5Tget_size(type));
        bool spacePad = H5.H5Tget_strpad(type) == H5.StrSpacePad;
        long fixedMem = H5.Check(H5.H5Tcopy(type), "H5Tcopy");
        var bytes = new byte[checked(size * count)];
        try
        {
            fixed (byte* p = bytes)
                H5.Check(H5.H5Dread(dataset, fixedMem, H5.Default, H5.Default, H5.Default, p), "H5Dread");
        }
        finally
        {
            H5.H5Tclose(fixedMem);
        }
        for (long i = 0; i < count; i++)
        {
            var element = bytes.AsSpan(checked((int)(i * size)), size);
            int end = element.IndexOf((byte)0);
            if (end >= 0) element = element[..end];
            if (spacePad) element = element.TrimEnd((byte)' ');
            result[i] = Encoding.UTF8.GetString(element);
        }
        return result;
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
    public bool HasAttribute(string path, string name) => WithObject(path, obj => H5.Check(H5.H5Aexists(obj, name), $"H5Aexists({name})") > 0);

    /// <summary>A numeric attribute holding one value (scalar or length 1), e.g. vigra_random_forest_version.</summary>
    public double ReadAttributeDouble(string path, string name) => WithObject(path, obj =>
    {
        string location = $"{Location(Name(path))} attribute {name}";
        if (H5.Check(H5.H5Aexists(obj, name), $"H5Aexists({name})") <= 0) throw new VolumeException(location, "no such attribute");
        long attr = H5.Check(H5.H5Aopen(obj, name, H5.Default), $"H5Aopen({name})");
        long type = -1, space = -1;
        try
        {
            type = H5.Check(H5.H5Aget_type(attr), "H5Aget_type");
            if (H5.H5Tget_class(type) is not (H5.ClassInteger or H5.ClassFloat)) throw WrongClass(location, type, "a number");
            space = H5.Check(H5.H5Aget_space(attr), "H5Aget_space");
            long count = Count(space);
            if (count != 1) throw new VolumeException(location, $"holds {count} values; expected one");
            double value;
            H5.Check(H5.H5Aread(attr, H5.NativeDouble, &value), $"H5Aread({name})");
            return value;
        }
        finally
        {
            if (space >= 0) H5.H5Sclose(space);
            if (type >= 0) H5.H5Tclose(type);
            H5.H5Aclose(attr);
        }
    });

    /// <summary>A string attribute (its first element); null when absent or not a string.</summary>
    public string? ReadAttributeString(string path, string name) => WithObject(path, obj => Hdf5Attributes.ReadString(obj, name));

    // ---- plumbing -------------------------------------------------------------------------------------

    /// <summary>"/" for the root, else the path without leading or trailing slashes.</summary>
    private static string Name(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string name = path.Trim('/');
        return name.Length == 0 ? "/" : name;
    }

    private string Location(string name) => $"{FilePath}: {(name == "/" ? "/" : "/" + name)}";

    private int TypeOf(string name) =>
        name == "/" ? H5.IdGroup : Hdf5Files.LinkExists(file, name) ? Hdf5Files.ObjectType(file, name) : -1;

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(file < 0, this);

    private T WithDataset<T>(string datasetPath, Func<long, long, long, string, T> read)
    {
        string name = Name(datasetPath);
        string location = Location(name);
        lock (H5.Gate)
        {
            ThrowIfDisposed();
            int kind = TypeOf(name);
            if (kind != H5.IdDataset)
                throw new VolumeException(location, kind < 0 ? "no such dataset" : "is a group, not a dataset");
            long dataset = H5.H5Dopen2(file, name, H5.Default);
            if (dataset < 0) throw new VolumeException(location, $"cannot open dataset: {H5.TakeErrorStack()}");
            long type = -1, space = -1;
            try
            {
                type = H5.Check(H5.H5Dget_type(dataset), "H5Dget_type");
                space = H5.Check(H5.H5Dget_space(dataset), "H5Dget_space");
                return read(dataset, type, space, location);
            }
            catch (H5Exception e)
            {
                throw new VolumeException(location, $"reading failed: {e.Message}", e);
            }
            finally
            {
                if (space >= 0) H5.H5Sclose(space);
                if (type >= 0) H5.H5Tclose(type);
                H5.H5Dclose(dataset);
            }
        }
    }

    private T WithObject<T>(string path, Func<long, T> use)
    {
        string name = Name(path);
        string location = Location(name);
        lock (H5.Gate)
        {
            ThrowIfDisposed();
            if (TypeOf(name) < 0) throw new VolumeException(location, "no such group or dataset");
            long obj = H5.H5Oopen(file, name, H5.Default);
            if (obj < 0) throw new VolumeException(location, $"cannot open: {H5.TakeErrorStack()}");
            try
            {
                return use(obj);
            }
            catch (H5Exception e)
            {
                throw new VolumeException(location, $"reading attributes failed: {e.Message}", e);
            }
            finally
            {
                H5.H5Oclose(obj);
            }
        }
    }

    private static long[] ReadIntegers(long dataset, long type, long space, string location)
    {
        if (H5.H5Tget_class(type) != H5.ClassInteger) throw WrongClass(location, type, "integers");
        long count = Count(space);
        if (H5.H5Tget_sign(type) == H5.SignNone && H5.H5Tget_size(type) == 8)
        {
            var unsigned = new ulong[count];
            fixed (ulong* p = unsigned)
                H5.Check(H5.H5Dread(dataset, H5.NativeUInt64, H5.Default, H5.Default, H5.Default, p), "H5Dread");
            int big = Array.FindIndex(unsigned, v => v > long.MaxValue);
            if (big >= 0) throw new VolumeException(location, $"value {unsigned[big]} at index {big} does not fit int64");
            return Array.ConvertAll(unsigned, v => (long)v);
        }
        var values = new long[count];
        fixed (long* p = values)
            H5.Check(H5.H5Dread(dataset, H5.NativeInt64, H5.Default, H5.Default, H5.Default, p), "H5Dread");
        return values;
    }

    private T[] Narrow<T>(string datasetPath, long[] values, long min, long max, string typeName, Converter<long, T> convert)
    {
        int bad = Array.FindIndex(values, v => v < min || v > max);
        if (bad >= 0)
            throw new VolumeException(Location(Name(datasetPath)), $"value {values[bad]} at index {bad} does not fit {typeName}");
        return Array.ConvertAll(values, convert);
    }

    private static long[] Dims(long space)
    {
        int rank = H5.Check(H5.H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims");
        var dims = new ulong[rank];
        fixed (ulong* d = dims)
            H5.Check(H5.H5Sget_simple_extent_dims(space, d, null), "H5Sget_simple_extent_dims");
        return Array.ConvertAll(dims, d => (long)d);
    }

    private static long Count(long space)
    {
        long n = H5.H5Sget_simple_extent_npoints(space);
        if (n < 0) throw new H5Exception($"H5Sget_simple_extent_npoints failed: {H5.TakeErrorStack()}");
        return n;
    }

    private static VolumeException WrongClass(string location, long type, string expected)
    {
        int cls = H5.H5Tget_class(type);
        string className = cls >= 0 && cls < H5.ClassNames.Length ? H5.ClassNames[cls] : $"class {cls}";
        return new VolumeException(location, $"holds {H5.H5Tget_size(type)}-byte {className} values; expected {expected}");
    }

    public void Dispose()
    {
        lock (H5.Gate)
        {
            if (file >= 0) H5.H5Fclose(file);
            file = -1;
        }
    }

    public override string ToString() => FilePath;
}
