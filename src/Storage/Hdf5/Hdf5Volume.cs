using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Hdf5.Native;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// One dataset of an HDF5 file (ilastik's <c>file.h5/internal/path</c>), read and written by hyperslab through
/// the reference C library. Every libhdf5 call holds <see cref="H5.Gate"/>, so concurrent Read/Write calls are
/// safe and run one at a time; HDF5 itself does the read-modify-write of partially covered chunks.
/// <para>
/// Buffers are C-ordered and native (little-endian): HDF5 converts from big-endian files on read, and new
/// datasets are written little-endian.
/// </para>
/// </summary>
internal sealed unsafe class Hdf5Volume : IVolume
{
    private const long ContiguousBlockBytes = 8L << 20;          // reported "chunk" of unchunked datasets
    private const int ChunkCacheBytes = 64 << 20, ChunkCacheSlots = 10007;
    private const int MaxListed = 20;

    private readonly string filePath;
    private readonly string datasetPath;
    private readonly bool writable;
    private readonly long memType;
    private readonly int elementSize;
    private readonly string? unreadable;    // why reads must fail (a filter this libhdf5 lacks)
    private long file;
    private long dataset;

    private Hdf5Volume(string filePath, string datasetPath, long file, long dataset, bool writable, AxisOrder? axes)
    {
        this.filePath = filePath;
        this.datasetPath = datasetPath;
        this.file = file;
        this.dataset = dataset;
        this.writable = writable;
        string location = $"{filePath}/{datasetPath}";

        long type = H5.Check(H5.H5Dget_type(dataset), "H5Dget_type");
        DataType dtype;
        try
        {
            (dtype, memType) = MapType(type, location);
        }
        finally
        {
            H5.H5Tclose(type);
        }
        elementSize = dtype.SizeInBytes();

        long[] shape = ReadShape(dataset, location);
        long dcpl = H5.Check(H5.H5Dget_create_plist(dataset), "H5Dget_create_plist");
        int[] chunks;
        string codec;
        double fill = 0;
        try
        {
            chunks = ReadChunks(dcpl, shape, elementSize);
            (codec, unreadable) = ReadFilters(dcpl);
            H5.Check(H5.H5Pget_fill_value(dcpl, H5.NativeDouble, &fill), "H5Pget_fill_value");
        }
        finally
        {
            H5.H5Pclose(dcpl);
        }

        string? axisTagsJson = Hdf5Attributes.ReadString(dataset, Hdf5Attributes.AxisTags);
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
        VoxelSize voxelSize = ResolveVoxelSize(order, Hdf5Attributes.ReadDoubles(dataset, Hdf5Attributes.ElementSize), tags);

        Info = new VolumeInfo(location, VolumeFormat.Hdf5, order, shape, dtype, chunks, voxelSize, codec, fill);
    }

    public VolumeInfo Info { get; }

    // ---- opening and creating -------------------------------------------------------------------------

    public static Hdf5Volume Open(string filePath, string datasetPath, AxisOrder? axes, bool writable)
    {
        Hdf5Files.RequireFile(filePath);
        lock (H5.Gate)
        {
            Hdf5Files.Initialize(filePath);
            long file = Hdf5Files.OpenFile(filePath, writable);
            long dataset = -1;
            try
            {
                string name = ResolveDatasetPath(file, filePath, datasetPath);
                dataset = OpenDataset(file, filePath, name);
                return new Hdf5Volume(filePath, name, file, dataset, writable, axes);
            }
            catch
            {
                if (dataset >= 0) H5.H5Dclose(dataset);
                H5.H5Fclose(file);
                throw;
            }
        }
    }

    public static Hdf5Volume Create(string filePath, string datasetPath, VolumeCreateOptions options)
    {
        NativeLibraries.Require(NativeLibraries.Hdf5);
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{filePath}/{datasetPath}: {e.Message}", e);
        }
        if (options.Codec.Name is not ("none" or "gzip" or "zlib"))
            throw new UsageException($"HDF5 output supports codecs none and gzip; got {options.Codec}");
        string name = datasetPath.Trim('/');
        if (name.Length == 0)
            throw new UsageException($"{filePath}: HDF5 output needs a dataset path inside the file, e.g. {filePath}/exported_data");
        string location = $"{filePath}/{name}";
        string? parent = Path.GetDirectoryName(Path.GetFullPath(filePath));
        if (parent is not null) Directory.CreateDirectory(parent);

        lock (H5.Gate)
        {
            Hdf5Files.Initialize(filePath);
            long file;
            if (File.Exists(filePath))
            {
                file = Hdf5Files.OpenFile(filePath, writable: true);
            }
            else
            {
                long fapl = Hdf5Files.CreateFileAccessList();
                file = H5.H5Fcreate(filePath, H5.AccExcl, H5.Default, fapl);
                string? error = file < 0 ? H5.TakeErrorStack() : null;   // before any other call clears the stack
                H5.H5Pclose(fapl);
                if (error is not null) throw new VolumeException(filePath, $"cannot create HDF5 file: {error}");
            }

            long dataset = -1, space = -1, dcpl = -1, lcpl = -1, dapl = -1;
            try
            {
                if (Hdf5Files.LinkExists(file, name))
                    throw new VolumeException(location, "dataset already exists; choose another dataset path or delete it first");
                int rank = options.Shape.Length;
                var dims = options.Shape.Select(s => (ulong)s).ToArray();
                var chunk = options.Chunks.Select((c, d) => (ulong)Math.Min(c, options.Shape[d])).ToArray();
                long fileType = FileType(options.DataType);
                long nativeType = NativeType(options.DataType);

                dcpl = H5.Check(H5.H5Pcreate(H5.ClassDatasetCreate), "H5Pcreate(dataset create)");
                fixed (ulong* c = chunk)
                    H5.Check(H5.H5Pset_chunk(dcpl, rank, c), "H5Pset_chunk");
                if (options.Codec.Name is "gzip" or "zlib")
                    H5.Check(H5.H5Pset_deflate(dcpl, (uint)options.Codec.Level), "H5Pset_deflate");
                fixed (byte* f = Scalars.Encode(options.FillValue, options.DataType))
                    H5.Check(H5.H5Pset_fill_value(dcpl, nativeType, f), "H5Pset_fill_value");
                lcpl = H5.Check(H5.H5Pcreate(H5.ClassLinkCreate), "H5Pcreate(link create)");
                H5.Check(H5.H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group");
                dapl = CreateAccessList();
                fixed (ulong* d = dims)
                    space = H5.Check(H5.H5Screate_simple(rank, d, null), "H5Screate_simple");

                dataset = H5.H5Dcreate2(file, name, fileType, space, lcpl, dcpl, dapl);
                if (dataset < 0) throw new VolumeException(location, $"cannot create dataset: {H5.TakeErrorStack()}");

                Hdf5Attributes.WriteString(dataset, Hdf5Attributes.AxisTags, Hdf5Attributes.FormatAxisTags(options.Axes, options.VoxelSize));
                double[] elementSize = options.Axes.Names.Contains('z')
                    ? [options.VoxelSize.Z, options.VoxelSize.Y, options.VoxelSize.X]
                    : [options.VoxelSize.Y, options.VoxelSize.X];
                Hdf5Attributes.WriteDoubles(dataset, Hdf5Attributes.ElementSize, elementSize);
                H5.Check(H5.H5Fflush(file, H5.ScopeLocal), "H5Fflush");
                return new Hdf5Volume(filePath, name, file, dataset, writable: true, options.Axes);
            }
            catch (H5Exception e)
            {
                if (dataset >= 0) H5.H5Dclose(dataset);
                H5.H5Fclose(file);
                throw new VolumeException(location, $"cannot create dataset: {e.Message}", e);
            }
            catch
            {
                if (dataset >= 0) H5.H5Dclose(dataset);
                H5.H5Fclose(file);
                throw;
            }
            finally
            {
                if (space >= 0) H5.H5Sclose(space);
                if (dcpl >= 0) H5.H5Pclose(dcpl);
                if (lcpl >= 0) H5.H5Pclose(lcpl);
                if (dapl >= 0) H5.H5Pclose(dapl);
            }
        }
    }

    private static long CreateAccessList()
    {
        long dapl = H5.Check(H5.H5Pcreate(H5.ClassDatasetAccess), "H5Pcreate(dataset access)");
        H5.Check(H5.H5Pset_chunk_cache(dapl, ChunkCacheSlots, ChunkCacheBytes, 0.75), "H5Pset_chunk_cache");
        return dapl;
    }

    private static long OpenDataset(long file, string filePath, string name)
    {
        long dapl = CreateAccessList();
        try
        {
            long dataset = H5.H5Dopen2(file, name, dapl);
            if (dataset < 0) throw new VolumeException($"{filePath}/{name}", $"cannot open dataset: {H5.TakeErrorStack()}");
            return dataset;
        }
        finally
        {
            H5.H5Pclose(dapl);
        }
    }

    /// <summary>The dataset to open: the one named, or the file's only dataset when none is named.</summary>
    private static string ResolveDatasetPath(long file, string filePath, string datasetPath)
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
        int type = Hdf5Files.LinkExists(file, name) ? Hdf5Files.ObjectType(file, name) : -1;
        if (type == H5.IdDataset) return name;
        var datasets = ListDatasets(file);
        string what = type < 0 ? "no such dataset" : "is not a dataset (a group?)";
        throw new VolumeException($"{filePath}/{name}", datasets.Count == 0
            ? $"{what}; the file holds no datasets"
            : $"{what}; the file holds: {Listing(datasets)}");
    }

    private static string Listing(List<string> names) =>
        names.Count <= MaxListed ? string.Join(", ", names) : string.Join(", ", names.Take(MaxListed)) + $", ... ({names.Count} in all)";

    /// <summary>Paths of all datasets in the file, in name order.</summary>
    private static List<string> ListDatasets(long file)
    {
        var links = new List<string>();
        var handle = GCHandle.Alloc(links);
        try
        {
            H5.H5Lvisit(file, 0 /* H5_INDEX_NAME */, 0 /* H5_ITER_INC */, &Hdf5Files.CollectName, GCHandle.ToIntPtr(handle));
            H5.H5Eclear2(H5.Default);
        }
        finally
        {
            handle.Free();
        }
        return links.Where(l => Hdf5Files.ObjectType(file, l) == H5.IdDataset).ToList();
    }

    // ---- metadata -------------------------------------------------------------------------------------

    private static (DataType Type, long Native) MapType(long type, string location)
    {
        int cls = H5.H5Tget_class(type);
        int size = (int)H5.H5Tget_size(type);
        if (cls == H5.ClassInteger)
        {
            bool signed = H5.H5Tget_sign(type) != H5.SignNone;
            DataType? t = (size, signed) switch
            {
                (1, false) => DataType.UInt8, (2, false) => DataType.UInt16, (4, false) => DataType.UInt32, (8, false) => DataType.UInt64,
                (1, true) => DataType.Int8, (2, true) => DataType.Int16, (4, true) => DataType.Int32, (8, true) => DataType.Int64,
                _ => null,
            };
            if (t is { } it) return (it, NativeType(it));
        }
        else if (cls == H5.ClassFloat && size is 4 or 8)
        {
            var t = size == 4 ? DataType.Float32 : DataType.Float64;
            return (t, NativeType(t));
        }
        string className = cls >= 0 && cls < H5.ClassNames.Length ? H5.ClassNames[cls] : $"class {cls}";
        string order = cls is H5.ClassInteger or H5.ClassFloat ? (H5.H5Tget_order(type) == H5.OrderBigEndian ? " big-endian" : "") : "";
        throw new VolumeException(location, $"unsupported dtype: {size}-byte{order} {className}; supported: {DataTypes.AllNames}");
    }

    private static long NativeType(DataType type) => type switch
    {
        DataType.UInt8 => H5.NativeUInt8, DataType.UInt16 => H5.NativeUInt16, DataType.UInt32 => H5.NativeUInt32, DataType.UInt64 => H5.NativeUInt64,
        DataType.Int8 => H5.NativeInt8, DataType.Int16 => H5.NativeInt16, DataType.Int32 => H5.NativeInt32, DataType.Int64 => H5.NativeInt64,
        DataType.Float32 => H5.NativeFloat, DataType.Float64 => H5.NativeDouble,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static long FileType(DataType type) => type switch
    {
        DataType.UInt8 => H5.StdU8Le, DataType.UInt16 => H5.StdU16Le, DataType.UInt32 => H5.StdU32Le, DataType.UInt64 => H5.StdU64Le,
        DataType.Int8 => H5.StdI8Le, DataType.Int16 => H5.StdI16Le, DataType.Int32 => H5.StdI32Le, DataType.Int64 => H5.StdI64Le,
        DataType.Float32 => H5.IeeeF32Le, DataType.Float64 => H5.IeeeF64Le,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static long[] ReadShape(long dataset, string location)
    {
        long space = H5.Check(H5.H5Dget_space(dataset), "H5Dget_space");
        try
        {
            int rank = H5.Check(H5.H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims");
            if (rank < 2)
                throw new VolumeException(location, $"is a {rank}-dimensional dataset; images need at least 2 dimensions (y, x)");
            var dims = new ulong[rank];
            fixed (ulong* d = dims)
                H5.Check(H5.H5Sget_simple_extent_dims(space, d, null), "H5Sget_simple_extent_dims");
            return dims.Select(d => (long)d).ToArray();
        }
        finally
        {
            H5.H5Sclose(space);
        }
    }

    /// <summary>Storage chunks; for contiguous and compact datasets a row block of about 8 MiB.</summary>
    private static int[] ReadChunks(long dcpl, long[] shape, int elementSize)
    {
        int rank = shape.Length;
        if (H5.H5Pget_layout(dcpl) == H5.LayoutChunked)
        {
            var dims = new ulong[rank];
            fixed (ulong* d = dims)
                H5.Check(H5.H5Pget_chunk(dcpl, rank, d), "H5Pget_chunk");
            return dims.Select(d => (int)Math.Min(d, int.MaxValue)).ToArray();
        }
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

    /// <summary>The filter pipeline as text ("none", "gzip(level 4)", "shuffle+gzip(level 4)"), and why reading is impossible, if it is.</summary>
    private static (string Codec, string? Unreadable) ReadFilters(long dcpl)
    {
        int n = H5.Check(H5.H5Pget_nfilters(dcpl), "H5Pget_nfilters");
        var parts = new List<string>();
        var missing = new List<string>();
        uint* values = stackalloc uint[16];
        byte* name = stackalloc byte[256];
        for (uint i = 0; i < n; i++)
        {
            uint flags, config;
            nuint count = 16;
            int id = H5.Check(H5.H5Pget_filter2(dcpl, i, &flags, &count, values, 256, name, &config), "H5Pget_filter2");
            string text = id switch
            {
                H5.FilterDeflate => count >= 1 ? $"gzip(level {values[0]})" : "gzip",
                H5.FilterShuffle => "shuffle",
                H5.FilterFletcher32 => "fletcher32",
                H5.FilterSzip => "szip",
                H5.FilterNbit => "nbit",
                H5.FilterScaleOffset => "scaleoffset",
                H5.FilterLzf => "lzf",
                H5.FilterBlosc => "blosc",
                H5.FilterBzip2 => "bzip2",
                H5.FilterLz4 => "lz4",
                H5.FilterZstd => "zstd",
                H5.FilterBitshuffle => "bitshuffle",
                _ => Marshal.PtrToStringUTF8((IntPtr)name) is { Length: > 0 } s ? $"filter {id} ({s})" : $"filter {id}",
            };
            parts.Add(text);
            if (H5.H5Zfilter_avail(id) <= 0)
            {
                H5.H5Eclear2(H5.Default);
                missing.Add($"{text} (HDF5 filter id {id})");
            }
        }
        string? unreadable = missing.Count == 0 ? null :
            $"is compressed with {string.Join(", ", missing)}, which this libhdf5 does not provide (only built-in filters such as " +
            "gzip, shuffle, fletcher32, szip, nbit, scaleoffset); re-save the dataset with gzip (e.g. h5repack -f GZIP=4)";
        return (parts.Count == 0 ? "none" : string.Join("+", parts), unreadable);
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
        long bytes = CheckBox(box, destination.Length);
        if (unreadable is not null) throw new VolumeException(Info.Location, unreadable);
        if (bytes == 0) return;
        fixed (byte* p = destination)
            Transfer(box, p, write: false);
    }

    public void Write(NdBox box, ReadOnlySpan<byte> source)
    {
        if (!writable) throw new VolumeException(Info.Location, $"is open read-only; cannot write box {box}");
        long bytes = CheckBox(box, source.Length);
        if (unreadable is not null) throw new VolumeException(Info.Location, unreadable);
        if (bytes == 0) return;
        fixed (byte* p = source)
            Transfer(box, p, write: true);
    }

    private long CheckBox(NdBox box, int bufferLength)
    {
        ArgumentNullException.ThrowIfNull(box);
        var shape = Info.Shape;
        if (box.Rank != shape.Length)
            throw new VolumeException(Info.Location, $"box {box} has {box.Rank} dimensions but the dataset has {shape.Length} ({Info.Axes})");
        if (!box.IsInside(shape))
            throw new VolumeException(Info.Location, $"box {box} lies outside the dataset of shape [{string.Join(", ", shape)}] ({Info.Axes})");
        long bytes = box.ElementCount * elementSize;
        if (bufferLength < bytes)
            throw new ArgumentException($"buffer holds {bufferLength} bytes; box {box} needs {bytes}");
        return bytes;
    }

    private void Transfer(NdBox box, byte* buffer, bool write)
    {
        int rank = box.Rank;
        ulong* start = stackalloc ulong[rank];
        ulong* count = stackalloc ulong[rank];
        for (int d = 0; d < rank; d++)
        {
            start[d] = (ulong)box.Start[d];
            count[d] = (ulong)box.Shape[d];
        }
        lock (H5.Gate)
        {
            ObjectDisposedException.ThrowIf(dataset < 0, this);
            long fileSpace = -1, memSpace = -1;
            try
            {
                fileSpace = H5.Check(H5.H5Dget_space(dataset), "H5Dget_space");
                H5.Check(H5.H5Sselect_hyperslab(fileSpace, 0 /* H5S_SELECT_SET */, start, null, count, null), "H5Sselect_hyperslab");
                memSpace = H5.Check(H5.H5Screate_simple(rank, count, null), "H5Screate_simple");
                if (write)
                    H5.Check(H5.H5Dwrite(dataset, memType, memSpace, fileSpace, H5.Default, buffer), "H5Dwrite");
                else
                    H5.Check(H5.H5Dread(dataset, memType, memSpace, fileSpace, H5.Default, buffer), "H5Dread");
            }
            catch (H5Exception e)
            {
                throw new VolumeException(Info.Location, $"{(write ? "writing" : "reading")} box {box} failed: {e.Message}", e);
            }
            finally
            {
                if (memSpace >= 0) H5.H5Sclose(memSpace);
                if (fileSpace >= 0) H5.H5Sclose(fileSpace);
            }
        }
    }

    public void Flush()
    {
        lock (H5.Gate)
        {
            ObjectDisposedException.ThrowIf(dataset < 0, this);
            if (H5.H5Fflush(file, H5.ScopeLocal) < 0)
                throw new VolumeException(filePath, $"flushing dataset {datasetPath} failed: {H5.TakeErrorStack()}");
        }
    }

    public void Dispose()
    {
        lock (H5.Gate)
        {
            if (dataset >= 0) H5.H5Dclose(dataset);
            if (file >= 0) H5.H5Fclose(file);
            dataset = -1;
            file = -1;
        }
    }

    public override string ToString() => Info.Location;
}
