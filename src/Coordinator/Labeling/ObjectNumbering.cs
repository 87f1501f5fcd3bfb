using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;

namespace ChunkSeg.Coordinator.Labeling;

/// <summary>Which objects to keep, judged on the whole object after merging (a big object cut by chunks is not dropped).</summary>
public sealed record ObjectFilter(long MinVoxels = 0, long MaxVoxels = long.MaxValue, bool ExcludeBorder = false)
{
    public bool Keeps(long voxels, bool touchesBorder) => voxels >= MinVoxels && voxels <= MaxVoxels && !(ExcludeBorder && touchesBorder);
}

/// <summary>
/// Gives every object its final id: 1, 2, 3, … over the kept objects in the order of their first voxel in
/// raster order (time point, then z, y, x), the order scipy.ndimage.label numbers them in, continuing
/// across time points so ids stay unique. Works one slab of chunks (one time point and one row of chunks
/// along z) at a time: an object's first voxel lies in the first slab that holds any of its pieces, so ids
/// are settled slab after slab and memory holds one slab's pieces plus a few numbers per crossing object.
/// </summary>
public sealed class ObjectNumbering
{
    private readonly ChunkGrid _grid;
    private readonly BoundaryMerge _merge;
    private readonly Func<long, ChunkLabelSummary> _summaryOf;
    private readonly ObjectFilter _filter;
    private readonly bool _keepStats;

    /// <param name="merge">The union-find after every equivalence, flattened.</param>
    /// <param name="summaryOf">Reads chunk i's summary (called for every chunk, in order, twice).</param>
    /// <param name="keepStats">Whether <see cref="Run"/> reports whole-object statistics (costs ~120 bytes per crossing object).</param>
    public ObjectNumbering(ChunkGrid grid, BoundaryMerge merge, Func<long, ChunkLabelSummary> summaryOf, ObjectFilter filter, bool keepStats)
    {
        _grid = grid;
        _merge = merge;
        _summaryOf = summaryOf;
        _filter = filter;
        _keepStats = keepStats;
    }

    /// <summary>Number of objects kept (the largest id).</summary>
    public ulong ObjectCount { get; private set; }

    /// <summary>Memory held for crossing objects, in bytes.</summary>
    public long SetMemoryBytes { get; private set; }

    /// <summary>
    /// Numbers every object. <paramref name="map"/>(chunk, ids) receives, for every chunk, the final id of each local
    /// label (index = local label, 0 for background and dropped objects); <paramref name="kept"/>(id, time point, totals)
    /// receives every kept object in id order (totals are the piece sums; statistics only when asked for).
    /// </summary>
    public void Run(Action<long, ulong[]> map, Action<ulong, long, PieceStats>? kept = null)
    {
        int sets = _merge.SetCount;
        var setFirst = new long[sets];
        var setVoxels = new long[sets];
        var setBorder = new bool[sets];
        var setStats = _keepStats ? new PieceStats[sets] : null;
        var setId = new ulong[sets];
        SetMemoryBytes = sets * (8L + 8 + 1 + 8) + (setStats is null ? 0 : sets * (long)System.Runtime.CompilerServices.Unsafe.SizeOf<PieceStats>());
        Array.Fill(setFirst, long.MaxValue);

        // Whole-object sizes, border contact and first voxels of the crossing objects.
        var seen = new bool[sets];
        for (long c = 0; c < _grid.Count; c++)
        {
            var summary = _summaryOf(c);
            for (int l = 1; l <= summary.Pieces.Length; l++)
            {
                int node = _merge.NodeOf(new PieceRef(c, (uint)l));
                if (node < 0) continue;
                int set = _merge.SetOf(node);
                ref readonly var piece = ref summary.Pieces[l - 1];
                setVoxels[set] += piece.Voxels;
                setFirst[set] = Math.Min(setFirst[set], piece.First);
                setBorder[set] |= piece.TouchesVolumeBorder;
                if (setStats is not null)
                {
                    if (!seen[set]) { setStats[set] = piece; seen[set] = true; }
                    else setStats[set].Add(piece);
                }
            }
        }

        long chunksPerSlab = _grid.Blocks.Y * _grid.Blocks.X;
        ulong next = 0;
        var candidates = new List<Candidate>();
        for (long slabStart = 0; slabStart < _grid.Count; slabStart += chunksPerSlab)
        {
            long t = slabStart / (chunksPerSlab * _grid.Blocks.Z);
            var summaries = new ChunkLabelSummary[chunksPerSlab];
            var maps = new ulong[chunksPerSlab][];
            candidates.Clear();
            for (int k = 0; k < chunksPerSlab; k++)
            {
                var summary = summaries[k] = _summaryOf(slabStart + k);
                maps[k] = new ulong[summary.Pieces.Length + 1];
                for (int l = 1; l <= summary.Pieces.Length; l++)
                {
                    ref readonly var piece = ref summary.Pieces[l - 1];
                    int node = _merge.NodeOf(new PieceRef(slabStart + k, (uint)l));
                    if (node < 0)
                    {
                        if (_filter.Keeps(piece.Voxels, piece.TouchesVolumeBorder)) candidates.Add(new Candidate(piece.First, k, l, -1));
                        continue;
                    }
                    int set = _merge.SetOf(node);
                    if (piece.First == setFirst[set] && _filter.Keeps(setVoxels[set], setBorder[set])) candidates.Add(new Candidate(piece.First, k, l, set));
                }
            }
            candidates.Sort((a, b) => a.First.CompareTo(b.First));
            foreach (var o in candidates)
            {
                ulong id = ++next;
                if (o.Set >= 0) setId[o.Set] = id;
                else maps[o.Slot][o.Label] = id;
                if (kept is not null)
                {
                    var totals = o.Set >= 0 && setStats is not null ? setStats[o.Set] : summaries[o.Slot].Pieces[o.Label - 1];
                    if (o.Set >= 0) { totals.Voxels = setVoxels[o.Set]; totals.TouchesVolumeBorder = setBorder[o.Set]; }
                    kept(id, t, totals);
                }
            }
            for (int k = 0; k < chunksPerSlab; k++)
            {
                for (int l = 1; l < maps[k].Length; l++)
                {
                    int node = _merge.NodeOf(new PieceRef(slabStart + k, (uint)l));
                    if (node >= 0) maps[k][l] = setId[_merge.SetOf(node)];   // settled in this slab or an earlier one
                }
                map(slabStart + k, maps[k]);
            }
        }
        ObjectCount = next;
    }

    private readonly record struct Candidate(long First, int Slot, int Label, int Set);
}
