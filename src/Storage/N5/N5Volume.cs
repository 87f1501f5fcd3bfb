using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.N5;

/// <summary>
/// An N5 dataset (https://github.com/saalfeldlab/n5#file-system-specification), read-only, one block at a time.
/// <para>
/// <b>Layout.</b> A container is a folder tree; every group and dataset folder has an <c>attributes.json</c>, and a
/// dataset's one says <c>dimensions</c>, <c>blockSize</c>, <c>dataType</c> and <c>compression</c>. N5 lists dimensions
/// x first, Java/ImgLib2 style; ChunkSeg's order is the reverse (z, y, x: x fastest), and so are the block paths:
/// <code>
///   attributes.json  {"dimensions": [X, Y, Z], "blockSize": [bx, by, bz], ...}   ChunkSeg shape: [Z, Y, X]
///
///   dataset/i/j/k    block with x index i, y index j, z index k (the ChunkSeg block index (k, j, i))
///   ┌────────┬────────┬────────┬────────┬────────┬───────┬──────────────────────────────────────────┐
///   │ mode   │ ndim   │ size x │ size y │ size z │ [n]   │ data, compressed as a whole: the values, │
///   │ u16 BE │ u16 BE │ u32 BE │ u32 BE │ u32 BE │ u32 BE│ x fastest, big-endian; n = sx·sy·sz      │
///   └────────┴────────┴────────┴────────┴────────┴───────┴──────────────────────────────────────────┘
///                                               [n] only in mode 1 (varlength)
///
///   x ─▶  ┌──────┬──────┬───┐   edge blocks: the header says the smaller size inside the dataset
///   y     │ full │ full │▒▒▒│   (Java N5), or the full block size with padding (zarr-python's N5Store,
///   ▼     ├──────┼──────┼───┤   tensorstore); both are read. A missing block file reads as 0.
///         │ full │  ⨯   │▒▒▒│   ⨯ = no file
///         └──────┴──────┴───┘
/// </code>
/// Because N5 stores x fastest and names x first, a block's bytes are already in C order over ChunkSeg's reversed
/// shape; reading is decode → swap to little-endian → copy the block's overlap with the box. <c>Read(box)</c>
/// opens only the blocks the box touches; memory beyond the box is one block and its compressed file.
/// </para>
/// <para>
/// <b>Threads.</b> Nothing is shared between reads: each opens its own file handles and rents its own buffers, so any
/// number of threads may read at once. N5 is input only: <see cref="Write"/> refuses.
/// </para>
/// </summary>
internal sealed class N5Volume : IVolume
{
    private readonly string _dir;
    private readonly N5DatasetMeta _meta;
    private readonly long[] _blockShape;
    private readonly int _elementSize;
    private readonly int _blockBytes;

    private N5Volume(string dir, N5DatasetMeta meta, AxisOrder axes, VoxelSize voxelSize)
    {
        _dir = dir;
        _meta = meta;
        _elementSize = meta.DataType.SizeInBytes();
        _blockShape = meta.BlockSize.Select(b => (long)b).ToArray();
        long blockBytes = _blockShape.Aggregate((long)_elementSize, (a, b) => a * b);
        if (blockBytes > Array.MaxLength)
            throw new VolumeException(Path.Combine(dir, N5DatasetMeta.AttributesFile),
                $"blockSize [{string.Join(", ", meta.BlockSize.Reverse())}] holds {blockBytes} bytes; at most {Array.MaxLength} are supported");
        _blockBytes = (int)blockBytes;
        Info = new VolumeInfo(dir, VolumeFormat.N5, axes, meta.Shape, meta.DataType, meta.BlockSize, voxelSize,
            meta.Codec is Codecs.NoCodec ? "raw" : meta.Codec.Description, 0);
    }

    public VolumeInfo Info { get; }

    /// <summary>
    /// Opens the dataset <paramref name="innerPath"/> of the container at <paramref name="rootPath"/> (an empty inner
    /// path: the root is itself a dataset). Axes: the caller's, else the "axes" attribute, else the default for the rank.
    /// </summary>
    public static N5Volume Open(string rootPath, string innerPath, AxisOrder? axes, bool writable)
    {
        string dir = innerPath.Length == 0 ? rootPath : Path.Combine(rootPath, innerPath.Trim('/'));
        if (writable)
            throw new VolumeException(dir, "ChunkSeg reads N5; write Zarr or HDF5");
        if (!Directory.Exists(dir))
            throw new VolumeException(dir, File.Exists(dir) ? "is a file, not an N5 dataset folder" : "does not exist");
        CheckVersion(rootPath);
        var attributes = N5DatasetMeta.ReadAttributes(dir);
        if (!N5DatasetMeta.IsDataset(attributes))
        {
            var inside = DatasetsBelow(dir, 8);
            throw new VolumeException(dir, "is an N5 group, not a dataset (its attributes.json has no \"dimensions\")" + (inside.Count == 0
                ? "; it holds no datasets"
                : $"; name a dataset inside it, e.g. {string.Join(", ", inside.Select(d => $"{rootPath.TrimEnd('/')}/{Path.GetRelativePath(rootPath, d).Replace('\\', '/')}"))}"));
        }
        var meta = N5DatasetMeta.Parse(dir, attributes);
        AxisOrder order;
        try
        {
            order = axes ?? meta.Axes ?? AxisOrder.DefaultForRank(meta.Shape.Length);
        }
        catch (ArgumentException e)
        {
            throw new VolumeException(dir, e.Message, e);
        }
        if (order.Rank != meta.Shape.Length)
            throw new VolumeException(dir, $"axes \"{order}\" have rank {order.Rank} but the dataset has rank {meta.Shape.Length} (shape [{string.Join(", ", meta.Shape)}] in z, y, x order)");
        return new N5Volume(dir, meta, order, N5DatasetMeta.ReadVoxelSize(rootPath, dir, attributes, order));
    }

    public void Read(NdBox box, Span<byte> destination)
    {
        CheckBox(box, destination.Length);
        if (box.ElementCount == 0) return;
        int rank = box.Rank;
        Span<long> first = stackalloc long[rank], last = stackalloc long[rank], index = stackalloc long[rank];
        Span<long> inBlock = stackalloc long[rank], inBox = stackalloc long[rank], overlap = stackalloc long[rank];
        Span<long> stored = stackalloc long[rank];
        for (int d = 0; d < rank; d++)
        {
            first[d] = box.Start[d] / _blockShape[d];
            last[d] = (box.Start[d] + box.Shape[d] - 1) / _blockShape[d];
        }
        first.CopyTo(index);
        byte[] block = ArrayPool<byte>.Shared.Rent(_blockBytes);
        try
        {
            do
            {
                Overlap(box, index, inBlock, inBox, overlap);
                if (LoadBlock(index, block, stored))
                    Strided.CopyBox(block, stored, inBlock, destination, box.Shape, inBox, overlap, _elementSize);
                else
                {
                    // N5 has no fill value: a block that was never written reads as 0.
                    block.AsSpan(0, _blockBytes).Clear();
                    Strided.CopyBox(block, _blockShape, inBlock, destination, box.Shape, inBox, overlap, _elementSize);
                }
            }
            while (Next(index, first, last));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(block);
        }
    }

    public void Write(NdBox box, ReadOnlySpan<byte> source) =>
        throw new VolumeException(_dir, "ChunkSeg reads N5; write Zarr or HDF5");

    public void Flush() { }

    public void Dispose() { }

    private void CheckBox(NdBox box, int bufferLength)
    {
        if (box.Rank != _meta.Shape.Length)
            throw new VolumeException(_dir, $"box {box} has {box.Rank} dimensions but the dataset has {_meta.Shape.Length} ({Info.Axes})");
        if (!box.IsInside(_meta.Shape))
            throw new VolumeException(_dir, $"box {box} is outside the dataset of shape [{string.Join(", ", _meta.Shape)}]");
        long bytes = box.ElementCount * _elementSize;
        if (bufferLength < bytes)
            throw new ArgumentException($"destination holds {bufferLength} bytes; box {box} of {Info.DataType.Name()} needs {bytes}", "destination");
    }

    /// <summary>The box ∩ block, as corners in block and box coordinates.</summary>
    private void Overlap(NdBox box, ReadOnlySpan<long> index, Span<long> inBlock, Span<long> inBox, Span<long> overlap)
    {
        for (int d = 0; d < box.Rank; d++)
        {
            long blockStart = index[d] * _blockShape[d];
            long start = Math.Max(box.Start[d], blockStart);
            long end = Math.Min(box.Start[d] + box.Shape[d], Math.Min(blockStart + _blockShape[d], _meta.Shape[d]));
            inBlock[d] = start - blockStart;
            inBox[d] = start - box.Start[d];
            overlap[d] = end - start;
        }
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

    /// <summary>dataset/i/j/k: the x index first, as N5 names blocks.</summary>
    private string BlockPath(ReadOnlySpan<long> index)
    {
        var path = new StringBuilder(_dir, _dir.Length + index.Length * 4);
        for (int d = index.Length - 1; d >= 0; d--)
            path.Append(Path.DirectorySeparatorChar).Append(index[d]);
        return path.ToString();
    }

    /// <summary>
    /// Decodes block <paramref name="index"/> into <paramref name="block"/> (little-endian, C order over
    /// <paramref name="stored"/>, the block's size as its header says it in z, y, x order); false when its file is missing.
    /// </summary>
    private bool LoadBlock(ReadOnlySpan<long> index, byte[] block, Span<long> stored)
    {
        string file = BlockPath(index);
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
            throw new VolumeException(file, $"cannot read the N5 block: {e.Message}", e);
        }
        byte[]? bytes = null;
        try
        {
            int length;
            using (handle)
            {
                long fileLength = RandomAccess.GetLength(handle);
                if (fileLength > Array.MaxLength)
                    throw new VolumeException(file, $"N5 block is corrupt: its file has {fileLength} bytes");
                bytes = ArrayPool<byte>.Shared.Rent((int)fileLength);
                length = 0;
                while (length < fileLength)
                {
                    int n = RandomAccess.Read(handle, bytes.AsSpan(length, (int)fileLength - length), length);
                    if (n == 0) break;
                    length += n;
                }
            }
            int payload = ParseHeader(file, bytes.AsSpan(0, length), index, stored, out int elements);
            var data = block.AsSpan(0, elements * _elementSize);
            var compressed = bytes.AsSpan(payload, length - payload);
            if (_meta.Codec is Codecs.NoCodec)
            {
                // Raw: the values follow the header; trailing bytes are ignored, as Java's N5 reader does.
                if (compressed.Length < data.Length)
                    throw new InvalidDataException($"truncated: the header promises {data.Length} bytes of data, the file holds {compressed.Length}");
                compressed[..data.Length].CopyTo(data);
            }
            else
                _meta.Codec.Decode(compressed, data);
            if (_elementSize > 1 && BitConverter.IsLittleEndian) Strided.SwapBytes(data, _elementSize);
            return true;
        }
        catch (InvalidDataException e)
        {
            throw new VolumeException(file, $"N5 block is corrupt ({_meta.CodecName}): {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new VolumeException(file, $"cannot read the N5 block: {e.Message}", e);
        }
        finally
        {
            if (bytes is not null) ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>
    /// Checks the block header against the grid and returns where the data starts. Each size must be the block's extent
    /// inside the dataset or the full block size (padded edge blocks); varlength (mode 1) must count exactly that many values.
    /// </summary>
    private int ParseHeader(string file, ReadOnlySpan<byte> bytes, ReadOnlySpan<long> index, Span<long> stored, out int elements)
    {
        int rank = _meta.Shape.Length;
        if (bytes.Length < 4)
            throw new VolumeException(file, $"N5 block is truncated: {bytes.Length} bytes, shorter than its header");
        int mode = BinaryPrimitives.ReadUInt16BigEndian(bytes);
        int ndim = BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]);
        if (mode == 2)
            throw new VolumeException(file, "N5 block has mode 2 (serialized object), which ChunkSeg cannot read as voxels");
        if (mode > 2)
            throw new VolumeException(file, $"N5 block header has mode {mode}; expected 0 (default) or 1 (varlength)");
        if (ndim != rank)
            throw new VolumeException(file, $"N5 block header has {ndim} dimensions but the dataset has {rank}");
        int headerBytes = 4 + 4 * ndim + (mode == 1 ? 4 : 0);
        if (bytes.Length < headerBytes)
            throw new VolumeException(file, $"N5 block is truncated: {bytes.Length} bytes, shorter than its {headerBytes}-byte header");
        long count = 1;
        bool fits = true;
        Span<long> expected = stackalloc long[rank];
        for (int n = 0; n < ndim; n++)
        {
            int d = rank - 1 - n;   // header sizes are x first
            stored[d] = BinaryPrimitives.ReadUInt32BigEndian(bytes[(4 + 4 * n)..]);
            expected[d] = Math.Min(_blockShape[d], _meta.Shape[d] - index[d] * _blockShape[d]);
            fits &= stored[d] == expected[d] || stored[d] == _blockShape[d];
            count *= stored[d];
        }
        if (!fits)
            throw new VolumeException(file, $"N5 block header says size [{string.Join(", ", Reversed(stored))}] (x first) but the block grid " +
                $"expects [{string.Join(", ", Reversed(expected))}] or the full blockSize [{string.Join(", ", Reversed(_blockShape))}]");
        if (mode == 1)
        {
            uint n = BinaryPrimitives.ReadUInt32BigEndian(bytes[(4 + 4 * ndim)..]);
            if (n != count)
                throw new VolumeException(file, $"N5 varlength block holds {n} values but its size [{string.Join(", ", Reversed(stored))}] needs {count}");
        }
        elements = (int)count;
        return headerBytes;
    }

    private static long[] Reversed(ReadOnlySpan<long> values)
    {
        var r = values.ToArray();
        Array.Reverse(r);
        return r;
    }

    /// <summary>Refuses containers whose "n5" version is newer than the 4.x this reader follows (earlier ones share the block format).</summary>
    private static void CheckVersion(string rootPath)
    {
        if (N5DatasetMeta.TryReadAttributes(rootPath) is not { } root) return;
        if (!root.TryGetProperty("n5", out var v) || v.ValueKind != JsonValueKind.String) return;
        string version = v.GetString()!;
        if (int.TryParse(version.Split('.')[0], out int major) && major > 4)
            throw new VolumeException(Path.Combine(rootPath, N5DatasetMeta.AttributesFile), $"N5 version {version} is newer than this reader (N5 up to 4.x)");
    }

    /// <summary>Up to <paramref name="max"/> dataset folders below <paramref name="dir"/>, breadth first, for an error message.</summary>
    private static List<string> DatasetsBelow(string dir, int max)
    {
        var found = new List<string>();
        var queue = new Queue<(string Dir, int Depth)>([(dir, 0)]);
        while (queue.Count > 0 && found.Count < max)
        {
            var (current, depth) = queue.Dequeue();
            IEnumerable<string> children;
            try { children = Directory.EnumerateDirectories(current).Order(StringComparer.Ordinal).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (string child in children)
            {
                var attrs = File.Exists(Path.Combine(child, N5DatasetMeta.AttributesFile)) ? TryAttributes(child) : null;
                if (attrs is { } a && N5DatasetMeta.IsDataset(a)) found.Add(child);
                else if (attrs is not null && depth < 4) queue.Enqueue((child, depth + 1));
                if (found.Count >= max) break;
            }
        }
        return found;
    }

    private static JsonElement? TryAttributes(string dir)
    {
        try { return N5DatasetMeta.ReadAttributes(dir); }
        catch (VolumeException) { return null; }
    }
}
