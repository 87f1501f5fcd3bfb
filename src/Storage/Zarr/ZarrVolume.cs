using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Codecs;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Zarr;

/// <summary>
/// A Zarr v2 or v3 array in a directory store, read and written one stored unit at a time: a chunk file, or a
/// shard file of a sharded v3 array (the <c>sharding_indexed</c> codec; see <see cref="ZarrV3Codecs"/>).
/// <para>
/// Every chunk is whole, also at the array's far edge (the part past the edge holds the fill value), and a
/// missing chunk file, shard file or shard index entry reads as the fill value. Reads decode only the chunks
/// (inner chunks of a shard) they touch. A write re-encodes every unit it touches whole: one it covers only in
/// part is read, patched and rewritten (read-modify-write) under a lock per unit, so parallel writers of
/// disjoint boxes in one unit keep each other's voxels. The new file is written beside the old one and
/// renamed over it, so readers and crashes only ever see a complete chunk or shard. The lock is per process:
/// writers in different processes must own whole units (<see cref="VolumeInfo.WriteUnit"/>).
/// </para>
/// <code>
///   shards of 4 × 4 voxels holding inner chunks of 2 × 2 (║ ═: shard borders); box B = y 0..4, x 2..8 written:
///
///          x 0       2       4       6       8
///   y 0    ┌───────┬───────╥───────┬───────┐   shard (0,0): B covers it in part → read its inner chunks,
///          │       │ B B B ║ B B B │ B B B │   patch, re-encode (the left column, all fill, is not stored),
///   y 2    ├───────┼───────╫───────┼───────┤   write chunks ‖ index, rename: all under shard (0,0)'s lock
///          │       │ B B B ║ B B B │ B B B │
///   y 4    ╞═══════╧═══════╬═══════╧═══════╡   shard (0,1): B covers it whole → encoded without reading it
///          │  shard (1,0)  ║  shard (1,1)  │   shards (1,0), (1,1): untouched
///   y 8    └───────────────╨───────────────┘
/// </code>
/// </summary>
internal sealed class ZarrVolume : IVolume
{
    // Striped locks shared by every instance, keyed by array path and unit (chunk or shard) coordinates, so two
    // handles on the same array in one process also serialise their read-modify-writes.
    private static readonly object[] UnitLocks = Enumerable.Range(0, 1024).Select(_ => new object()).ToArray();

    private readonly string _path;
    private readonly ZarrArrayMeta? _v2;
    private readonly ZarrV3ArrayMeta? _v3;
    private readonly ShardingCodec? _sharding;
    private readonly bool _writable;
    private readonly int _elementSize;
    private readonly long[] _shape;
    private readonly long[] _unitShape;      // one file: the chunk, or the shard
    private readonly long[] _chunkShape;     // what one decode yields: the chunk, or the shard's inner chunk
    private readonly int _chunkBytes;
    private readonly long _unitBytes;
    private readonly byte[] _fill;
    private readonly bool _rawChunks;        // a stored chunk is the chunk's own bytes: read into and written from place
    private readonly int _pathHash;
    private byte[]? _fillChunk;              // one chunk of fill values, to spot inner chunks a shard need not store

    private ZarrVolume(string arrayPath, ZarrArrayMeta? v2, ZarrV3ArrayMeta? v3, AxisOrder axes, VoxelSize voxelSize, bool writable)
    {
        _path = arrayPath;
        _v2 = v2;
        _v3 = v3;
        _sharding = v3?.Codecs.Sharding;
        _writable = writable;
        var type = v2?.DataType ?? v3!.DataType;
        double fill = v2?.FillValue ?? v3!.FillValue;
        _elementSize = type.SizeInBytes();
        _shape = v2?.Shape ?? v3!.Shape;
        _unitShape = (v2?.Chunks ?? v3!.GridChunks).Select(c => (long)c).ToArray();
        _chunkShape = _sharding?.InnerShape ?? _unitShape;
        long chunkBytes = _chunkShape.Aggregate((long)_elementSize, (a, b) => a * b);
        if (chunkBytes > Array.MaxLength)
            throw new VolumeException(arrayPath, $"storage chunks [{string.Join(", ", _chunkShape)}] hold {chunkBytes} bytes; at most {Array.MaxLength} are supported");
        _chunkBytes = (int)chunkBytes;
        _unitBytes = _unitShape.Aggregate((long)_elementSize, (a, b) => a * b);
        if (writable && _unitBytes > Array.MaxLength)
            throw new VolumeException(arrayPath, $"shards [{string.Join(", ", _unitShape)}] hold {_unitBytes} bytes; at most {Array.MaxLength} can be written");
        _fill = Scalars.Encode(fill, type);
        _rawChunks = _sharding?.Inner.IsRaw ?? v3?.Codecs.IsRaw ?? (v2!.Codec is NoCodec && (!v2.BigEndian || _elementSize == 1));
        _pathHash = StringComparer.Ordinal.GetHashCode(Path.GetFullPath(arrayPath));
        int[] chunks = _chunkShape.Select(c => (int)c).ToArray();
        Info = new VolumeInfo(arrayPath, VolumeFormat.Zarr, axes, _shape, type, chunks, voxelSize,
            v2?.Codec.Description ?? v3!.Codecs.Description, fill, _sharding is null ? null : v3!.GridChunks);
    }

    public VolumeInfo Info { get; }

    /// <summary>
    /// Opens the array or OME-Zarr image (level 0) at <paramref name="storePath"/>/<paramref name="innerPath"/>: Zarr v3
    /// when the directory has a zarr.json (an array, or a group with OME-NGFF 0.5 metadata), else Zarr v2 (.zarray, or a
    /// .zgroup with OME-NGFF 0.4 metadata).
    /// </summary>
    public static ZarrVolume Open(string storePath, string innerPath, AxisOrder? axes, bool writable)
    {
        string dir = Join(storePath, innerPath);
        if (!Directory.Exists(dir))
            throw new VolumeException(dir, File.Exists(dir) ? "is a file, not a Zarr store directory" : "does not exist");
        string? node = ZarrV3Json.NodeType(dir);
        if (node == "array" || (node is null && File.Exists(Path.Combine(dir, ".zarray"))))
        {
            var (v2, v3) = ReadArrayMeta(dir);
            long[] shape = v2?.Shape ?? v3!.Shape;
            var order = axes ?? (v2 is not null ? OmeNgff.ArrayDimensions(dir, shape.Length) : DimensionNames(v3!, shape.Length))
                ?? DefaultAxes(dir, shape.Length);
            CheckRank(dir, order, shape);
            return new ZarrVolume(dir, v2, v3, order, VoxelSize.Isotropic, writable);
        }
        if (node == "group" || (node is null && File.Exists(Path.Combine(dir, ".zgroup"))))
        {
            var image = node == "group" ? OmeNgff.ReadImageV3(dir) : OmeNgff.ReadImage(dir);
            var (v2, v3) = ReadArrayMeta(image.ArrayPath);
            long[] shape = v2?.Shape ?? v3!.Shape;
            if (image.AxisNames.Length != shape.Length)
                throw new VolumeException(image.ArrayPath, $"the multiscales metadata names {image.AxisNames.Length} axes ({string.Join(", ", image.AxisNames)}) but the array has {shape.Length} dimensions");
            var order = axes ?? image.Axes ?? throw new VolumeException(dir,
                $"axis names [{string.Join(", ", image.AxisNames)}] are not a subset of t, c, z, y, x; pass the axis order explicitly (--axes)");
            CheckRank(image.ArrayPath, order, shape);
            return new ZarrVolume(image.ArrayPath, v2, v3, order, image.VoxelSize, writable);
        }
        if (node is not null)
            throw new VolumeException(dir, $"zarr.json has node_type \"{node}\"; expected \"array\" or \"group\"");
        throw new VolumeException(dir, "is neither a Zarr array (no zarr.json or .zarray) nor a Zarr group (no zarr.json or .zgroup)");
    }

    /// <summary>
    /// Creates an OME-Zarr image with one level, "0", at <paramref name="storePath"/>/<paramref name="innerPath"/>: OME-NGFF
    /// 0.4 on Zarr v2, or OME-NGFF 0.5 on Zarr v3 when <see cref="VolumeCreateOptions.ZarrFormat"/> is 3.
    /// </summary>
    public static ZarrVolume Create(string storePath, string innerPath, VolumeCreateOptions options)
    {
        string imageDir = Join(storePath, innerPath);
        Validate(imageDir, options);
        bool v3 = options.ZarrFormat == 3;
        string ngff = v3 ? "OME-Zarr 0.5" : "OME-Zarr 0.4";
        if (!options.Axes.IsOmeOrder)
            throw new UsageException($"{imageDir}: {ngff} needs the axes in the order t, c, z, y, x; got \"{options.Axes}\" " +
                $"(use \"{options.Axes.ToOmeOrder()}\", or write an HDF5 dataset for other orders)");
        if (File.Exists(Path.Combine(imageDir, ".zarray")) || File.Exists(Path.Combine(imageDir, ".zattrs")) || Path.Exists(Path.Combine(imageDir, "0")) ||
            (ZarrV3Json.NodeType(imageDir) is { } node && (node != "group" || ZarrV3Json.GroupAttributes(imageDir).EnumerateObject().Any())))
            throw new VolumeException(imageDir, "already holds Zarr data; remove it or choose another path");
        string name = OmeNgff.ImageName(imageDir);
        if (v3) _ = ZarrV3Codecs.FromSpec(options.Codec, options.DataType, options.Chunks, options.ShardShape);   // refuse before writing anything
        try
        {
            // The store root and every group on the way down to the image get a .zgroup (v2) or a group zarr.json (v3).
            string current = storePath;
            var parts = innerPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (v3)
            {
                if (parts.Length > 0) EnsureGroupV3(current);
                for (int i = 0; i < parts.Length - 1; i++)
                    EnsureGroupV3(current = Path.Combine(current, parts[i]));
                Directory.CreateDirectory(imageDir);
                WriteAtomic(Path.Combine(imageDir, ZarrV3ArrayMeta.FileName), OmeNgff.ImageGroupV3(name, options));
            }
            else
            {
                EnsureGroup(current);
                foreach (string part in parts)
                    EnsureGroup(current = Path.Combine(current, part));
                WriteAtomic(Path.Combine(imageDir, ".zattrs"), OmeNgff.ImageAttributes(name, options));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(imageDir, $"cannot create the OME-Zarr image: {e.Message}", e);
        }
        string level = Path.Combine(imageDir, "0");
        return v3 ? CreateArrayV3Core(level, options, null, defaultKeys: true, '/') : CreateArrayCore(level, options, '/', arrayDimensions: false);
    }

    /// <summary>
    /// Creates level <paramref name="arrayPath"/> of a multiscale OME-Zarr image: an array like level "0" (no axis
    /// attributes of its own; the image group's multiscales name them), v2 or v3 as <paramref name="options"/> say.
    /// </summary>
    internal static ZarrVolume CreateLevelArray(string arrayPath, VolumeCreateOptions options)
    {
        Validate(arrayPath, options);
        return options.ZarrFormat == 3 ? CreateArrayV3Core(arrayPath, options, null, defaultKeys: true, '/')
            : CreateArrayCore(arrayPath, options, '/', arrayDimensions: false);
    }

    /// <summary>
    /// Creates a plain Zarr array in any axis order: v2 names the axes in xarray's _ARRAY_DIMENSIONS, v3 in
    /// dimension_names; <see cref="Open"/> reads either back. <paramref name="dimensionSeparator"/> is for v2 only.
    /// </summary>
    internal static ZarrVolume CreateArray(string arrayPath, VolumeCreateOptions options, char dimensionSeparator = '/')
    {
        Validate(arrayPath, options);
        if (options.ZarrFormat == 3) return CreateArrayV3Core(arrayPath, options, null, defaultKeys: true, '/');
        if (dimensionSeparator is not ('.' or '/'))
            throw new ArgumentOutOfRangeException(nameof(dimensionSeparator), dimensionSeparator, "must be '.' or '/'");
        return CreateArrayCore(arrayPath, options, dimensionSeparator, arrayDimensions: true);
    }

    /// <summary>
    /// Creates a plain Zarr v3 array with the codec list <paramref name="codecsJson"/> exactly as it should stand in
    /// zarr.json (null: the one <paramref name="options"/> asks for), and the "default" or the "v2" chunk key encoding.
    /// With a sharding_indexed codec, <see cref="VolumeCreateOptions.ShardShape"/> is the chunk grid.
    /// </summary>
    internal static ZarrVolume CreateArrayV3(string arrayPath, VolumeCreateOptions options, string? codecsJson = null,
        bool v2KeyEncoding = false, char separator = '/')
    {
        Validate(arrayPath, options with { ZarrFormat = 3 });
        if (separator is not ('.' or '/'))
            throw new ArgumentOutOfRangeException(nameof(separator), separator, "must be '.' or '/'");
        return CreateArrayV3Core(arrayPath, options, codecsJson, !v2KeyEncoding, separator);
    }

    private static ZarrVolume CreateArrayV3Core(string arrayPath, VolumeCreateOptions options, string? codecsJson, bool defaultKeys, char separator)
    {
        if (File.Exists(Path.Combine(arrayPath, ZarrV3ArrayMeta.FileName)) || File.Exists(Path.Combine(arrayPath, ".zarray")))
            throw new VolumeException(arrayPath, "already holds a Zarr array; remove it or choose another path");
        int[] grid = (int[])(options.ShardShape ?? options.Chunks).Clone();
        codecsJson ??= ZarrV3Codecs.FromSpec(options.Codec, options.DataType, options.Chunks, options.ShardShape);
        ZarrV3Codecs codecs;
        using (var doc = JsonDocument.Parse(codecsJson))
            codecs = ZarrV3Codecs.Parse(doc.RootElement, options.DataType, grid.Select(c => (long)c).ToArray(), arrayPath);
        var meta = new ZarrV3ArrayMeta((long[])options.Shape.Clone(), grid, options.DataType, options.FillValue, codecs,
            defaultKeys, separator, options.Axes.Names.Select(a => a.ToString()).ToArray(), "{}");
        try
        {
            Directory.CreateDirectory(arrayPath);
            WriteAtomic(Path.Combine(arrayPath, ZarrV3ArrayMeta.FileName), meta.ToJson());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(arrayPath, $"cannot create the Zarr array: {e.Message}", e);
        }
        return new ZarrVolume(arrayPath, null, meta, options.Axes, options.VoxelSize, writable: true);
    }

    private static ZarrVolume CreateArrayCore(string arrayPath, VolumeCreateOptions options, char separator, bool arrayDimensions)
    {
        if (File.Exists(Path.Combine(arrayPath, ".zarray")) || File.Exists(Path.Combine(arrayPath, ZarrV3ArrayMeta.FileName)))
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
        return new ZarrVolume(arrayPath, meta, null, options.Axes, options.VoxelSize, writable: true);
    }

    public void Read(NdBox box, Span<byte> destination)
    {
        CheckBox(box, destination.Length, nameof(destination));
        if (box.ElementCount == 0) return;
        int rank = box.Rank;
        Span<long> first = stackalloc long[rank], last = stackalloc long[rank], unit = stackalloc long[rank];
        Span<long> cFirst = stackalloc long[rank], cLast = stackalloc long[rank], index = stackalloc long[rank];
        Span<long> inChunk = stackalloc long[rank], inBox = stackalloc long[rank], overlap = stackalloc long[rank];
        GridRange(box, _unitShape, first, last);
        first.CopyTo(unit);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(_chunkBytes);
        ulong[]? shardIndex = _sharding is null ? null : ArrayPool<ulong>.Shared.Rent(2 * _sharding.InnerCount);
        try
        {
            var chunkSpan = chunk.AsSpan(0, _chunkBytes);
            do
            {
                string key = UnitKey(unit);
                if (_sharding is null)
                {
                    Overlap(box, unit, _unitShape, inChunk, inBox, overlap);
                    var target = ChunkTarget(destination, box.Shape, inBox, overlap, chunkSpan);
                    if (!LoadChunk(key, target))
                        Scalars.Fill(target, _fill);
                    if (target == chunkSpan)
                        Strided.CopyBox(chunkSpan, _chunkShape, inChunk, destination, box.Shape, inBox, overlap, _elementSize);
                    continue;
                }
                // A shard: its index once, then each inner chunk the box touches.
                using var handle = OpenUnit(key);
                var indexSpan = shardIndex.AsSpan(0, 2 * _sharding.InnerCount);
                if (handle is not null) ReadShardIndex(handle, key, indexSpan);
                GridRange(Intersect(box, unit, _unitShape), _chunkShape, cFirst, cLast);
                cFirst.CopyTo(index);
                do
                {
                    Overlap(box, index, _chunkShape, inChunk, inBox, overlap);
                    var target = ChunkTarget(destination, box.Shape, inBox, overlap, chunkSpan);
                    if (handle is null || !ReadInnerChunk(handle, key, indexSpan, InnerLinear(index, unit), target))
                        Scalars.Fill(target, _fill);
                    if (target == chunkSpan)
                        Strided.CopyBox(chunkSpan, _chunkShape, inChunk, destination, box.Shape, inBox, overlap, _elementSize);
                }
                while (Next(index, cFirst, cLast));
            }
            while (Next(unit, first, last));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
            if (shardIndex is not null) ArrayPool<ulong>.Shared.Return(shardIndex);
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
        Span<long> inUnit = stackalloc long[rank], inBox = stackalloc long[rank], overlap = stackalloc long[rank];
        GridRange(box, _unitShape, first, last);
        first.CopyTo(index);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(_chunkBytes);
        byte[]? unit = null;   // only for units the box covers in part or that reach past the array's edge
        try
        {
            var chunkSpan = chunk.AsSpan(0, _chunkBytes);
            do
            {
                bool whole = Overlap(box, index, _unitShape, inUnit, inBox, overlap);
                bool inside = overlap.SequenceEqual(_unitShape);   // the box covers the unit, which lies inside the array
                string key = UnitKey(index);
                lock (UnitLocks[LockIndex(index)])
                {
                    // Such a chunk is encoded straight from the source. (Shards are not: taking each inner chunk from the
                    // source measured ~5 % slower than copying the shard into the unit buffer first.)
                    if (inside && _sharding is null)
                    {
                        StoreChunk(key, ChunkSource(source, box.Shape, inBox, chunkSpan));
                        continue;
                    }
                    unit ??= ArrayPool<byte>.Shared.Rent((int)_unitBytes);
                    var unitSpan = unit.AsSpan(0, (int)_unitBytes);
                    // A unit the box covers need not be read, and is filled only where it reaches past the array's edge.
                    if (!inside && (whole || !LoadUnit(key, unitSpan)))
                        Scalars.Fill(unitSpan, _fill);
                    Strided.CopyBox(source, box.Shape, inBox, unitSpan, _unitShape, inUnit, overlap, _elementSize);
                    if (_sharding is null) StoreChunk(key, unitSpan);
                    else StoreShard(key, unitSpan, chunkSpan);
                }
            }
            while (Next(index, first, last));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
            if (unit is not null) ArrayPool<byte>.Shared.Return(unit);
        }
    }

    /// <summary>
    /// Where to decode a chunk whose part <paramref name="overlap"/> lands at <paramref name="inBox"/> of the box: straight
    /// into <paramref name="destination"/> when the chunk lies whole and contiguous in it, else into <paramref name="scratch"/>.
    /// </summary>
    private Span<byte> ChunkTarget(Span<byte> destination, ReadOnlySpan<long> boxShape, ReadOnlySpan<long> inBox, ReadOnlySpan<long> overlap, Span<byte> scratch) =>
        overlap.SequenceEqual(_chunkShape) && Strided.IsContiguous(boxShape, _chunkShape)
            ? destination.Slice(checked((int)(Strided.Offset(boxShape, inBox) * _elementSize)), _chunkBytes)
            : scratch;

    /// <summary>The chunk at <paramref name="start"/> of <paramref name="src"/>: in place where it lies contiguous there, else copied into <paramref name="scratch"/>.</summary>
    private ReadOnlySpan<byte> ChunkSource(ReadOnlySpan<byte> src, ReadOnlySpan<long> srcShape, ReadOnlySpan<long> start, Span<byte> scratch)
    {
        if (Strided.IsContiguous(srcShape, _chunkShape))
            return src.Slice(checked((int)(Strided.Offset(srcShape, start) * _elementSize)), _chunkBytes);
        Span<long> zero = stackalloc long[start.Length];
        zero.Clear();
        Strided.CopyBox(src, srcShape, start, scratch, _chunkShape, zero, _chunkShape, _elementSize);
        return scratch;
    }

    /// <summary>Nothing to do: every chunk and shard file is complete and renamed into place before Write returns.</summary>
    public void Flush() { }

    public void Dispose() { }

    private void CheckBox(NdBox box, int bufferLength, string bufferName)
    {
        if (box.Rank != _shape.Length)
            throw new VolumeException(_path, $"box {box} has {box.Rank} dimensions but the volume has {_shape.Length} ({Info.Axes})");
        if (!box.IsInside(_shape))
            throw new VolumeException(_path, $"box {box} is outside the volume of shape [{string.Join(", ", _shape)}]");
        long bytes = box.ElementCount * _elementSize;
        if (bufferLength < bytes)
            throw new ArgumentException($"{bufferName} holds {bufferLength} bytes; box {box} of {Info.DataType.Name()} needs {bytes}", bufferName);
    }

    private static void GridRange(NdBox box, ReadOnlySpan<long> cell, Span<long> first, Span<long> last)
    {
        for (int d = 0; d < box.Rank; d++)
        {
            first[d] = box.Start[d] / cell[d];
            last[d] = (box.Start[d] + box.Shape[d] - 1) / cell[d];
        }
    }

    /// <summary>The box ∩ grid cell <paramref name="index"/> (clipped to the array).</summary>
    private NdBox Intersect(NdBox box, ReadOnlySpan<long> index, ReadOnlySpan<long> cell)
    {
        var start = new long[box.Rank];
        var shape = new long[box.Rank];
        for (int d = 0; d < box.Rank; d++)
        {
            long cellStart = index[d] * cell[d];
            start[d] = Math.Max(box.Start[d], cellStart);
            shape[d] = Math.Min(box.Start[d] + box.Shape[d], Math.Min(cellStart + cell[d], _shape[d])) - start[d];
        }
        return new NdBox(start, shape);
    }

    /// <summary>The box ∩ grid cell, as corners in cell and box coordinates; true when it is the cell's whole in-array part.</summary>
    private bool Overlap(NdBox box, ReadOnlySpan<long> index, ReadOnlySpan<long> cell, Span<long> inCell, Span<long> inBox, Span<long> overlap)
    {
        bool whole = true;
        for (int d = 0; d < box.Rank; d++)
        {
            long cellStart = index[d] * cell[d];
            long cellEnd = Math.Min(cellStart + cell[d], _shape[d]);
            long start = Math.Max(box.Start[d], cellStart);
            long end = Math.Min(box.Start[d] + box.Shape[d], cellEnd);
            inCell[d] = start - cellStart;
            inBox[d] = start - box.Start[d];
            overlap[d] = end - start;
            whole &= start == cellStart && end == cellEnd;
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

    /// <summary>The file key of a chunk (unsharded) or shard: v2 "0.1.2" / "0/1/2", v3 "c/0/1/2" / "0.1.2".</summary>
    private string UnitKey(ReadOnlySpan<long> index)
    {
        if (_v3 is not null) return _v3.ChunkKey(index);
        var key = new StringBuilder(index.Length * 4);
        for (int d = 0; d < index.Length; d++)
        {
            if (d > 0) key.Append(_v2!.Separator);
            key.Append(index[d]);
        }
        return key.ToString();
    }

    /// <summary>C-order position, inside shard <paramref name="shard"/>, of the inner chunk at global grid index <paramref name="chunk"/>.</summary>
    private int InnerLinear(ReadOnlySpan<long> chunk, ReadOnlySpan<long> shard)
    {
        var perShard = _sharding!.ChunksPerShard;
        long linear = 0;
        for (int d = 0; d < chunk.Length; d++)
            linear = linear * perShard[d] + (chunk[d] - shard[d] * perShard[d]);
        return (int)linear;
    }

    private int LockIndex(ReadOnlySpan<long> index)
    {
        int hash = _pathHash;
        foreach (long i in index) hash = HashCode.Combine(hash, i);
        return (int)((uint)hash % (uint)UnitLocks.Length);
    }

    /// <summary>Opens the file of chunk or shard <paramref name="key"/> for reading; null when it does not exist.</summary>
    private SafeFileHandle? OpenUnit(string key)
    {
        try
        {
            return File.OpenHandle(Path.Combine(_path, key), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(_path, $"cannot read {UnitNoun} {key}: {e.Message}", e);
        }
    }

    private string UnitNoun => _sharding is null ? "chunk" : "shard";

    private void ReadAt(SafeFileHandle handle, string key, Span<byte> buffer, long offset)
    {
        try
        {
            int read = 0;
            while (read < buffer.Length)
            {
                int n = RandomAccess.Read(handle, buffer[read..], offset + read);
                if (n == 0)
                    throw new VolumeException(_path, $"{UnitNoun} {key} is corrupt: it ends at {offset + read} bytes, expected {buffer.Length} bytes from {offset}");
                read += n;
            }
        }
        catch (IOException e)
        {
            throw new VolumeException(_path, $"cannot read {UnitNoun} {key}: {e.Message}", e);
        }
    }

    /// <summary>Decodes chunk <paramref name="key"/> into <paramref name="chunk"/> (little-endian); false when its file is missing.</summary>
    private bool LoadChunk(string key, Span<byte> chunk)
    {
        using var handle = OpenUnit(key);
        if (handle is null) return false;
        long length = RandomAccess.GetLength(handle);
        if (length > Array.MaxLength)
            throw new VolumeException(_path, $"chunk {key} is corrupt: its file has {length} bytes");
        if (_rawChunks)
        {
            if (length != chunk.Length)
                throw new VolumeException(_path, $"chunk {key} is corrupt: uncompressed chunk has {length} bytes, expected {chunk.Length}");
            ReadAt(handle, key, chunk, 0);
            return true;
        }
        byte[] compressed = ArrayPool<byte>.Shared.Rent((int)length);
        try
        {
            var bytes = compressed.AsSpan(0, (int)length);
            ReadAt(handle, key, bytes, 0);
            if (_v3 is not null)
                _v3.Codecs.Decode(bytes, chunk);
            else
            {
                _v2!.Codec.Decode(bytes, chunk);
                if (_v2.BigEndian) Strided.SwapBytes(chunk, _elementSize);
            }
        }
        catch (InvalidDataException e)
        {
            throw new VolumeException(_path, $"chunk {key} is corrupt: {e.Message}", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
        return true;
    }

    /// <summary>Decodes a whole unit (chunk or shard) for a read-modify-write; false when its file is missing.</summary>
    private bool LoadUnit(string key, Span<byte> unit)
    {
        if (_sharding is null) return LoadChunk(key, unit);
        using var handle = OpenUnit(key);
        if (handle is null) return false;
        var index = new ulong[2 * _sharding.InnerCount];
        ReadShardIndex(handle, key, index);
        Scalars.Fill(unit, _fill);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(_chunkBytes);
        try
        {
            var chunkSpan = chunk.AsSpan(0, _chunkBytes);
            int rank = _unitShape.Length;
            Span<long> local = stackalloc long[rank], corner = stackalloc long[rank], zero = stackalloc long[rank];
            local.Clear();
            zero.Clear();
            for (int i = 0; i < _sharding.InnerCount; i++, Odometer(local, _sharding.ChunksPerShard))
            {
                for (int d = 0; d < rank; d++) corner[d] = local[d] * _chunkShape[d];
                var target = ChunkTarget(unit, _unitShape, corner, _chunkShape, chunkSpan);
                if (ReadInnerChunk(handle, key, index, i, target) && target == chunkSpan)
                    Strided.CopyBox(chunkSpan, _chunkShape, zero, unit, _unitShape, corner, _chunkShape, _elementSize);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        return true;
    }

    private static void Odometer(Span<long> index, ReadOnlySpan<long> shape)
    {
        for (int d = index.Length - 1; d >= 0; d--)
        {
            if (++index[d] < shape[d]) return;
            index[d] = 0;
        }
    }

    /// <summary>Reads and checks the index of shard <paramref name="key"/>: (offset, nbytes) per inner chunk, in C order.</summary>
    private void ReadShardIndex(SafeFileHandle handle, string key, Span<ulong> index)
    {
        var s = _sharding!;
        long length = RandomAccess.GetLength(handle);
        string file = Path.Combine(_path, key);
        if (length < s.IndexBytes)
            throw new VolumeException(_path, $"shard {key} is corrupt: {file} has {length} bytes, fewer than its index needs ({s.IndexBytes})");
        byte[] encoded = ArrayPool<byte>.Shared.Rent(s.IndexBytes);
        try
        {
            var bytes = encoded.AsSpan(0, s.IndexBytes);
            ReadAt(handle, key, bytes, s.IndexAtStart ? 0 : length - s.IndexBytes);
            s.Index.Decode(bytes, MemoryMarshal.AsBytes(index));
        }
        catch (InvalidDataException e)
        {
            throw new VolumeException(_path, $"shard {key} is corrupt: the index of {file} fails its check ({e.Message})", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(encoded);
        }
        for (int i = 0; i < s.InnerCount; i++)
        {
            ulong offset = index[2 * i], nbytes = index[2 * i + 1];
            if (offset == ShardingCodec.Missing && nbytes == ShardingCodec.Missing) continue;
            if (offset > (ulong)length || nbytes > (ulong)length - offset || nbytes > (ulong)Array.MaxLength)
                throw new VolumeException(_path, $"shard {key} is corrupt: the index of {file} puts inner chunk {i} at bytes {offset}..{offset + nbytes} of a {length}-byte file");
        }
    }

    /// <summary>Decodes inner chunk <paramref name="inner"/> (C order in the shard) into <paramref name="chunk"/>; false when the index marks it absent.</summary>
    private bool ReadInnerChunk(SafeFileHandle handle, string key, ReadOnlySpan<ulong> index, int inner, Span<byte> chunk)
    {
        ulong offset = index[2 * inner], nbytes = index[2 * inner + 1];
        if (offset == ShardingCodec.Missing && nbytes == ShardingCodec.Missing) return false;
        if (_rawChunks)
        {
            if (nbytes != (ulong)chunk.Length)
                throw new VolumeException(_path, $"shard {key} is corrupt: inner chunk {inner} of {Path.Combine(_path, key)} has {nbytes} bytes, expected {chunk.Length}");
            ReadAt(handle, key, chunk, (long)offset);
            return true;
        }
        byte[] encoded = ArrayPool<byte>.Shared.Rent((int)nbytes);
        try
        {
            var bytes = encoded.AsSpan(0, (int)nbytes);
            ReadAt(handle, key, bytes, (long)offset);
            _sharding!.Inner.Decode(bytes, chunk);
        }
        catch (InvalidDataException e)
        {
            throw new VolumeException(_path, $"shard {key} is corrupt: inner chunk {inner} of {Path.Combine(_path, key)}: {e.Message}", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(encoded);
        }
        return true;
    }

    /// <summary>Encodes <paramref name="chunk"/> and renames it into place.</summary>
    private void StoreChunk(string key, ReadOnlySpan<byte> chunk)
    {
        if (_rawChunks)
        {
            WriteUnitFile(key, chunk);
            return;
        }
        using var encoded = _v3 is not null ? _v3.Codecs.Encode(chunk) : EncodeV2(chunk);
        WriteUnitFile(key, encoded.Span);
    }

    private PooledBuffer EncodeV2(ReadOnlySpan<byte> chunk)
    {
        if (!_v2!.BigEndian) return _v2.Codec.Encode(chunk, _elementSize);
        byte[] swapped = ArrayPool<byte>.Shared.Rent(chunk.Length);
        try
        {
            var span = swapped.AsSpan(0, chunk.Length);
            chunk.CopyTo(span);
            Strided.SwapBytes(span, _elementSize);
            return _v2.Codec.Encode(span, _elementSize);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(swapped);
        }
    }

    /// <summary>
    /// Encodes a whole shard: its inner chunks in C order, each skipped (index entries 2⁶⁴-1) when it equals the fill
    /// value, then the index. A shard with no stored chunk has no file: an existing one is deleted.
    /// </summary>
    private void StoreShard(string key, ReadOnlySpan<byte> unit, Span<byte> scratch)
    {
        var s = _sharding!;
        var index = new ulong[2 * s.InnerCount];
        // Unencoded inner chunks make a shard of known size: no regrowing of the buffer.
        var output = new PooledBufferStream(_rawChunks ? (int)Math.Min(_unitBytes + s.IndexBytes, Array.MaxLength) : _chunkBytes);
        try
        {
            _fillChunk ??= FillChunk();
            if (s.IndexAtStart) output.Write(new byte[s.IndexBytes]);
            int rank = _unitShape.Length, stored = 0;
            Span<long> local = stackalloc long[rank], corner = stackalloc long[rank];
            local.Clear();
            for (int i = 0; i < s.InnerCount; i++, Odometer(local, s.ChunksPerShard))
            {
                for (int d = 0; d < rank; d++) corner[d] = local[d] * _chunkShape[d];
                var chunk = ChunkSource(unit, _unitShape, corner, scratch);
                if (chunk.SequenceEqual(_fillChunk))
                {
                    index[2 * i] = index[2 * i + 1] = ShardingCodec.Missing;
                    continue;
                }
                index[2 * i] = (ulong)output.Length;
                if (_rawChunks) output.Write(chunk);
                else
                {
                    using var encoded = s.Inner.Encode(chunk);
                    output.Write(encoded.Span);
                }
                index[2 * i + 1] = (ulong)output.Length - index[2 * i];
                stored++;
            }
            if (stored == 0)
            {
                DeleteUnitFile(key);
                return;
            }
            using var encodedIndex = s.Index.Encode(MemoryMarshal.AsBytes(index.AsSpan()));
            if (!s.IndexAtStart) output.Write(encodedIndex.Span);
            using var file = output.Detach();
            if (s.IndexAtStart) encodedIndex.Span.CopyTo(file.Array);
            WriteUnitFile(key, file.Span);
        }
        finally
        {
            output.Dispose();
        }
    }

    private byte[] FillChunk()
    {
        var fill = new byte[_chunkBytes];
        Scalars.Fill(fill, _fill);
        return fill;
    }

    private void WriteUnitFile(string key, ReadOnlySpan<byte> content)
    {
        string file = Path.Combine(_path, key);
        try
        {
            if (key.Contains('/')) Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            WriteAtomic(file, content);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(_path, $"cannot write {UnitNoun} {key}: {e.Message}", e);
        }
    }

    private void DeleteUnitFile(string key)
    {
        try
        {
            File.Delete(Path.Combine(_path, key));
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(_path, $"cannot delete the empty {UnitNoun} {key}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Deletes the temporary files of writers killed mid-write (<c>KEY.tmp-GUID</c>, see <see cref="WriteAtomic"/>) below
    /// <paramref name="root"/>. Called when a staged store is committed (every chunk recorded, so no live writer owns one;
    /// a straggler that still renames its file after the store moved fails, and its chunk is recorded already).
    /// </summary>
    internal static void RemoveTemporaryFiles(string root)
    {
        if (!Directory.Exists(root)) return;
        foreach (string file in Directory.EnumerateFiles(root, "*" + TempMarker + "*", SearchOption.AllDirectories))
        {
            string name = Path.GetFileName(file);
            int at = name.LastIndexOf(TempMarker, StringComparison.Ordinal);
            if (at > 0 && name.Length - at - TempMarker.Length == 32 && !name.AsSpan(at + TempMarker.Length).ContainsAnyExcept("0123456789abcdef"))
            {
                try { File.Delete(file); }
                catch (IOException) { }   // gone already
            }
        }
    }

    private const string TempMarker = ".tmp-";

    /// <summary>Writes a temporary file beside <paramref name="file"/> and renames it over the target.</summary>
    internal static void WriteAtomic(string file, ReadOnlySpan<byte> content)
    {
        string temp = $"{file}{TempMarker}{Guid.NewGuid():N}";
        try
        {
            // FileShare.Read: the name is unique already, and FileShare.None would cost an flock pair per file.
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.Read))
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

    /// <summary>The metadata of the array at <paramref name="arrayPath"/>: zarr.json (v3) or .zarray (v2).</summary>
    private static (ZarrArrayMeta? V2, ZarrV3ArrayMeta? V3) ReadArrayMeta(string arrayPath)
    {
        bool v3 = File.Exists(Path.Combine(arrayPath, ZarrV3ArrayMeta.FileName));
        string name = v3 ? ZarrV3ArrayMeta.FileName : ".zarray";
        byte[] json;
        try
        {
            json = File.ReadAllBytes(Path.Combine(arrayPath, name));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(arrayPath, $"cannot read {name}: {e.Message}", e);
        }
        return v3 ? (null, ZarrV3ArrayMeta.Parse(arrayPath, json)) : (ZarrArrayMeta.Parse(arrayPath, json), null);
    }

    /// <summary>Axes from a v3 array's dimension_names, or null when absent or not one letter per axis from t, c, z, y, x.</summary>
    private static AxisOrder? DimensionNames(ZarrV3ArrayMeta meta, int rank)
    {
        if (meta.DimensionNames is not { } names || names.Length != rank || names.Any(n => n.Length != 1)) return null;
        try
        {
            return AxisOrder.Parse(string.Concat(names));
        }
        catch (ArgumentException)
        {
            return null;   // a hint only: the caller falls back to the default for the rank
        }
    }

    private static void EnsureGroupV3(string dir)
    {
        if (File.Exists(Path.Combine(dir, ".zarray")) || ZarrV3Json.NodeType(dir) == "array")
            throw new VolumeException(dir, "is a Zarr array; a group cannot be created inside it");
        Directory.CreateDirectory(dir);
        if (!File.Exists(Path.Combine(dir, ZarrV3ArrayMeta.FileName)))
            WriteAtomic(Path.Combine(dir, ZarrV3ArrayMeta.FileName), ZarrV3Json.Group());
    }

    private static void EnsureGroup(string dir)
    {
        if (File.Exists(Path.Combine(dir, ".zarray")) || ZarrV3Json.NodeType(dir) == "array")
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

    private static void CheckRank(string path, AxisOrder axes, long[] shape)
    {
        if (axes.Rank != shape.Length)
            throw new VolumeException(path, $"axes \"{axes}\" have rank {axes.Rank} but the array has rank {shape.Length} (shape [{string.Join(", ", shape)}])");
    }

    private static string Join(string storePath, string innerPath) =>
        innerPath.Length == 0 ? storePath : Path.Combine(storePath, innerPath.Trim('/'));
}
