// Marching cubes over one block, producing a SurfacePiece whose vertices carry global ids.
//
// Cells are visited z → y → x; a cell's case (bit c for corner c = x + 2y + 4z inside) picks its triangles from
// MarchingCubesTable, and each triangle corner is a crossing on one of the cell's twelve edges. A crossing is
// created once per block: a two-plane cache of vertex indices (x- and y-edges of the planes z and z + 1, z-edges
// of the layer between them) finds the ones earlier cells of the block made. Across blocks nothing is shared:
// the vertex's global id and its offset along the edge are a pure function of the two voxels the edge joins,
// so the coordinator welds the pieces by id.
//
//   scalar field   inside = value > isovalue; offset t = (isovalue − v_low) / (v_high − v_low), interpolated
//                  on the edge as scikit-image does
//   label image    one surface per label (inside = voxel holds the label) or one for the foreground (inside =
//                  not 0); vertices at edge midpoints, triangles from the mask table (tunnel cases add a
//                  vertex at the cell's centre). Two labels that touch get one vertex each on their shared
//                  edges (side 0: the lower voxel's label, side 1: the upper one's), so every object's
//                  surface is closed on its own.

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
        var block = Validate(values.Length, blockSize, blockOrigin, cells, piece);
        if (piece.Labelled) throw new ArgumentException("an isosurface piece carries no labels", nameof(piece));
        var cursor = new Cursor(block, blockOrigin, piece.VolumeShape, sides: 1);
        // Inside flags first: a cell is skipped when its eight flags agree, found a vector of cells at a time.
        byte[] inside = ArrayPool<byte>.Shared.Rent(values.Length);
        int[] found = ArrayPool<int>.Shared.Rent((int)block.X);
        try
        {
            // Flags only where the cells' corners are (the block may be larger: a whole volume meshed chunk by chunk).
            var flags = inside.AsSpan(0, values.Length);
            if (!cells.IsEmpty)
            {
                for (long z = cells.Start.Z; z <= cells.End.Z; z++)
                {
                    int from = cursor.Index(z, cells.Start.Y, blockOrigin), to = cursor.Index(z, cells.End.Y, blockOrigin) + (int)block.X;
                    for (int i = from; i < to; i++) flags[i] = values[i] > isovalue ? (byte)1 : (byte)0;
                }
            }
            Span<int> corner = stackalloc int[8];
            Span<float> v = stackalloc float[8];
            for (long gz = cells.Start.Z; gz < cells.End.Z; gz++)
            {
                cursor.BeginLayer(gz);
                for (long gy = cells.Start.Y; gy < cells.End.Y; gy++)
                {
                    int rowStart = cursor.Index(gy, cells.Start.X);
                    int count = cursor.MixedCells<byte>(flags, rowStart, (int)cells.Size.X, found);
                    for (int f = 0; f < count; f++)
                    {
                        int i0 = rowStart + found[f];
                        long gx = cells.Start.X + found[f];
                        int @case = 0;
                        for (int c = 0; c < 8; c++)
                        {
                            int at = i0 + cursor.CornerOffset[c];
                            v[c] = values[at];
                            @case |= flags[at] << c;
                        }
                        long cell = cursor.CellIndex(gy, gx);
                        int start = MarchingCubesTable.Offsets[@case], end = MarchingCubesTable.Offsets[@case + 1];
                        int slots = cursor.SlotBase(gy, gx);
                        for (int k = start; k < end; k += 3)
                        {
                            for (int j = 0; j < 3; j++)
                            {
                                int e = MarchingCubesTable.Edges[k + j];
                                ref int slot = ref cursor.Slot(e, slots, side: 0);
                                if (slot < 0)
                                {
                                    var (low, high) = MarchingCubesTable.EdgeCorners[e];
                                    float t = (isovalue - v[low]) / (v[high] - v[low]);
                                    slot = piece.AddVertex(cursor.VertexId(e, gy, gx, side: 0), t, 0);
                                }
                                corner[j] = slot;
                            }
                            piece.AddTriangle(cell, corner[0], corner[1], corner[2]);
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(inside);
            ArrayPool<int>.Shared.Return(found);
        }
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
        var block = Validate(labels.Length, blockSize, blockOrigin, cells, piece);
        if (piece.Labelled != perLabel) throw new ArgumentException("per-label surfaces need a labelled piece, a foreground surface an unlabelled one", nameof(piece));
        var cursor = new Cursor(block, blockOrigin, piece.VolumeShape, sides: perLabel ? 2 : 1);
        int[] found = ArrayPool<int>.Shared.Rent((int)block.X);
        try
        {
            Span<int> corner = stackalloc int[8];
            Span<T> l = stackalloc T[8];
            for (long gz = cells.Start.Z; gz < cells.End.Z; gz++)
            {
                cursor.BeginLayer(gz);
                for (long gy = cells.Start.Y; gy < cells.End.Y; gy++)
                {
                    int rowStart = cursor.Index(gy, cells.Start.X);
                    int count = cursor.MixedCells(labels, rowStart, (int)cells.Size.X, found);
                    for (int f = 0; f < count; f++)
                    {
                        int i0 = rowStart + found[f];
                        long gx = cells.Start.X + found[f];
                        for (int c = 0; c < 8; c++) l[c] = labels[i0 + cursor.CornerOffset[c]];
                        long cell = cursor.CellIndex(gy, gx);
                        int slots = cursor.SlotBase(gy, gx);
                        for (int first = 0; first < 8; first++)
                        {
                            T label = l[first];
                            if (perLabel ? label == T.Zero || l[..first].Contains(label) : first > 0) continue;
                            int @case = 0;
                            for (int c = 0; c < 8; c++)
                                if (perLabel ? l[c] == label : l[c] != T.Zero) @case |= 1 << c;
                            if (@case is 0 or 255) continue;
                            int start = MarchingCubesTable.MaskOffsets[@case], end = MarchingCubesTable.MaskOffsets[@case + 1];
                            ulong id = perLabel ? ulong.CreateTruncating(label) : 0;
                            int centre = -1;
                            for (int k = start; k < end; k += 3)
                            {
                                for (int j = 0; j < 3; j++)
                                {
                                    int e = MarchingCubesTable.MaskEdges[k + j];
                                    if (e == MarchingCubesTable.Centre)
                                    {
                                        if (centre < 0) centre = piece.AddVertex(SurfacePiece.CentreVertexId(cell, first), 0.5f, id);
                                        corner[j] = centre;
                                        continue;
                                    }
                                    int side = perLabel && l[MarchingCubesTable.EdgeCorners[e].Low] != label ? 1 : 0;
                                    ref int slot = ref cursor.Slot(e, slots, side);
                                    if (slot < 0) slot = piece.AddVertex(cursor.VertexId(e, gy, gx, side), 0.5f, id);
                                    corner[j] = slot;
                                }
                                piece.AddTriangle(cell, corner[0], corner[1], corner[2]);
                            }
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(found);
        }
    }

    private static Long3 Validate(int length, Long3 blockSize, Long3 blockOrigin, Box3 cells, SurfacePiece piece)
    {
        if (blockSize.Volume != length) throw new ArgumentException($"a block of {blockSize} needs {blockSize.Volume} values, not {length}");
        if (cells.IsEmpty) return blockSize;
        var volumeCells = new Box3(Long3.Zero, piece.VolumeShape - Long3.Uniform(1));
        if (!volumeCells.Contains(cells)) throw new ArgumentOutOfRangeException(nameof(cells), $"cells {cells} are not all inside the volume's cells {volumeCells}");
        if (!new Box3(blockOrigin, blockSize).Contains(new Box3(cells.Start, cells.Size + Long3.Uniform(1))))
            throw new ArgumentOutOfRangeException(nameof(cells), $"the block {new Box3(blockOrigin, blockSize)} does not hold every corner of cells {cells}");
        if (blockSize.Y * blockSize.X > int.MaxValue / 8) throw new ArgumentOutOfRangeException(nameof(blockSize), "block planes too large");
        return blockSize;
    }

    /// <summary>Block indexing and the per-block vertex cache (two planes of x/y edges, one layer of z edges).</summary>
    private sealed class Cursor
    {
        private readonly int _sy, _sx, _sides;
        private readonly long _originZ, _originY, _originX, _volumeY, _volumeX;
        private int[] _lower, _upper;
        private readonly int[] _vertical;
        private readonly int[] _edgeDelta = new int[12], _edgePlane = new int[12];
        private int _layerBase;
        private long _z;

        public Cursor(Long3 block, Long3 origin, Long3 volume, int sides)
        {
            _sy = (int)block.Y;
            _sx = (int)block.X;
            _sides = sides;
            (_originZ, _originY, _originX) = (origin.Z, origin.Y, origin.X);
            (_volumeY, _volumeX) = (volume.Y, volume.X);
            int sxy = _sy * _sx;
            for (int c = 0; c < 8; c++) CornerOffset[c] = (c & 1) + (c >> 1 & 1) * _sx + (c >> 2) * sxy;
            // An edge's slot: x- and y-edges in the lower or upper plane (two slots per position), z-edges in the layer.
            for (int e = 0; e < 12; e++)
            {
                var (low, _) = MarchingCubesTable.EdgeCorners[e];
                int axis = e >> 2, at = (low >> 1 & 1) * _sx + (low & 1);
                _edgePlane[e] = axis == 2 ? 2 : low >> 2;
                _edgeDelta[e] = at;
            }
            _lower = new int[sxy * 2 * sides];
            _upper = new int[sxy * 2 * sides];
            _vertical = new int[sxy * sides];
            _z = -2;
        }

        public readonly int[] CornerOffset = new int[8];

        public void BeginLayer(long z)
        {
            // The upper plane of layer z − 1 is the lower plane of layer z.
            if (z == _z + 1) (_lower, _upper) = (_upper, _lower);
            else Array.Fill(_lower, -1);
            Array.Fill(_upper, -1);
            Array.Fill(_vertical, -1);
            _z = z;
            _layerBase = checked((int)((z - _originZ) * _sy * _sx));
        }

        public int Index(long y, long x) => _layerBase + (int)(y - _originY) * _sx + (int)(x - _originX);

        /// <summary>Index of the first voxel of row (z, y) of the block at <paramref name="origin"/>.</summary>
        public int Index(long z, long y, Long3 origin) => checked((int)(((z - origin.Z) * _sy + (y - origin.Y)) * _sx));

        public long CellIndex(long y, long x) => (_z * _volumeY + y) * _volumeX + x;


        /// <summary>Where cell (y, x)'s edge slots start; <see cref="Slot"/> adds the edge's fixed offset.</summary>
        public int SlotBase(long y, long x) => (int)(y - _originY) * _sx + (int)(x - _originX);

        public ref int Slot(int edge, int slotBase, int side)
        {
            int at = slotBase + _edgeDelta[edge];
            int plane = _edgePlane[edge];
            if (plane == 2) return ref _vertical[at * _sides + side];
            return ref (plane == 0 ? _lower : _upper)[((at << 1) + (edge >> 2)) * _sides + side];
        }

        /// <summary>
        /// Offsets (from <paramref name="rowStart"/>) of the cells among the next <paramref name="cells"/> of a row whose
        /// eight corners are not all equal, written to <paramref name="found"/>; returns how many.
        /// </summary>
        public int MixedCells<T>(ReadOnlySpan<T> block, int rowStart, int cells, Span<int> found) where T : unmanaged, IEquatable<T>
        {
            var r00 = block[rowStart..];
            var r01 = block[(rowStart + CornerOffset[2])..];
            var r10 = block[(rowStart + CornerOffset[4])..];
            var r11 = block[(rowStart + CornerOffset[6])..];
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

        public ulong VertexId(int edge, long y, long x, int side)
        {
            var (low, _) = MarchingCubesTable.EdgeCorners[edge];
            long voxel = ((_z + (low >> 2)) * _volumeY + y + (low >> 1 & 1)) * _volumeX + x + (low & 1);
            return SurfacePiece.EdgeVertexId(voxel, edge >> 2, side);
        }
    }
}
