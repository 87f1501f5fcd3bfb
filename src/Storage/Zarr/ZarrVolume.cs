using System.Buffers;
using System.Text;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Codecs;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Zarr;

/// <summary>
/// A Zarr v2 array in a directory store, read and written one storage chunk at a time.
/// <para>
/// Every chunk file is a whole chunk, also at the array's far edge (the part past the edge holds the fill
/// value), and a missing file reads as the fill value. A write decodes the chunks it covers only partly,
/// patches them and re-encodes them (read-modify-write), under a lock per chunk so that parallel writers
/// of disjoint boxes in one chunk keep each other's voxels. The new file is written beside the old one
/// and renamed over it, so readers and crashes only ever see a complete chunk.
/// </para>
/// </summary>
internal sealed class ZarrVolume : IVolume
{
    // Striped locks shared by every instance, keyed by array path and chunk coordinates, so two handles
    // on the same array in one process also serialise their read-modify-writes.
    private static readonly object[] ChunkLocks = Enumerable.Range(0, 1024).Select(_ => new object()).ToArray();

    private readonly string _path;
    private readonly ZarrArrayMeta _meta;
    private readonly bool _writable;
    private readonly int _elementSize;
    private readonly int _chunkBytes;
    private readonly long[] _chunkShape;
    private readonly byte[] _fill;
    private readonly int _pathHash;

    private ZarrVolume(string arrayPath, ZarrArrayMeta meta, AxisOrder axes, VoxelSize voxelSize, bool writable)
    {
        _path = arrayPath;
        _meta = meta;
        _writable = writable;
        _elementSize = meta.DataType.SizeInBytes();
        _chunkShape = meta.Chunks.Select(c => (long)c).ToArray();
        long chunkBytes = _chunkShape.Aggregate((long)_elementSize, (a, b) => a * b);
        if (chunkBytes > Array.MaxLength)
            throw new VolumeException(arrayPath, $"storage chunks [{string.Join(", ", meta.Chunks)}] hold {chunkBytes} bytes; at most {Array.MaxLength} are supported");
        _chunkBytes = (int)chunkBytes;
        _fill = Scalars.Encode(meta.FillValue, meta.DataType);
        _pathHash = StringComparer.Ordinal.GetHashCode(Path.GetFullPath(arrayPath));
        Info = new VolumeInfo(arrayPath, VolumeFormat.Zarr, axes, meta.Shape, meta.DataType, meta.Chunks, voxelSize,
            meta.Codec.Description, meta.FillValue);
    }

    public VolumeInfo Info { get; }

    /// <summary>Opens the array or OME-Zarr image (level 0) at <paramref name="storePath"/>/<paramref name="innerPath"/>.</summary>
    public static ZarrVolume Open(string storePath, string innerPath, AxisOrder? axes, bool writable)
    {
        string dir = Join(storePath, innerPath);
        if (!Directory.Exists(dir))
            throw new VolumeException(dir, File.Exists(dir) ? "is a file, not a Zarr store directory" : "does not exist");
        if (File.Exists(Path.Combine(dir, ".zarray")))
        {
            var meta = ReadMeta(dir);
            var order = axes ?? OmeNgff.ArrayDimensions(dir, meta.Shape.Length) ?? DefaultAxes(dir, meta.Shape.Length);
            CheckRank(dir, order, meta);
            return new ZarrVolume(dir, meta, order, VoxelSize.Isotropic, writable);
        }
        if (File.Exists(Path.Combine(dir, ".zgroup")))
        {
            var image = OmeNgff.ReadImage(dir);
            var meta = ReadMeta(image.ArrayPath);
            if (image.AxisNames.Length != meta.Shape.Length)
                throw new VolumeException(image.ArrayPath, $"the multiscales metadata names {image.AxisNames.Length} axes ({string.Join(", ", image.AxisNames)}) but the array has {meta.Shape.Length} dimensions");
            var order = axes ?? image.Axes ?? throw new VolumeException(dir,
                $"axis names [{string.Join(", ", image.AxisNames)}] are not a subset of t, c, z, y, x; pass the axis order explicitly (--axes)");
            CheckRank(image.ArrayPath, order, meta);
            return new ZarrVolume(image.ArrayPath, meta, order, image.VoxelSize, writable);
        }
        throw new VolumeException(dir, "is neither a Zarr array (no .zarray) nor a Zarr group (no .zgroup)");
    }

    /// <summary>Creates an OME-Zarr 0.4 image with one level, "0", at <paramref name="storePath"/>/<paramref name="innerPath"/>.</summary>
    public static ZarrVolume Create(string storePath, string innerPath, VolumeCreateOptions options)
    {
        string imageDir = Join(storePath, innerPath);
        Validate(imageDir, options);
        if (!options.Axes.IsOmeOrder)
            throw new UsageException($"{imageDir}: OME-Zarr 0.4 needs the axes in the order t, c, z, y, x; got \"{options.Axes}\" " +
                $"(use \"{options.Axes.ToOmeOrder()}\", or write an HDF5 dataset for other orders)");
        if (File.Exists(Path.Combine(imageDir, ".zarray")) || File.Exists(Path.Combine(imageDir, ".zattrs")) || Path.Exists(Path.Combine(imageDir, "0")))
            throw new VolumeException(imageDir, "already holds Zarr data; remove it or choose another path");
        try
        {
            // The store root and every group on the way down to the image get a .zgroup.
            string current = storePath;
            EnsureGroup(current);
            foreach (string part in innerPath.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                current = Path.Combine(current, part);
                EnsureGroup(current);
            }
            WriteAtomic(Path.Combine(imageDir, ".zattrs"), OmeNgff.ImageAttributes(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(imageDir))), options));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(imageDir, $"cannot create the OME-Zarr image: {e.Message}", e);
        }
        return CreateArrayCore(Path.Combine(imageDir, "0"), options, '/', arrayDimensions: false);
    }

    /// <summary>
    /// Creates a plain Zarr v2 array in any axis order; the axis names go to the xarray attribute
    /// _ARRAY_DIMENSIONS, which <see cref="Open"/> reads back.
    /// </summary>
    internal static ZarrVolume CreateArray(string arrayPath, VolumeCreateOptions options, char dimensionSeparator = '/')
    {
        Validate(arrayPath, options);
        if (dimensionSeparator is not ('.' or '/'))
            throw new ArgumentOutOfRangeException(nameof(dimensionSeparator), dimensionSeparator, "must be '.' or '/'");
        return CreateArrayCore(arrayPath, options, dimensionSeparator, arrayDimensions: true);
    }

    private static ZarrVolume CreateArrayCore(string arrayPath, VolumeCreateOptions options, char separator, bool arrayDimensions)
    {
        if (File.Exists(Path.Combine(arrayPath, ".zarray")))
            throw new VolumeException(arrayPath, "already holds a Zarr array; remove it or choose another path");
        var meta = new ZarrArrayMeta((long[])options.Shape.Clone(), (int[])options.Chunks.Clone(), options.DataType, BigEndian: false,
            ChunkCodecs.FromSpec(options.Codec), options.FillValue, separator);
        try
        {
            Directory.CreateDirectory(arrayPath);
            WriteAtomic(Path.Combine(arrayPath, ".zarray"), meta.ToJson());
            if (arrayDimensions)
                WriteAtomic(Path.Combine(arrayPath, ".zattrs"), OmeNgff.ArrayDimensionsAttributes(options.Axes));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(arrayPath, $"cannot create the Zarr array: {e.Message}", e);
        }
        return new ZarrVolume(arrayPath, meta, options.Axes, options.VoxelSize, writable: true);
    }

    public void Read(NdBox box, Span<byte> destination)
    {
        CheckBox(box, destination.Length, nameof(destination));
        if (box.ElementCount == 0) return;
        int rank = box.Rank;
        Span<long> first = stackalloc long[rank], last = stackalloc long[rank], index = stackalloc long[rank];
        Span<long> inChunk = stackalloc long[rank], inBox = stackalloc long[rank], overlap = stackalloc long[rank];
        ChunkRange(box, first, last);
        first.CopyTo(index);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(_chunkBytes);
        try
        {
            var chunkSpan = chunk.AsSpan(0, _chunkBytes);
            do
            {
                Overlap(box, index, inChunk, inBox, overlap);
                if (!LoadChunk(ChunkKey(index), chunkSpan))
                    Scalars.Fill(chunkSpan, _fill);
                Strided.CopyBox(chunkSpan, _chunkShape, inChunk, destination, box.Shape, inBox, overlap, _elementSize);
            }
            while (Next(index, first, last));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    public void Write(NdBox box, ReadOnlySpan<byte> source)
    {
        if (!_writable)
            throw new VolumeException(_path, "was opened read-only; open it writable to write to it");
        CheckBox(box, source.Length, nameof(source));
        if (box.ElementCount == 0) return;
        int rank = box.Rank;
        Span<long> first = stackalloc long[rank], last = stackalloc long[rank], index = stackalloc long[rank];
        Span<long> inChunk = stackalloc long[rank], inBox = stackalloc long[rank], overlap = stackalloc long[rank];
        ChunkRange(box, first, last);
        first.CopyTo(index);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(_chunkBytes);
        try
        {
            var chunkSpan = chunk.AsSpan(0, _chunkBytes);
            do
            {
                bool whole = Overlap(box, index, inChunk, inBox, overlap);
                string key = ChunkKey(index);
                lock (ChunkLocks[LockIndex(index)])
                {
                    // A chunk the box covers entirely (up to the array edge) need not be read first.
                    if (whole || !LoadChunk(key, chunkSpan))
                        Scalars.Fill(chunkSpan, _fill);
                    Strided.CopyBox(source, box.Shape, inBox, chunkSpan, _chunkShape, inChunk, overlap, _elementSize);
                    StoreChunk(key, chunkSpan);
                }
            }
            while (Next(index, first, last));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    /// <summary>Nothing to do: every chunk file is complete and renamed into place before Write returns.</summary>
    public void Flush() { }

    public void Dispose() { }

    private void CheckBox(NdBox box, int bufferLength, string bufferName)
    {
        if (box.Rank != _meta.Shape.Length)
            throw new VolumeException(_path, $"box {box} has {box.Rank} dimensions but the volume has {_meta.Shape.Length} ({Info.Axes})");
        if (!box.IsInside(_meta.Shape))
            throw new VolumeException(_path, $"box {box} is outside the volume of shape [{string.Join(", ", _meta.Shape)}]");
        long bytes = box.ElementCount * _elementSize;
        if (bufferLength < bytes)
            throw new ArgumentException($"{bufferName} holds {bufferLength} bytes; box {box} of {Info.DataType.Name()} needs {bytes}", bufferName);
    }

    private void ChunkRange(NdBox box, Span<long> first, Span<long> last)
    {
        for (int d = 0; d < box.Rank; d++)
        {
            first[d] = box.Start[d] / _chunkShape[d];
            last[d] = (box.Start[d] + box.Shape[d] - 1) / _chunkShape[d];
        }
    }

    /// <summary>The box ∩ chunk, as corners in chunk and box coordinates; true when it is the chunk's whole in-array part.</summary>
    private bool Overlap(NdBox box, ReadOnlySpan<long> index, Span<long> inChunk, Span<long> inBox, Span<long> overlap)
    {
        bool whole = true;
        for (int d = 0; d < box.Rank; d++)
        {
            long chunkStart = index[d] * _chunkShape[d];
            long chunkEnd = Math.Min(chunkStart + _chunkShape[d], _meta.Shape[d]);
            long start = Math.Max(box.Start[d], chunkStart);
            long end = Math.Min(box.Start[d] + box.Shape[d], chunkEnd);
            inChunk[d] = start - chunkStart;
            inBox[d] = start - box.Start[d];
            overlap[d] = end - start;
            whole &= start == chunkStart && end == chunkEnd;
        }
        return whole;
    }

    private static bool Next(Span<long> index, ReadOnlySpan<long> first, ReadOnlySpan<long> last)
    {
        for (int d = index.Length - 1; d >= 0; d--)
        {
            if (++index[d] <= last[d]) return true;
            index[d] = first[d];
        }
        return false;
    }

    private string ChunkKey(ReadOnlySpan<long> index)
    {
        var key = new StringBuilder(index.Length * 4);
        for (int d = 0; d < index.Length; d++)
        {
            if (d > 0) key.Append(_meta.Separator);
            key.Append(index[d]);
        }
        return key.ToString();
    }

    private int LockIndex(ReadOnlySpan<long> index)
    {
        int hash = _pathHash;
        foreach (long i in index) hash = HashCode.Combine(hash, i);
        return (int)((uint)hash % (uint)ChunkLocks.Length);
    }

    /// <summary>Decodes chunk <paramref name="key"/> into <paramref name="chunk"/> (little-endian); false when its file is missing.</summary>
    private bool LoadChunk(string key, Span<byte> chunk)
    {
        string file = Path.Combine(_path, key);
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(_path, $"cannot read chunk {key}: {e.Message}", e);
        }
        using (handle)
        {
            long length = RandomAccess.GetLength(handle);
            if (length > Array.MaxLength)
                throw new VolumeException(_path, $"chunk {key} is corrupt: its file has {length} bytes");
            byte[] compressed = ArrayPool<byte>.Shared.Rent((int)length);
            try
            {
                int read = 0;
                while (read < length)
                {
                    int n = RandomAccess.Read(handle, compressed.AsSpan(read, (int)length - read), read);
                    if (n == 0) break;
                    read += n;
                }
                _meta.Codec.Decode(compressed.AsSpan(0, read), chunk);
            }
            catch (InvalidDataException e)
            {
                throw new VolumeException(_path, $"chunk {key} is corrupt: {e.Message}", e);
            }
            catch (IOException e)
            {
                throw new VolumeException(_path, $"cannot read chunk {key}: {e.Message}", e);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(compressed);
            }
        }
        if (_meta.BigEndian) Strided.SwapBytes(chunk, _elementSize);
        return true;
    }

    /// <summary>Encodes <paramref name="chunk"/> (clobbered when the file is big-endian) and renames it into place.</summary>
    private void StoreChunk(string key, Span<byte> chunk)
    {
        if (_meta.BigEndian) Strided.SwapBytes(chunk, _elementSize);
        using var encoded = _meta.Codec.Encode(chunk, _elementSize);
        string file = Path.Combine(_path, key);
        try
        {
            if (_meta.Separator == '/') Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            WriteAtomic(file, encoded.Span);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(_path, $"cannot write chunk {key}: {e.Message}", e);
        }
    }

    /// <summary>Writes a temporary file beside <paramref name="file"/> and renames it over the target.</summary>
    private static void WriteAtomic(string file, ReadOnlySpan<byte> content)
    {
        string temp = $"{file}.tmp-{Guid.NewGuid():N}";
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                RandomAccess.Write(handle, content, 0);
                if (VolumeStore.SyncWrites) RandomAccess.FlushToDisk(handle);
            }
            File.Move(temp, file, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static ZarrArrayMeta ReadMeta(string arrayPath)
    {
        byte[] json;
        try
        {
            json = File.ReadAllBytes(Path.Combine(arrayPath, ".zarray"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(arrayPath, $"cannot read .zarray: {e.Message}", e);
        }
        return ZarrArrayMeta.Parse(arrayPath, json);
    }

    private static void EnsureGroup(string dir)
    {
        if (File.Exists(Path.Combine(dir, ".zarray")))
            throw new VolumeException(dir, "is a Zarr array; a group cannot be created inside it");
        Directory.CreateDirectory(dir);
        string zgroup = Path.Combine(dir, ".zgroup");
        if (!File.Exists(zgroup))
            WriteAtomic(zgroup, "{\n  \"zarr_format\": 2\n}"u8);
    }

    private static void Validate(string location, VolumeCreateOptions options)
    {
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{location}: {e.Message}", e);
        }
    }

    private static AxisOrder DefaultAxes(string dir, int rank)
    {
        try
        {
            return AxisOrder.DefaultForRank(rank);
        }
        catch (ArgumentException e)
        {
            throw new VolumeException(dir, e.Message, e);
        }
    }

    private static void CheckRank(string path, AxisOrder axes, ZarrArrayMeta meta)
    {
        if (axes.Rank != meta.Shape.Length)
            throw new VolumeException(path, $"axes \"{axes}\" have rank {axes.Rank} but the array has rank {meta.Shape.Length} (shape [{string.Join(", ", meta.Shape)}])");
    }

    private static string Join(string storePath, string innerPath) =>
        innerPath.Length == 0 ? storePath : Path.Combine(storePath, innerPath.Trim('/'));
}
