using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using PureHDF;
using PureHDF.Selections;
using PureHDF.VOL.Native;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// One dataset of an HDF5 file (ilastik's <c>file.h5/internal/path</c>), read by hyperslab through PureHDF, the managed
/// HDF5 library: any box, from any number of threads at once (no process-wide lock: PureHDF reads one open file
/// concurrently). New datasets are written by <see cref="Hdf5Writer"/>; an existing file is never modified.
/// <para>
/// <b>Chunk cache.</b> PureHDF decompresses each chunk a read touches into its chunk cache; its default is 1 MB made
/// afresh per call, with which a read that walks a chunk row by row decompresses it again for every row (a 64×256×256
/// read took a minute). Each thread here keeps its own cache per dataset, sized to hold every chunk the largest read
/// so far touched (at least <see cref="MinimumCacheBytes"/>): a read decompresses each of its chunks once, neighbouring
/// reads on the same thread (a chunk and its halo) reuse them, and memory stays bounded by the reads' size.
/// </para>
/// <para>
/// Numbers are little-endian in memory. PureHDF cannot convert big-endian data or decode filters other than deflate,
/// shuffle and fletcher32: such datasets open (their shape, dtype and filters show in <c>info</c>), and reading them
/// fails with an error that names the reason and the remedy (h5repack or h5py).
/// </para>
/// </summary>
internal sealed class Hdf5Volume : IVolume
{
    private const long ContiguousBlockBytes = 8L << 20;          // reported "chunk" of unchunked datasets
    private const long MinimumCacheBytes = 32L << 20;

    private readonly NativeFile _file;
    private readonly NativeDataset _dataset;
    private readonly int _elementSize;
    private readonly long _chunkBytes;
    private readonly string? _unreadable;    // why reads must fail (a filter PureHDF lacks, big-endian data)
    private readonly ThreadLocal<(SimpleReadingChunkCache Cache, long Bytes)?> _caches = new(trackAllValues: false);
    private bool _disposed;

    private Hdf5Volume(string filePath, string datasetPath, NativeFile file, NativeDataset dataset, AxisOrder? axes)
    {
        _file = file;
        _dataset = dataset;
        string location = $"{filePath}/{datasetPath}";

        var dtype = MapType(dataset, location);
        _elementSize = dtype.SizeInBytes();
        long[] shape = ReadShape(dataset, location);
        bool chunked = dataset.Layout.Class == H5DataLayoutClass.Chunked;
        int[] chunks = chunked
            ? dataset.Layout.Chunks!.Take(shape.Length).Select(c => (int)Math.Min(c, int.MaxValue)).ToArray()
            : ContiguousBlocks(shape, _elementSize);
        _chunkBytes = chunks.Aggregate((long)_elementSize, (n, c) => n * c);

        var filters = PureHdf.Filters(dataset);
        string codec = filters.Count == 0 ? "none" : string.Join("+", filters.Select(PureHdf.Describe));
        var missing = filters.Where(f => !PureHdf.ReadableFilters.Contains(f.Id)).Select(f => $"{PureHdf.Describe(f)} (HDF5 filter id {f.Id})").ToList();
        if (missing.Count > 0)
            _unreadable = $"is compressed with {string.Join(", ", missing)}, which PureHDF (ChunkSeg's HDF5 library) cannot decode (it reads " +
                "gzip, shuffle and fletcher32); re-save the dataset with gzip: h5repack -f GZIP=4 IN.h5 OUT.h5 (Debian's hdf5-tools), " +
                "or in h5py: f2.create_dataset(name, data=f1[name][...], chunks=True, compression='gzip')";
        else if (PureHdf.IsBigEndian(dataset))
            _unreadable = $"stores {dtype.Name()} big-endian, which PureHDF (ChunkSeg's HDF5 library) cannot convert; rewrite it little-endian: " +
                "h5repack is no help here, but h5py is: f2.create_dataset(name, data=f1[name][...].astype('<" + NumpyCode(dtype) + "'), chunks=True, compression='gzip')";

        string? axisTagsJson = ReadStringAttribute(dataset, Hdf5Attributes.AxisTags);
        Hdf5Attributes.AxisTag[]? tags = null;
        if (axisTagsJson is not null)
        {
            try
            {
                tags = Hdf5Attributes.ParseAxisTags(axisTagsJson);
            }
            catch (FormatException) when (axes is not null)
            {
                // --axes overrides metadata we cannot parse; voxel size then falls back to element_size_um or 1.
            }
            catch (FormatException e)
            {
                throw new VolumeException(location, $"{e.Message}; pass --axes to say the axis order (e.g. --axes zyxc)", e);
            }
        }
        AxisOrder order = ResolveAxes(location, shape.Length, axes, tags);
        VoxelSize voxelSize = ResolveVoxelSize(order, ReadDoublesAttribute(dataset, Hdf5Attributes.ElementSize), tags);
        Info = new VolumeInfo(location, VolumeFormat.Hdf5, order, shape, dtype, chunks, voxelSize, codec, FillValue(dataset, dtype));
    }

    public VolumeInfo Info { get; }

    /// <summary>
    /// Opens a dataset for reading (the file's only one when <paramref name="datasetPath"/> is empty). HDF5 files are
    /// never opened for writing: PureHDF writes new files only, so <paramref name="writable"/> is refused.
    /// </summary>
    public static Hdf5Volume Open(string filePath, string datasetPath, AxisOrder? axes, bool writable)
    {
        if (writable)
            throw new VolumeException($"{filePath}/{datasetPath.Trim('/')}",
                "an existing HDF5 file cannot be modified (ChunkSeg writes HDF5 files whole, in one pass); write to a new file or to Zarr");
        var file = PureHdf.OpenRead(filePath);
        try
        {
            string name = PureHdf.ResolveDatasetPath(file, filePath, datasetPath);
            NativeDataset dataset;
            try
            {
                dataset = (NativeDataset)file.Dataset(name);
            }
            catch (Exception e) when (e is not ChunkSegException)
            {
                throw new VolumeException($"{filePath}/{name}", $"cannot open dataset: {e.Message}", e);
            }
            return new Hdf5Volume(filePath, name, file, dataset, axes);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    // ---- metadata -------------------------------------------------------------------------------------

    private static DataType MapType(NativeDataset dataset, string location)
    {
        var type = dataset.Type;
        int size = type.Size;
        if (type.Class == H5DataTypeClass.FixedPoint)
        {
            bool signed = type.FixedPoint!.IsSigned;
            DataType? t = (size, signed) switch
            {
                (1, false) => DataType.UInt8, (2, false) => DataType.UInt16, (4, false) => DataType.UInt32, (8, false) => DataType.UInt64,
                (1, true) => DataType.Int8, (2, true) => DataType.Int16, (4, true) => DataType.Int32, (8, true) => DataType.Int64,
                _ => null,
            };
            if (t is { } it) return it;
        }
        else if (type.Class == H5DataTypeClass.FloatingPoint && size is 4 or 8)
        {
            return size == 4 ? DataType.Float32 : DataType.Float64;
        }
        string className = type.Class switch
        {
            H5DataTypeClass.FixedPoint => "integer", H5DataTypeClass.FloatingPoint => "float", H5DataTypeClass.String => "string",
            H5DataTypeClass.Compound => "compound", H5DataTypeClass.Enumerated => "enum", H5DataTypeClass.VariableLength => "vlen",
            H5DataTypeClass.Array => "array", H5DataTypeClass.Opaque => "opaque", H5DataTypeClass.Reference => "reference",
            H5DataTypeClass.BitField => "bitfield", H5DataTypeClass.Time => "time", _ => type.Class.ToString(),
        };
        string order = type.Class is H5DataTypeClass.FixedPoint or H5DataTypeClass.FloatingPoint && PureHdf.IsBigEndian(dataset) ? " big-endian" : "";
        throw new VolumeException(location, $"unsupported dtype: {size}-byte{order} {className}; supported: {DataTypes.AllNames}");
    }

    private static string NumpyCode(DataType type) => type switch
    {
        DataType.UInt8 => "u1", DataType.UInt16 => "u2", DataType.UInt32 => "u4", DataType.UInt64 => "u8",
        DataType.Int8 => "i1", DataType.Int16 => "i2", DataType.Int32 => "i4", DataType.Int64 => "i8",
        DataType.Float32 => "f4", _ => "f8",
    };

    private static long[] ReadShape(NativeDataset dataset, string location)
    {
        var dims = dataset.Space.Dimensions;
        if (dims.Length < 2)
            throw new VolumeException(location, $"is a {dims.Length}-dimensional dataset; images need at least 2 dimensions (y, x)");
        return dims.Select(d => (long)d).ToArray();
    }

    /// <summary>For contiguous and compact datasets: a row block of about 8 MiB, as the reported "chunk".</summary>
    private static int[] ContiguousBlocks(long[] shape, int elementSize)
    {
        int rank = shape.Length;
        var chunks = new int[rank];
        long inner = elementSize;
        for (int d = rank - 1; d >= 0; d--)
        {
            long fit = Math.Max(1, ContiguousBlockBytes / inner);
            chunks[d] = (int)Math.Min(Math.Min(shape[d], fit), int.MaxValue);
            inner *= Math.Max(1, shape[d]);
        }
        return chunks;
    }

    private static double FillValue(NativeDataset dataset, DataType type)
    {
        byte[]? raw = dataset.FillValue.Value;
        if (raw is null || raw.Length < type.SizeInBytes()) return 0;
        return type switch
        {
            DataType.UInt8 => raw[0], DataType.Int8 => (sbyte)raw[0],
            DataType.UInt16 => BitConverter.ToUInt16(raw), DataType.Int16 => BitConverter.ToInt16(raw),
            DataType.UInt32 => BitConverter.ToUInt32(raw), DataType.Int32 => BitConverter.ToInt32(raw),
            DataType.UInt64 => BitConverter.ToUInt64(raw), DataType.Int64 => BitConverter.ToInt64(raw),
            DataType.Float32 => BitConverter.ToSingle(raw), _ => BitConverter.ToDouble(raw),
        };
    }

    /// <summary>A string attribute (fixed or variable length, any charset, decoded as UTF-8), or null when absent.</summary>
    internal static string? ReadStringAttribute(IH5Object obj, string name)
    {
        if (!obj.AttributeExists(name)) return null;
        var attribute = obj.Attribute(name);
        try
        {
            return attribute.Type.Class switch
            {
                H5DataTypeClass.String or H5DataTypeClass.VariableLength => attribute.Space.Rank == 0
                    ? attribute.Read<string>()
                    : attribute.Read<string[]>().FirstOrDefault(),
                _ => null,
            };
        }
        catch (Exception e) when (e is not ChunkSegException)
        {
            return null;
        }
    }

    /// <summary>A numeric attribute as doubles, or null when absent or not numeric.</summary>
    internal static double[]? ReadDoublesAttribute(IH5Object obj, string name)
    {
        if (!obj.AttributeExists(name)) return null;
        var attribute = obj.Attribute(name);
        try
        {
            return attribute.Type.Class switch
            {
                H5DataTypeClass.FloatingPoint when attribute.Type.Size == 4 => attribute.Read<float[]>().Select(v => (double)v).ToArray(),
                H5DataTypeClass.FloatingPoint => attribute.Read<double[]>(),
                H5DataTypeClass.FixedPoint => attribute.Read<long[]>().Select(v => (double)v).ToArray(),
                _ => null,
            };
        }
        catch (Exception e) when (e is not ChunkSegException)
        {
            return null;
        }
    }

    private static AxisOrder ResolveAxes(string location, int rank, AxisOrder? axes, Hdf5Attributes.AxisTag[]? tags)
    {
        if (axes is not null)
        {
            if (axes.Rank != rank)
                throw new VolumeException(location, $"--axes \"{axes}\" has {axes.Rank} axes but the dataset has {rank} dimensions");
            return axes;
        }
        if (tags is not null)
        {
            string keys = string.Concat(tags.Select(t => t.Key));
            if (tags.Length != rank)
                throw new VolumeException(location, $"axistags names {tags.Length} axes (\"{keys}\") but the dataset has {rank} dimensions; pass --axes");
            try
            {
                return AxisOrder.Parse(keys);
            }
            catch (ArgumentException e)
            {
                throw new VolumeException(location, $"axistags: {e.Message}; pass --axes", e);
            }
        }
        if (rank is 4 or 5)
            throw new UsageException(
                $"{location}: the axis order of this {rank}-dimensional dataset is ambiguous (it has no axistags attribute); " +
                $"pass --axes, e.g. --axes {(rank == 4 ? "zyxc" : "tzyxc")} for an ilastik export or --axes {(rank == 4 ? "czyx" : "tczyx")} for OME order");
        try
        {
            return AxisOrder.DefaultForRank(rank);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{location}: {e.Message}", e);
        }
    }

    /// <summary>element_size_um (z,y,x or y,x, or one per axis), else axistags resolutions, else 1 µm.</summary>
    private static VoxelSize ResolveVoxelSize(AxisOrder axes, double[]? elementSize, Hdf5Attributes.AxisTag[]? tags)
    {
        double z = 1, y = 1, x = 1;
        if (elementSize is not null && elementSize.All(v => v > 0 && double.IsFinite(v)))
        {
            if (elementSize.Length == axes.Rank && axes.Rank != CountSpatial(axes))
            {
                for (int i = 0; i < axes.Rank; i++)
                {
                    if (axes[i] == 'z') z = elementSize[i];
                    else if (axes[i] == 'y') y = elementSize[i];
                    else if (axes[i] == 'x') x = elementSize[i];
                }
                return new VoxelSize(z, y, x);
            }
            if (elementSize.Length == 3) return new VoxelSize(elementSize[0], elementSize[1], elementSize[2]);
            if (elementSize.Length == 2) return new VoxelSize(1, elementSize[0], elementSize[1]);
        }
        if (tags is not null)
        {
            foreach (var tag in tags)
            {
                if (!(tag.Resolution > 0) || !double.IsFinite(tag.Resolution)) continue;
                if (tag.Key == "z") z = tag.Resolution;
                else if (tag.Key == "y") y = tag.Resolution;
                else if (tag.Key == "x") x = tag.Resolution;
            }
        }
        return new VoxelSize(z, y, x);
    }

    private static int CountSpatial(AxisOrder axes) => axes.Names.Count(a => AxisOrder.KindOf(a) == AxisKind.Space);

    // ---- data -----------------------------------------------------------------------------------------

    public void Read(NdBox box, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long bytes = CheckBox(box, destination.Length);
        if (_unreadable is not null) throw new VolumeException(Info.Location, _unreadable);
        if (bytes == 0) return;
        var target = destination[..checked((int)bytes)];
        try
        {
            switch (Info.DataType)
            {
                case DataType.UInt8: ReadTyped<byte>(box, target); break;
                case DataType.Int8: ReadTyped<sbyte>(box, target); break;
                case DataType.UInt16: ReadTyped<ushort>(box, target); break;
                case DataType.Int16: ReadTyped<short>(box, target); break;
                case DataType.UInt32: ReadTyped<uint>(box, target); break;
                case DataType.Int32: ReadTyped<int>(box, target); break;
                case DataType.UInt64: ReadTyped<ulong>(box, target); break;
                case DataType.Int64: ReadTyped<long>(box, target); break;
                case DataType.Float32: ReadTyped<float>(box, target); break;
                default: ReadTyped<double>(box, target); break;
            }
        }
        catch (Exception e) when (e is not ChunkSegException and not ObjectDisposedException)
        {
            throw new VolumeException(Info.Location, $"reading box {box} failed: {e.Message}", e);
        }
    }

    private void ReadTyped<T>(NdBox box, Span<byte> destination) where T : unmanaged
    {
        int rank = box.Rank;
        var starts = new ulong[rank];
        var counts = new ulong[rank];
        for (int d = 0; d < rank; d++)
        {
            starts[d] = (ulong)box.Start[d];
            counts[d] = (ulong)box.Shape[d];
        }
        var access = new H5DatasetAccess(ChunkCache: CacheFor(box));
        _dataset.Read(access, MemoryMarshal.Cast<byte, T>(destination), new HyperslabSelection(rank, starts, counts), memoryDims: counts);
    }

    /// <summary>This thread's chunk cache, grown to hold every chunk <paramref name="box"/> touches.</summary>
    private SimpleReadingChunkCache CacheFor(NdBox box)
    {
        long touched = 1;
        for (int d = 0; d < box.Rank; d++)
        {
            long c = Math.Max(1, Info.StorageChunks[d]);
            long first = box.Start[d] / c, last = (box.Start[d] + box.Shape[d] - 1) / c;
            touched = checked(touched * (last - first + 1));
        }
        long bytes = Math.Max(MinimumCacheBytes, touched * _chunkBytes);
        if (_caches.Value is { } held && held.Bytes >= bytes) return held.Cache;
        int slots = (int)Math.Min(int.MaxValue, Math.Max(touched, bytes / Math.Max(1, _chunkBytes)) + 1);
        var cache = new SimpleReadingChunkCache(slots, (ulong)bytes);
        _caches.Value = (cache, bytes);
        return cache;
    }

    public void Write(NdBox box, ReadOnlySpan<byte> source) =>
        throw new VolumeException(Info.Location, $"is open read-only; cannot write box {box} (an existing HDF5 file is never modified)");

    private long CheckBox(NdBox box, int bufferLength)
    {
        ArgumentNullException.ThrowIfNull(box);
        var shape = Info.Shape;
        if (box.Rank != shape.Length)
            throw new VolumeException(Info.Location, $"box {box} has {box.Rank} dimensions but the dataset has {shape.Length} ({Info.Axes})");
        if (!box.IsInside(shape))
            throw new VolumeException(Info.Location, $"box {box} lies outside the dataset of shape [{string.Join(", ", shape)}] ({Info.Axes})");
        long bytes = box.ElementCount * _elementSize;
        if (bufferLength < bytes)
            throw new ArgumentException($"buffer holds {bufferLength} bytes; box {box} needs {bytes}");
        return bytes;
    }

    public void Flush()
    {
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _caches.Dispose();
        _file.Dispose();
    }

    public override string ToString() => Info.Location;
}
