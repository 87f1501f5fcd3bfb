using ChunkSeg.Contracts.Labeling;

namespace ChunkSeg.Coordinator.Labeling;

/// <summary>
/// The union-find that joins pieces of objects cut by chunk borders. Its nodes are only the pieces that lie
/// on a face another chunk touches (each chunk registers its sorted list of those local labels), numbered
/// densely chunk after chunk, so memory is a few bytes per crossing piece and nothing per voxel or per
/// object that stays inside its chunk:
/// <code>
///   chunk 0 labels [2, 5]   chunk 1 labels [1]   chunk 2 labels [3, 4, 9]
///   node             0  1                  2                    3  4  5
/// </code>
/// It is fed only equivalences (pairs of touching pieces). The root of a set is always its smallest node.
/// </summary>
public sealed class BoundaryMerge
{
    private readonly uint[]?[] _labels;
    private readonly long[] _firstNode;
    private int[] _parent = new int[1024];
    private long _registered;
    private bool _flattened;

    public BoundaryMerge(long chunkCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunkCount);
        _labels = new uint[]?[chunkCount];
        _firstNode = new long[chunkCount + 1];
    }

    /// <summary>Number of registered pieces (nodes).</summary>
    public int NodeCount { get; private set; }

    /// <summary>Number of sets after <see cref="Flatten"/>.</summary>
    public int SetCount { get; private set; }

    /// <summary>
    /// Registers chunk <paramref name="chunk"/>'s face pieces (sorted, distinct local labels). Chunks register
    /// in index order, each once; a piece can take part in unions once its chunk is registered.
    /// </summary>
    public void Register(long chunk, uint[] faceLabels)
    {
        ArgumentNullException.ThrowIfNull(faceLabels);
        if (_flattened) throw new InvalidOperationException("the merge is flattened");
        if (chunk != _registered) throw new ArgumentException($"chunks register in order: expected chunk {_registered}, got {chunk}");
        for (int i = 1; i < faceLabels.Length; i++)
            if (faceLabels[i] <= faceLabels[i - 1]) throw new ArgumentException($"chunk {chunk}: face labels must be sorted and distinct");
        long total = NodeCount + (long)faceLabels.Length;
        if (total > Array.MaxLength)
            throw new InvalidOperationException($"more than {Array.MaxLength} pieces cross chunk borders; use larger chunks");
        if (total > _parent.Length) Array.Resize(ref _parent, (int)Math.Min(Array.MaxLength, Math.Max(total, 2L * _parent.Length)));
        for (int i = NodeCount; i < total; i++) _parent[i] = i;
        _labels[chunk] = faceLabels.Length == 0 ? null : faceLabels;
        _firstNode[chunk] = NodeCount;
        NodeCount = (int)total;
        _firstNode[chunk + 1] = NodeCount;
        _registered++;
    }

    /// <summary>The node of <paramref name="piece"/>, or −1 when it is not on a shared face.</summary>
    public int NodeOf(PieceRef piece)
    {
        if (piece.Chunk >= _registered) return -1;
        var labels = _labels[piece.Chunk];
        if (labels is null) return -1;
        int i = Array.BinarySearch(labels, piece.Label);
        return i < 0 ? -1 : (int)(_firstNode[piece.Chunk] + i);
    }

    /// <summary>Records that two pieces belong to one object; both must have been registered.</summary>
    public void Union(PieceRef a, PieceRef b)
    {
        if (_flattened) throw new InvalidOperationException("the merge is flattened");
        int na = NodeOf(a), nb = NodeOf(b);
        if (na < 0 || nb < 0)
            throw new ArgumentException($"pieces {a} and {b} touch but {(na < 0 ? a : b)} was not registered as lying on a shared face");
        int ra = Find(na), rb = Find(nb);
        if (ra < rb) _parent[rb] = ra;
        else if (rb < ra) _parent[ra] = rb;
    }

    private int Find(int node)
    {
        var parent = _parent;
        while (parent[node] != node)
        {
            parent[node] = parent[parent[node]];            // path halving
            node = parent[node];
        }
        return node;
    }

    /// <summary>
    /// Ends the unions and numbers the sets 0 … n−1 in the order of their smallest node; from then on
    /// <see cref="SetOf"/> gives a node's set. The parent array is reused for it (no new memory).
    /// </summary>
    public int Flatten()
    {
        if (_registered != _labels.LongLength) throw new InvalidOperationException($"{_registered} of {_labels.LongLength} chunks registered");
        if (_flattened) return SetCount;
        int sets = 0;
        // Every parent is a smaller node (roots are the smallest of their set), so when node i is reached its
        // parent's entry already holds the set: overwrite in place, in ascending order.
        for (int i = 0; i < NodeCount; i++)
            _parent[i] = _parent[i] == i ? sets++ : _parent[_parent[i]];
        SetCount = sets;
        _flattened = true;
        return sets;
    }

    /// <summary>The set (object) of a node after <see cref="Flatten"/>.</summary>
    public int SetOf(int node) => _flattened ? _parent[node] : throw new InvalidOperationException("call Flatten first");

    /// <summary>Memory held, in bytes (label lists, node offsets and the parent array).</summary>
    public long MemoryBytes
    {
        get
        {
            long bytes = _labels.LongLength * 8L + _firstNode.LongLength * 8L + _parent.LongLength * 4L;
            foreach (var l in _labels) if (l is not null) bytes += 24 + l.LongLength * 4;
            return bytes;
        }
    }
}
