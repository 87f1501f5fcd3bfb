using ChunkSeg.Contracts.Memory;
// Marching cubes over one block, producing a SurfacePiece whose vertices carry global ids, in id order.
//
// Two sweeps over the voxel planes z = first … last, one plane behind the other:
//   vertices of plane z     voxels in (y, x) order; a voxel's crossed edges (along x, y, z: slots in id order),
//                           then the centre vertices of its cell's tunnels; each vertex's index goes to a grid
//                           (x- and y-edges of the plane, z-edges of the layer above it). The cells of layer z
//                           are classified in the same sweep (their case and, for labels, their label), which
//                           is what tells where the centre vertices are.
//   triangles of layer z−1  once plane z is numbered: each classified cell's triangles from the table, corners
//                           read from the grids, in cell order.
// A vertex is made for every crossed edge of the cells: every crossed edge of a cell is a corner of one of its
// triangles, so the piece needs no sort and holds no unused vertex. Across blocks nothing is shared: a vertex's
// global id and its offset along the edge are a pure function of the two voxels the edge joins, so the
// coordinator welds the pieces by id.
//
//   scalar field   inside = value > isovalue; offset t = (isovalue − v_low) / (v_high − v_low), interpolated
//                  on the edge as scikit-image does
//   label image    one surface per label (inside = voxel holds the label) or one for the foreground (inside =
//                  not 0); vertices at edge midpoints, triangles from the mask table (tunnel cases add a
//                  vertex at the cell's centre). Two labels that touch get one vertex each on their shared
//                  edges (side 0: the lower voxel's label, side 1: the upper one's), so every object's
//                  surface is closed on its own. The piece keeps each label's vertices and triangles apart
//                  (a grid holds a vertex's index within its label), so nothing is sorted by label later.

using System.Buffers;
using System.Numerics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;

namespace ChunkSeg.Kernels.Meshing;

public static class MarchingCubes
{
    /// <summary>
    /// The isosurface at <paramref name="isovalue"/> over <paramref name="cells"/> (global cell box: cells whose
    /// lowest corner lies in it) of a block of <paramref name="values"/> (z, y, x, C order) whose first voxel is at
    /// global <paramref name="blockOrigin"/>. The block must hold every corner of those cells.
    /// </summary>
    public static void Extract(ReadOnlySpan<float> values, Long3 blockSize, Long3 blockOrigin, Box3 cells, float isovalue, SurfacePiece piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        Validate(values.Length, blockSize, blockOrigin, cells, piece);
        if (piece.Labelled) throw new ArgumentException("an isosurface piece carries no labels", nameof(piece));
        if (cells.IsEmpty) return;
        // Inside flags, only where the cells' corners are (the block may be larger: a whole volume meshed chunk by chunk).
        byte[] inside = ChunkBufferPool<byte>.Shared.Rent(values.Length);
        try
        {
            var flags = inside.AsSpan(0, values.Length);
            var sweep = new Sweep(blockSize, blockOrigin, cells, piece, Surface.Isosurface);
            for (long z = cells.Start.Z; z <= cells.End.Z; z++)
                for (long y = cells.Start.Y; y <= cells.End.Y; y++)
                {
                    int from = sweep.Index(z, y, cells.Start.X);
                    Threshold(values.Slice(from, (int)cells.Size.X + 1), isovalue, flags.Slice(from, (int)cells.Size.X + 1));
                }
            sweep.Run<byte>(flags, values, isovalue);
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(inside);
        }
    }

    /// <summary>flags[i] = values[i] &gt; isovalue ? 1 : 0, four vectors of floats narrowed to one of bytes at a time.</summary>
    private static void Threshold(ReadOnlySpan<float> values, float isovalue, Span<byte> flags)
    {
        int i = 0, width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var iso = new Vector<float>(isovalue);
            var one = Vector<sbyte>.One;
            for (; i + 4 * width <= values.Length; i += 4 * width)
            {
                var low = Vector.Narrow(Vector.GreaterThan(new Vector<float>(values[i..]), iso), Vector.GreaterThan(new Vector<float>(values[(i + width)..]), iso));
                var high = Vector.Narrow(Vector.GreaterThan(new Vector<float>(values[(i + 2 * width)..]), iso), Vector.GreaterThan(new Vector<float>(values[(i + 3 * width)..]), iso));
                Vector.AsVectorByte(Vector.Narrow(low, high) & one).CopyTo(flags[i..]);
            }
        }
        for (; i < values.Length; i++) flags[i] = values[i] > isovalue ? (byte)1 : (byte)0;
    }

    /// <summary>
    /// Surfaces of a label block: with <paramref name="perLabel"/> one closed surface per label (0 is background),
    /// else one surface around all non-zero voxels. Arguments as in <see cref="Extract"/>; a per-label piece must
    /// be <see cref="SurfacePiece.Labelled"/>.
    /// </summary>
    public static void ExtractLabels<T>(ReadOnlySpan<T> labels, Long3 blockSize, Long3 blockOrigin, Box3 cells, bool perLabel, SurfacePiece piece)
        where T : unmanaged, IBinaryInteger<T>
    {
        ArgumentNullException.ThrowIfNull(piece);
        Validate(labels.Length, blockSize, blockOrigin, cells, piece);
        if (piece.Labelled != perLabel) throw new ArgumentException("per-label surfaces need a labelled piece, a foreground surface an unlabelled one", nameof(piece));
        if (cells.IsEmpty) return;
        new Sweep(blockSize, blockOrigin, cells, piece, perLabel ? Surface.PerLabel : Surface.Foreground).Run(labels, default, 0);
    }

    private static void Validate(int length, Long3 blockSize, Long3 blockOrigin, Box3 cells, SurfacePiece piece)
    {
        if (blockSize.Volume != length) throw new ArgumentException($"a block of {blockSize} needs {blockSize.Volume} values, not {length}");
        if (cells.IsEmpty) return;
        var volumeCells = new Box3(Long3.Zero, piece.VolumeShape - Long3.Uniform(1));
        if (!volumeCells.Contains(cells)) throw new ArgumentOutOfRangeException(nameof(cells), $"cells {cells} are not all inside the volume's cells {volumeCells}");
        if (!new Box3(blockOrigin, blockSize).Contains(new Box3(cells.Start, cells.Size + Long3.Uniform(1))))
            throw new ArgumentOutOfRangeException(nameof(cells), $"the block {new Box3(blockOrigin, blockSize)} does not hold every corner of cells {cells}");
        if (blockSize.Y * blockSize.X > int.MaxValue / 8) throw new ArgumentOutOfRangeException(nameof(blockSize), "block planes too large");
    }

    private enum Surface { Isosurface, Foreground, PerLabel }

    /// <summary>The two sweeps of one block (see the file comment), with their grids and cell lists.</summary>
    private sealed class Sweep
    {
        private readonly SurfacePiece _piece;
        private readonly Surface _surface;
        private readonly int _sides;
        private readonly int _sx, _sxy, _width, _height;
        private readonly long _originZ, _originY, _originX, _volumeY, _volumeX;
        private readonly Box3 _cells;
        private readonly int[] _cornerOffset = new int[8];
        // Per edge: which grid holds its vertex (0 lower plane, 1 upper plane, 2 the layer's z-edges) and where,
        // from the cell's position in the grid.
        private readonly int[] _edgeGrid = new int[12], _edgeDelta = new int[12], _edgeScale = new int[12];
        private readonly int[][] _planes, _layers;
        private readonly CellList[] _lists;

        public Sweep(Long3 block, Long3 origin, Box3 cells, SurfacePiece piece, Surface surface)
        {
            _piece = piece;
            _surface = surface;
            _sides = surface == Surface.PerLabel ? 2 : 1;
            _sx = (int)block.X;
            _sxy = (int)(block.Y * block.X);
            (_originZ, _originY, _originX) = (origin.Z, origin.Y, origin.X);
            (_volumeY, _volumeX) = (piece.VolumeShape.Y, piece.VolumeShape.X);
            _cells = cells;
            _width = (int)cells.Size.X + 1;
            _height = (int)cells.Size.Y + 1;
            for (int c = 0; c < 8; c++) _cornerOffset[c] = (c & 1) + (c >> 1 & 1) * _sx + (c >> 2) * _sxy;
            for (int e = 0; e < 12; e++)
            {
                var (low, _) = MarchingCubesTable.EdgeCorners[e];
                int axis = e >> 2, at = (low >> 1 & 1) * _width + (low & 1);
                _edgeGrid[e] = axis == 2 ? 2 : low >> 2;
                _edgeDelta[e] = axis == 2 ? at * _sides : (2 * at + axis) * _sides;
                _edgeScale[e] = axis == 2 ? _sides : 2 * _sides;
            }
            int cellsPerPlane = _width * _height;
            _planes = [new int[2 * _sides * cellsPerPlane], new int[2 * _sides * cellsPerPlane]];
            _layers = [new int[_sides * cellsPerPlane], new int[_sides * cellsPerPlane]];
            _lists = [new CellList(_height), new CellList(_height)];
        }

        /// <summary>Index in the block of voxel (z, y, x) (global coordinates).</summary>
        public int Index(long z, long y, long x) => checked((int)(((z - _originZ) * (_sxy / _sx) + (y - _originY)) * _sx + (x - _originX)));

        public void Run<T>(ReadOnlySpan<T> classes, ReadOnlySpan<float> values, float isovalue) where T : unmanaged, IBinaryInteger<T>
        {
            int[] found = ArrayPool<int>.Shared.Rent(_width + 1);
            try
            {
                for (long z = _cells.Start.Z; z <= _cells.End.Z; z++)
                {
                    Vertices(classes, values, isovalue, z, found);
                    if (z > _cells.Start.Z) Triangles(z - 1);
                }
            }
            finally
            {
                ArrayPool<int>.Shared.Return(found);
            }
        }

        /// <summary>Plane z's vertices in id order, and the classified cells of layer z (when z is a cell layer).</summary>
        private void Vertices<T>(ReadOnlySpan<T> classes, ReadOnlySpan<float> values, float isovalue, long z, int[] found) where T : unmanaged, IBinaryInteger<T>
        {
            int parity = (int)(z & 1);
            var plane = _planes[parity];
            var layer = _layers[parity];
            var list = _lists[parity];
            list.Clear();
            bool hasLayer = z < _cells.End.Z;
            Span<T> corner = stackalloc T[8];
            for (long y = _cells.Start.Y; y <= _cells.End.Y; y++)
            {
                int r = (int)(y - _cells.Start.Y);
                int rowStart = Index(z, y, _cells.Start.X);
                bool hasRow = y < _cells.End.Y;
                list.BeginRow(r);
                if (hasLayer && hasRow) Classify(classes, rowStart, corner, list, found);
                int centres = list.RowStart(r), centresEnd = list.Count;
                int count = Crossings(classes, rowStart, hasRow ? _sx : 0, hasLayer ? _sxy : 0, found);
                long firstVoxel = (z * _volumeY + y) * _volumeX + _cells.Start.X;
                int f = 0;
                while (true)
                {
                    var entries = list.Entries;
                    while (centres < centresEnd && entries[centres].Centre != CellEntry.CentreToMake) centres++;
                    int x = Math.Min(f < count ? found[f] : int.MaxValue, centres < centresEnd ? entries[centres].X : int.MaxValue);
                    if (x == int.MaxValue) break;
                    if (f < count && found[f] == x) f++;
                    int i = rowStart + x;
                    long voxel = firstVoxel + x;
                    int at = r * _width + x;
                    if (x + 1 < _width) Edge(classes, values, isovalue, i, i + 1, voxel, 0, plane, 2 * at * _sides);
                    if (hasRow) Edge(classes, values, isovalue, i, i + _sx, voxel, 1, plane, (2 * at + 1) * _sides);
                    if (hasLayer) Edge(classes, values, isovalue, i, i + _sxy, voxel, 2, layer, at * _sides);
                    for (; centres < centresEnd && entries[centres].X == x; centres++)
                    {
                        ref var cell = ref entries[centres];
                        if (cell.Centre == CellEntry.CentreToMake) cell.Centre = _piece.AddVertex(SurfacePiece.CentreVertexId(voxel, cell.First), 0.5f, cell.Label);
                    }
                }
            }
        }

        /// <summary>The vertices of the edge from voxel <paramref name="low"/> to <paramref name="high"/> (block indices), if it is crossed.</summary>
        private void Edge<T>(ReadOnlySpan<T> classes, ReadOnlySpan<float> values, float isovalue, int low, int high, long voxel, int axis, int[] grid, int slot)
            where T : unmanaged, IBinaryInteger<T>
        {
            T a = classes[low], b = classes[high];
            if (a == b) return;
            if (_surface == Surface.PerLabel)
            {
                if (a != T.Zero) grid[slot] = _piece.AddVertex(SurfacePiece.EdgeVertexId(voxel, axis, 0), 0.5f, ulong.CreateTruncating(a));
                if (b != T.Zero) grid[slot + 1] = _piece.AddVertex(SurfacePiece.EdgeVertexId(voxel, axis, 1), 0.5f, ulong.CreateTruncating(b));
                return;
            }
            if ((a == T.Zero) == (b == T.Zero)) return;
            float t = _surface == Surface.Isosurface ? (isovalue - values[low]) / (values[high] - values[low]) : 0.5f;
            grid[slot] = _piece.AddVertex(SurfacePiece.EdgeVertexId(voxel, axis, 0), t, 0);
        }

        /// <summary>The cells of row <paramref name="rowStart"/> whose corners differ, with their case (per label: one entry per label, by its lowest corner).</summary>
        private void Classify<T>(ReadOnlySpan<T> classes, int rowStart, Span<T> l, CellList list, int[] found) where T : unmanaged, IBinaryInteger<T>
        {
            int count = MixedCells(classes, rowStart, _width - 1, found);
            int sx = _sx, sxy = _sxy;
            bool foreground = _surface == Surface.Foreground;
            for (int f = 0; f < count; f++)
            {
                int x = found[f];
                var c = classes.Slice(rowStart + x, sxy + sx + 2);
                if (_surface != Surface.PerLabel)
                {
                    int @case = (c[0] != T.Zero ? 1 : 0) | (c[1] != T.Zero ? 2 : 0) | (c[sx] != T.Zero ? 4 : 0) | (c[sx + 1] != T.Zero ? 8 : 0)
                        | (c[sxy] != T.Zero ? 16 : 0) | (c[sxy + 1] != T.Zero ? 32 : 0) | (c[sxy + sx] != T.Zero ? 64 : 0) | (c[sxy + sx + 1] != T.Zero ? 128 : 0);
                    if (@case is not (0 or 255)) list.Add(x, @case, 0, 0, foreground && MarchingCubesTable.HasCentre[@case]);
                    continue;
                }
                // Most cells hold one label beside background: then its case is the non-zero corners. Without branches:
                // every corner is 0 or the OR of all eight exactly when at most one label is there.
                T v0 = c[0], v1 = c[1], v2 = c[sx], v3 = c[sx + 1], v4 = c[sxy], v5 = c[sxy + 1], v6 = c[sxy + sx], v7 = c[sxy + sx + 1];
                T only = v0 | v1 | v2 | v3 | v4 | v5 | v6 | v7;
                bool single = (v0 == T.Zero | v0 == only) & (v1 == T.Zero | v1 == only) & (v2 == T.Zero | v2 == only) & (v3 == T.Zero | v3 == only)
                    & (v4 == T.Zero | v4 == only) & (v5 == T.Zero | v5 == only) & (v6 == T.Zero | v6 == only) & (v7 == T.Zero | v7 == only);
                if (single)
                {
                    int nonZero = (v0 != T.Zero ? 1 : 0) | (v1 != T.Zero ? 2 : 0) | (v2 != T.Zero ? 4 : 0) | (v3 != T.Zero ? 8 : 0)
                        | (v4 != T.Zero ? 16 : 0) | (v5 != T.Zero ? 32 : 0) | (v6 != T.Zero ? 64 : 0) | (v7 != T.Zero ? 128 : 0);
                    if (nonZero is not (0 or 255)) list.Add(x, nonZero, BitOperations.TrailingZeroCount(nonZero), ulong.CreateTruncating(only), MarchingCubesTable.HasCentre[nonZero]);
                    continue;
                }
                (l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]) = (v0, v1, v2, v3, v4, v5, v6, v7);
                for (int first = 0; first < 8; first++)
                {
                    T label = l[first];
                    if (label == T.Zero || l[..first].Contains(label)) continue;
                    int @case = 0;
                    for (int k = 0; k < 8; k++)
                        if (l[k] == label) @case |= 1 << k;
                    if (@case is not 255) list.Add(x, @case, first, ulong.CreateTruncating(label), MarchingCubesTable.HasCentre[@case]);
                }
            }
        }

        /// <summary>Layer z's triangles, from its classified cells; planes z and z + 1 are numbered.</summary>
        private void Triangles(long z)
        {
            var lower = _planes[(int)(z & 1)];
            var upper = _planes[(int)((z + 1) & 1)];
            var layer = _layers[(int)(z & 1)];
            var list = _lists[(int)(z & 1)];
            bool iso = _surface == Surface.Isosurface;
            var offsets = iso ? MarchingCubesTable.Offsets : MarchingCubesTable.MaskOffsets;
            var edges = iso ? MarchingCubesTable.Edges : MarchingCubesTable.MaskEdges;
            Span<int> abc = stackalloc int[3];
            int[][] grids = [lower, upper, layer];
            for (int r = 0; r < _height - 1; r++)
            {
                long firstCell = (z * _volumeY + _cells.Start.Y + r) * _volumeX + _cells.Start.X;
                for (int k = list.RowStart(r); k < list.RowStart(r + 1); k++)
                {
                    ref var cell = ref list.Entries[k];
                    int x = cell.X, @case = cell.Case;
                    int at = r * _width + x;
                    for (int n = offsets[@case]; n < offsets[@case + 1]; n += 3)
                    {
                        for (int j = 0; j < 3; j++)
                        {
                            int e = edges[n + j];
                            if (e == MarchingCubesTable.Centre) { abc[j] = cell.Centre; continue; }
                            // Per label, an edge's vertex is the lower voxel's (side 0) when that voxel holds the label.
                            int side = _sides == 2 ? 1 - (@case >> MarchingCubesTable.EdgeCorners[e].Low & 1) : 0;
                            abc[j] = grids[_edgeGrid[e]][_edgeDelta[e] + _edgeScale[e] * at + side];
                        }
                        _piece.AddTriangle(firstCell + x, abc[0], abc[1], abc[2], cell.Label);
                    }
                }
            }
        }

        /// <summary>
        /// Offsets (from <paramref name="rowStart"/>) of the voxels among the next <see cref="_width"/> of a row whose
        /// value differs from the next one along x (not for the last), y (<paramref name="rowStride"/> 0: none) or z
        /// (<paramref name="planeStride"/> 0: none), written to <paramref name="found"/>; returns how many.
        /// </summary>
        private int Crossings<T>(ReadOnlySpan<T> block, int rowStart, int rowStride, int planeStride, Span<int> found) where T : unmanaged, IEquatable<T>
        {
            var r0 = block[rowStart..];
            var ry = block[(rowStart + rowStride)..];
            var rz = block[(rowStart + planeStride)..];
            int count = 0, x = 0, edges = _width - 1;
            if (Vector.IsHardwareAccelerated)
            {
                int width = Vector<T>.Count;
                // Voxels [x, x + width) all have x-edges and the vectors stay inside every row read.
                for (; x + width <= edges && x + width + 1 <= r0.Length && x + width <= ry.Length && x + width <= rz.Length; x += width)
                {
                    var a = new Vector<T>(r0[x..]);
                    var same = Vector.Equals(a, new Vector<T>(r0[(x + 1)..])) & Vector.Equals(a, new Vector<T>(ry[x..])) & Vector.Equals(a, new Vector<T>(rz[x..]));
                    if (same == Vector<T>.AllBitsSet) continue;
                    for (int lane = 0; lane < width; lane++)
                        if (!same[lane].Equals(AllOnes<T>())) found[count++] = x + lane;
                }
            }
            for (; x < _width; x++)
            {
                T a = r0[x];
                if ((x < edges && !a.Equals(r0[x + 1])) || !a.Equals(ry[x]) || !a.Equals(rz[x])) found[count++] = x;
            }
            return count;
        }

        /// <summary>
        /// Offsets (from <paramref name="rowStart"/>) of the cells among the next <paramref name="cells"/> of a row whose
        /// eight corners are not all equal, written to <paramref name="found"/>; returns how many.
        /// </summary>
        private int MixedCells<T>(ReadOnlySpan<T> block, int rowStart, int cells, Span<int> found) where T : unmanaged, IEquatable<T>
        {
            var r00 = block[rowStart..];
            var r01 = block[(rowStart + _cornerOffset[2])..];
            var r10 = block[(rowStart + _cornerOffset[4])..];
            var r11 = block[(rowStart + _cornerOffset[6])..];
            int count = 0, x = 0;
            if (Vector.IsHardwareAccelerated)
            {
                int width = Vector<T>.Count;
                // Column x is uniform when its four voxels agree; cell x when columns x, x + 1 are and agree.
                for (; x + width + 1 <= cells + 1 && x + width + 1 <= r11.Length; x += width)
                {
                    var a = new Vector<T>(r00[x..]);
                    var a1 = new Vector<T>(r00[(x + 1)..]);
                    var uniform = Vector.Equals(a, new Vector<T>(r01[x..])) & Vector.Equals(a, new Vector<T>(r10[x..])) & Vector.Equals(a, new Vector<T>(r11[x..]))
                        & Vector.Equals(a1, new Vector<T>(r01[(x + 1)..])) & Vector.Equals(a1, new Vector<T>(r10[(x + 1)..])) & Vector.Equals(a1, new Vector<T>(r11[(x + 1)..]))
                        & Vector.Equals(a, a1);
                    if (uniform == Vector<T>.AllBitsSet) continue;
                    for (int lane = 0; lane < width; lane++)
                        if (!uniform[lane].Equals(AllOnes<T>())) found[count++] = x + lane;
                }
            }
            for (; x < cells; x++)
            {
                T a = r00[x];
                if (!(a.Equals(r01[x]) && a.Equals(r10[x]) && a.Equals(r11[x]) && a.Equals(r00[x + 1]) && a.Equals(r01[x + 1]) && a.Equals(r10[x + 1]) && a.Equals(r11[x + 1])))
                    found[count++] = x;
            }
            return count;
        }

        private static T AllOnes<T>() where T : unmanaged => Vector<T>.AllBitsSet[0];
    }

    /// <summary>One classified cell: position along x, case, lowest corner and label of the surface, centre vertex.</summary>
    private struct CellEntry
    {
        /// <summary><see cref="Centre"/> of a case without a centre vertex, and of one whose centre vertex the vertex sweep has yet to make.</summary>
        public const int NoCentre = -1, CentreToMake = -2;

        public int X, Case, First, Centre;
        public ulong Label;
    }

    /// <summary>One layer's classified cells, row by row.</summary>
    private sealed class CellList(int rows)
    {
        private readonly int[] _rowStarts = new int[rows + 1];
        private int _row;

        public CellEntry[] Entries = new CellEntry[256];
        public int Count { get; private set; }

        public void Clear() => Count = 0;

        /// <summary>Starts row <paramref name="r"/>; every row is begun, in order.</summary>
        public void BeginRow(int r)
        {
            _row = r;
            _rowStarts[r] = _rowStarts[r + 1] = Count;
        }

        public int RowStart(int r) => _rowStarts[r];

        public void Add(int x, int @case, int first, ulong label, bool needsCentre)
        {
            if (Count == Entries.Length) Array.Resize(ref Entries, 2 * Count);
            ref var entry = ref Entries[Count];
            entry.X = x;
            entry.Case = @case;
            entry.First = first;
            entry.Label = label;
            entry.Centre = needsCentre ? CellEntry.CentreToMake : CellEntry.NoCentre;
            _rowStarts[_row + 1] = ++Count;
        }
    }
}
