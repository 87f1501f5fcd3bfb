using System.IO.Compression;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using PureHDF;
using PureHDF.Filters;
using PureHDF.Selections;
using PureHDF.VOL.Native;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// A new HDF5 file holding one chunked dataset, written through PureHDF in one pass:
/// <code>
///   Create ──▶ file header, groups, dataset (shape, chunks, shuffle + gzip, axistags, element_size_um)
///   Write(box) ──▶ each chunk the box covers is filled in a small cache
///                    └─ a full chunk ──▶ shuffle + deflate on the thread pool ──▶ PureHDF writes it, oldest first
///   Dispose ──▶ the chunks still cached are written, then the chunk index: the file is complete only now
/// </code>
/// PureHDF runs a chunk's filters inside its chunk writer, on the calling thread, one chunk at a time, and deflate
/// is nearly all of a write's time; so completed chunks are compressed ahead, in parallel, by the same filters
/// (PureHDF's shuffle, then <see cref="DeflateFilter"/>), and when PureHDF's writer later runs the pipeline the
/// deflate step hands over the bytes already made (<see cref="DeflateFilter.Ahead"/>) instead of compressing again.
/// PureHDF writes a chunk once and cannot edit a file afterwards, so this is a stream, not a random-access store:
/// chunks must be completed while they are in the cache (<see cref="CacheChunks"/> chunks, least recently used ones
/// written first). ChunkSeg's outputs satisfy that by construction: a job stages its results as Zarr and writes the
/// HDF5 file from them at commit, chunk after chunk (<see cref="StagedOutput"/>); a box written again after its chunk
/// left the cache is refused. Until disposed, the file is incomplete: an interrupted write leaves a file that is
/// rewritten, never trusted.
/// </summary>
internal sealed class Hdf5Writer : IVolume
{
    /// <summary>Chunks held in memory before the least recently used is written.</summary>
    public const int CacheChunks = 64;

    static Hdf5Writer() => H5Filter.Register(new DeflateFilter());

    private readonly Lock _lock = new();
    private readonly TypedDataset _dataset;
    private readonly EvictingWriteCache _cache;
    private readonly H5NativeWriter _writer;
    private bool _disposed;

    private Hdf5Writer(VolumeInfo info, TypedDataset dataset, EvictingWriteCache cache, H5NativeWriter writer)
    {
        Info = info;
        _dataset = dataset;
        _cache = cache;
        _writer = writer;
    }

    public VolumeInfo Info { get; }

    public static Hdf5Writer Create(string filePath, string datasetPath, VolumeCreateOptions options)
    {
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
        if (options.Codec.Name != "none" && options.Codec.Level is < 1 or > 9)
            throw new UsageException($"HDF5 gzip levels are 1 to 9; got {options.Codec}");
        string name = datasetPath.Trim('/');
        if (name.Length == 0)
            throw new UsageException($"{filePath}: HDF5 output needs a dataset path inside the file, e.g. {filePath}/exported_data");
        string location = $"{filePath}/{name}";
        if (File.Exists(filePath))
            throw new VolumeException(filePath, $"already exists; ChunkSeg writes an HDF5 file whole and cannot add {name} to an existing one " +
                "(PureHDF cannot edit files): write it to a new file, or delete this one first");
        string? parent = Path.GetDirectoryName(Path.GetFullPath(filePath));
        if (parent is not null) Directory.CreateDirectory(parent);

        int rank = options.Shape.Length;
        var chunks = options.Chunks.Select((c, d) => (uint)Math.Max(1, Math.Min(c, options.Shape[d]))).ToArray();
        List<H5Filter> filters = options.Codec.Name == "none"
            ? []
            : [new H5Filter(ShuffleFilter.Id), new H5Filter(DeflateFilter.Id, new() { [DeflateFilter.Level] = options.Codec.Level })];
        var cache = new EvictingWriteCache(CacheChunks, options.Codec.Name == "none"
            ? null
            : new ChunkCompressor(options.DataType.SizeInBytes(), chunks, options.Codec.Level));
        var creation = new H5DatasetCreation(ChunkCache: cache, Filters: filters);
        var dims = options.Shape.Select(s => (ulong)s).ToArray();
        var dataset = TypedDataset.For(options.DataType, dims, chunks, creation);
        dataset.Dataset.Attributes = new Dictionary<string, object>
        {
            [Hdf5Attributes.AxisTags] = Hdf5Attributes.FormatAxisTags(options.Axes, options.VoxelSize),
            [Hdf5Attributes.ElementSize] = options.Axes.Names.Contains('z')
                ? new[] { options.VoxelSize.Z, options.VoxelSize.Y, options.VoxelSize.X }
                : new[] { options.VoxelSize.Y, options.VoxelSize.X },
        };

        // Groups along the dataset path, innermost holding the dataset.
        var root = new H5File();
        H5Group group = root;
        string[] parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (string part in parts[..^1])
        {
            var inner = new H5Group();
            group[part] = inner;
            group = inner;
        }
        group[parts[^1]] = dataset.Dataset;

        H5NativeWriter writer;
        try
        {
            writer = root.BeginWrite(filePath);
        }
        catch (Exception e) when (e is not ChunkSegException)
        {
            throw new VolumeException(location, $"cannot create: {e.Message}", e);
        }
        var info = new VolumeInfo(location, VolumeFormat.Hdf5, options.Axes, options.Shape.ToArray(), options.DataType,
            chunks.Select(c => (int)c).ToArray(), options.VoxelSize, options.Codec.Name == "none" ? "none" : $"shuffle+gzip(level {options.Codec.Level})", 0);
        return new Hdf5Writer(info, dataset, cache, writer);
    }

    public void Read(NdBox box, Span<byte> destination) =>
        throw new VolumeException(Info.Location, "is being written and cannot be read until it is complete (PureHDF writes a file in one pass)");

    public void Write(NdBox box, ReadOnlySpan<byte> source)
    {
        ArgumentNullException.ThrowIfNull(box);
        if (box.Rank != Info.Shape.Length || !box.IsInside(Info.Shape))
            throw new VolumeException(Info.Location, $"box {box} lies outside the dataset of shape [{string.Join(", ", Info.Shape)}] ({Info.Axes})");
        long bytes = box.ElementCount * Info.DataType.SizeInBytes();
        if (source.Length < bytes) throw new ArgumentException($"buffer holds {source.Length} bytes; box {box} needs {bytes}");
        if (bytes == 0) return;
        var starts = box.Start.Select(s => (ulong)s).ToArray();
        var counts = box.Shape.Select(s => (ulong)s).ToArray();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                _dataset.Write(_writer, source[..checked((int)bytes)], new HyperslabSelection(box.Rank, starts, counts));
                _cache.WriteOut(CompletedChunks(box));
            }
            catch (Exception e) when (e is not ChunkSegException)
            {
                throw new VolumeException(Info.Location, $"writing box {box} failed: {e.Message}", e);
            }
        }
    }

    /// <summary>The linear indices (C order over the chunk grid) of the chunks <paramref name="box"/> covers entirely.</summary>
    private IEnumerable<ulong> CompletedChunks(NdBox box)
    {
        int rank = box.Rank;
        var first = new long[rank];
        var end = new long[rank];
        var grid = new long[rank];
        for (int d = 0; d < rank; d++)
        {
            long c = Info.StorageChunks[d], n = Info.Shape[d];
            grid[d] = (n + c - 1) / c;
            first[d] = (box.Start[d] + c - 1) / c;
            long stop = box.Start[d] + box.Shape[d];
            end[d] = stop == n ? grid[d] : stop / c;            // the volume's last chunk may be partial, and is full when the box reaches the end
            if (end[d] <= first[d]) yield break;
        }
        var at = (long[])first.Clone();
        while (true)
        {
            ulong index = 0;
            for (int d = 0; d < rank; d++) index = index * (ulong)grid[d] + (ulong)at[d];
            yield return index;
            int k = rank - 1;
            for (; k >= 0; k--)
            {
                if (++at[k] < end[k]) break;
                at[k] = first[k];
            }
            if (k < 0) yield break;
        }
    }

    /// <summary>Nothing to do: the file is durable once <see cref="Dispose"/> has written its last chunks and index.</summary>
    public void Flush()
    {
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _writer.Dispose();
        }
    }

    public override string ToString() => Info.Location;

    /// <summary>The dataset under its element type (PureHDF's writer is generic in it).</summary>
    private abstract class TypedDataset
    {
        public abstract H5Dataset Dataset { get; }

        public abstract void Write(H5NativeWriter writer, ReadOnlySpan<byte> source, Selection fileSelection);

        public static TypedDataset For(DataType type, ulong[] dims, uint[] chunks, H5DatasetCreation creation) => type switch
        {
            DataType.UInt8 => new Typed<byte>(dims, chunks, creation),
            DataType.Int8 => new Typed<sbyte>(dims, chunks, creation),
            DataType.UInt16 => new Typed<ushort>(dims, chunks, creation),
            DataType.Int16 => new Typed<short>(dims, chunks, creation),
            DataType.UInt32 => new Typed<uint>(dims, chunks, creation),
            DataType.Int32 => new Typed<int>(dims, chunks, creation),
            DataType.UInt64 => new Typed<ulong>(dims, chunks, creation),
            DataType.Int64 => new Typed<long>(dims, chunks, creation),
            DataType.Float32 => new Typed<float>(dims, chunks, creation),
            _ => new Typed<double>(dims, chunks, creation),
        };

        private sealed class Typed<T>(ulong[] dims, uint[] chunks, H5DatasetCreation creation) : TypedDataset where T : unmanaged
        {
            private readonly H5Dataset<T[]> _dataset = new(dims, chunks, creation);

            public override H5Dataset Dataset => _dataset;

            public override void Write(H5NativeWriter writer, ReadOnlySpan<byte> source, Selection fileSelection)
            {
                T[] data = MemoryMarshal.Cast<byte, T>(source).ToArray();
                writer.Write(_dataset, data, fileSelection: fileSelection);          // the memory selection: all of data
            }
        }
    }

    /// <summary>
    /// PureHDF's writing chunk cache, bounded: it holds at most <paramref name="capacity"/> chunks and writes the least
    /// recently used one out to make room (PureHDF's own keeps every chunk until the file is closed). Each chunk keeps
    /// the writer PureHDF handed over with it: that delegate writes its own chunk, whatever index it is given.
    /// Completed chunks leave the cache for a queue of compressions running ahead (<paramref name="compressor"/>, when
    /// the dataset is compressed), at most <see cref="InFlight"/> of them, and are written in the order they completed.
    /// </summary>
    private sealed class EvictingWriteCache(int capacity, ChunkCompressor? compressor) : IWritingChunkCache
    {
        /// <summary>Compressions running ahead of the writer: enough to keep every core busy, few enough to bound memory.</summary>
        private static readonly int InFlight = 2 * Environment.ProcessorCount;

        private readonly Dictionary<ulong, LinkedListNode<Cached>> _chunks = new();
        private readonly LinkedList<Cached> _order = new();
        private readonly Queue<(Cached Chunk, Task<Memory<byte>> Compressed)> _compressing = new();
        private readonly HashSet<ulong> _written = [];

        private readonly record struct Cached(ulong Index, Memory<byte> Chunk, Action<ulong, Memory<byte>> Writer);

        /// <summary>Hands the cached chunks among <paramref name="indices"/> on to be written: nothing more will be written into them.</summary>
        public void WriteOut(IEnumerable<ulong> indices)
        {
            foreach (ulong index in indices)
            {
                if (!_chunks.Remove(index, out var node)) continue;
                _order.Remove(node);
                _written.Add(index);
                if (compressor is null)
                {
                    node.Value.Writer(index, node.Value.Chunk);
                    continue;
                }
                var chunk = node.Value.Chunk;
                _compressing.Enqueue((node.Value, Task.Run(() => compressor.Compress(chunk))));
            }
            // Write what is ready, and wait for the oldest only when too many are under way.
            while (_compressing.Count > 0 && (_compressing.Count > InFlight || _compressing.Peek().Compressed.IsCompleted))
                WriteOldestCompressed();
        }

        public Memory<byte> GetChunk(ulong index, Func<Memory<byte>> chunkAllocator, Action<ulong, Memory<byte>> chunkWriter)
        {
            if (_chunks.TryGetValue(index, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                return node.Value.Chunk;
            }
            if (_written.Contains(index))
                throw new InvalidOperationException($"chunk {index} was already written out: HDF5 output must complete each chunk within {capacity} chunks of writing");
            while (_chunks.Count >= capacity)
            {
                var last = _order.Last!;
                _order.RemoveLast();
                _chunks.Remove(last.Value.Index);
                _written.Add(last.Value.Index);
                last.Value.Writer(last.Value.Index, last.Value.Chunk);      // incomplete, so compressed by PureHDF's pipeline here
            }
            var added = _order.AddFirst(new Cached(index, chunkAllocator(), chunkWriter));
            _chunks[index] = added;
            return added.Value.Chunk;
        }

        public void Flush(Action<ulong, Memory<byte>> chunkWriter)
        {
            while (_compressing.Count > 0) WriteOldestCompressed();
            foreach (var cached in _order.Reverse())
            {
                _written.Add(cached.Index);
                cached.Writer(cached.Index, cached.Chunk);
            }
            _chunks.Clear();
            _order.Clear();
        }

        private void WriteOldestCompressed()
        {
            var (cached, compressed) = _compressing.Dequeue();
            using (DeflateFilter.Ahead(compressed.GetAwaiter().GetResult()))
                cached.Writer(cached.Index, cached.Chunk);
        }
    }

    /// <summary>A chunk through the dataset's filter pipeline (PureHDF's shuffle, then deflate), off the writer's thread.</summary>
    private sealed class ChunkCompressor(int typeSize, uint[] chunkDims, int level)
    {
        private readonly ShuffleFilter _shuffle = new();
        private readonly uint[] _shuffleParameters = new ShuffleFilter().GetParameters(chunkDims, (uint)typeSize, null);

        public Memory<byte> Compress(Memory<byte> chunk) =>
            DeflateFilter.Compress(_shuffle.Filter(new FilterInfo(H5FilterFlags.None, _shuffleParameters, chunk.Length, chunk)), level);
    }

    /// <summary>
    /// HDF5's deflate filter (id 1) at any level 1–9 through .NET's zlib (PureHDF's own takes 0, 1 and 9 only); it
    /// decompresses for reading too, since a registration replaces the built-in filter.
    /// </summary>
    private sealed class DeflateFilter : IH5Filter
    {
        public const ushort Id = 1;
        public const string Level = "level";

        /// <summary>The compressed chunk <see cref="Ahead"/> handed over to the next compression on this thread.</summary>
        [ThreadStatic] private static Memory<byte>? t_ahead;

        public ushort FilterId => Id;

        public string Name => "deflate";

        /// <summary>
        /// Until disposed, the next compression on this thread returns <paramref name="compressed"/>: the same chunk,
        /// compressed ahead by <see cref="ChunkCompressor"/>, which PureHDF's writer is about to run through its filters.
        /// </summary>
        public static IDisposable Ahead(Memory<byte> compressed)
        {
            t_ahead = compressed;
            return new ClearAhead();
        }

        public uint[] GetParameters(uint[] chunkDimensions, uint typeSize, Dictionary<string, object>? options) =>
            [options is not null && options.TryGetValue(Level, out var level) ? Convert.ToUInt32(level) : 4u];

        public Memory<byte> Filter(FilterInfo info)
        {
            if (info.Flags.HasFlag(H5FilterFlags.Decompress)) return Decompress(info.Buffer, info.ChunkSize);
            if (t_ahead is { } ahead)
            {
                t_ahead = null;
                return ahead;
            }
            return Compress(info.Buffer, info.Parameters.Length > 0 ? (int)Math.Clamp(info.Parameters[0], 1u, 9u) : 4);
        }

        /// <summary>
        /// Straight into one array of the chunk's size (what the chunk cache keeps): no growing buffers, no garbage,
        /// since every collection stops every reading thread.
        /// </summary>
        private static Memory<byte> Decompress(Memory<byte> source, int chunkSize)
        {
            using var input = new ZLibStream(new ReadOnlyMemoryStream(source), CompressionMode.Decompress);
            var chunk = new byte[chunkSize];
            int filled = 0, n;
            while (filled < chunk.Length && (n = input.Read(chunk, filled, chunk.Length - filled)) > 0) filled += n;
            return chunk.AsMemory(0, filled);
        }

        public static Memory<byte> Compress(Memory<byte> source, int level)
        {
            var compressed = new MemoryStream(source.Length / 2 + 64);
            using (var z = new ZLibStream(compressed, new ZLibCompressionOptions { CompressionLevel = level }, leaveOpen: true))
                z.Write(source.Span);
            return compressed.GetBuffer().AsMemory(0, (int)compressed.Length);
        }

        private sealed class ClearAhead : IDisposable
        {
            public void Dispose() => t_ahead = null;
        }
    }

    /// <summary>A read-only stream over a <see cref="Memory{T}"/> without copying it.</summary>
    private sealed class ReadOnlyMemoryStream(Memory<byte> buffer) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => buffer.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] destination, int offset, int count) => Read(destination.AsSpan(offset, count));

        public override int Read(Span<byte> destination)
        {
            int n = Math.Min(destination.Length, buffer.Length - _position);
            buffer.Span.Slice(_position, n).CopyTo(destination);
            _position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] source, int offset, int count) => throw new NotSupportedException();
    }
}
