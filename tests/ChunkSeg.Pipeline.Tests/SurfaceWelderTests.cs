using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Meshing;
using ChunkSeg.Kernels.Meshing;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// The welder against its specification, written the plain way (dictionaries and sorts): for any chunking, the
/// welded mesh is every piece's vertices once, in id order, and every triangle in cell order (a cell's in table
/// order); label surfaces are objects in (last layer, label) order, each laid out the same way.
/// </summary>
public sealed class SurfaceWelderTests
{
    public sealed record Case(int Seed, int Sz, int Sy, int Sx, int Cz, int Cy, int Cx, int Kind, bool Normals, bool ArrayOrder);

    private static Gen<Case> Cases =>
        from seed in Gen.Choose(0, 1 << 20)
        from sz in Gen.Choose(1, 12)
        from sy in Gen.Choose(1, 12)
        from sx in Gen.Choose(1, 12)
        from cz in Gen.Choose(1, sz)
        from cy in Gen.Choose(1, sy)
        from cx in Gen.Choose(1, sx)
        from kind in Gen.Choose(0, 2)
        from normals in Gen.Elements(false, true)
        from arrayOrder in Gen.Elements(false, true)
        select new Case(seed, sz, sy, sx, cz, cy, cx, kind, normals, arrayOrder);

    [Fact]
    public void Any_chunking_welds_to_the_specified_mesh()
    {
        var property = Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var rng = new Random(c.Seed);
            var shape = new Long3(c.Sz, c.Sy, c.Sx);
            int n = (int)shape.Volume;
            var field = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
            var labels = Enumerable.Range(0, n).Select(_ => (ushort)(rng.NextDouble() < 0.4 ? 0 : rng.Next(1, 4))).ToArray();
            var coordinates = new MeshCoordinates(shape, new VoxelSize(2, 0.5, 0.25), c.ArrayOrder);
            var grid = new ChunkGrid(shape, 1, new Long3(c.Cz, c.Cy, c.Cx), Halo.None);
            var pieces = Pieces(grid, field, labels, c.Kind);
            var welded = new Recorder();
            if (c.Kind == 2)
                new LabelWelder(coordinates, c.Normals, finish: null, workers: 1 + c.Seed % 3).Weld(pieces.Select(p => p.Index),
                    (index, section) => SurfacePiece.ReadSection(Stored(pieces[index.Chunk]), index, section, "piece"), welded);
            else new SurfaceWelder(grid, i => pieces[i], coordinates, c.Normals, finish: null).WeldSurface(0, welded);
            var expected = Specified(pieces, coordinates, c.Kind == 2, c.Normals);
            Assert.True(expected.Lines.SequenceEqual(welded.Lines), $"{c}: welded mesh differs from the specification");
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), property);
    }

    private static SurfacePiece[] Pieces(ChunkGrid grid, float[] field, ushort[] labels, int kind)
    {
        var shape = grid.VolumeShape;
        var pieces = new SurfacePiece[grid.Count];
        for (int i = 0; i < grid.Count; i++)
        {
            var core = grid[i].Core;
            var cells = Box3.FromBounds(core.Start, Long3.Min(core.End, shape - Long3.Uniform(1)));
            var piece = new SurfacePiece(i, shape, labelled: kind == 2);
            if (!cells.IsEmpty && shape.Z > 1 && shape.Y > 1 && shape.X > 1)
            {
                if (kind == 0) MarchingCubes.Extract(field, shape, Long3.Zero, cells, 0.5f, piece);
                else MarchingCubes.ExtractLabels<ushort>(labels, shape, Long3.Zero, cells, kind == 2, piece);
            }
            var stored = new MemoryStream();
            piece.Write(stored);
            stored.Position = 0;
            pieces[i] = SurfacePiece.Read(stored, $"piece {i}");
        }
        return pieces;
    }

    private static MemoryStream Stored(SurfacePiece piece)
    {
        var stored = new MemoryStream();
        piece.Write(stored);
        return stored;
    }

    /// <summary>The mesh as the welder's contract states it, built from all pieces at once.</summary>
    private static Recorder Specified(SurfacePiece[] pieces, MeshCoordinates coordinates, bool perLabel, bool normals)
    {
        var offsets = new SortedDictionary<ulong, (float Offset, ulong Label)>();
        var triangles = new List<(long Cell, long Piece, int Order, ulong A, ulong B, ulong C, ulong Label)>();
        long layerSize = coordinates.VolumeShape.Y * coordinates.VolumeShape.X;
        foreach (var p in pieces)
        {
            var shares = p.Labelled
                ? p.Sections.Select(section => (section.Label, Share: p.Section(section)))
                : [(0UL, new PieceSection(p.Chunk, p.VertexIds.ToArray(), p.VertexOffsets.ToArray(), p.TriangleCells.ToArray(), p.TriangleCorners.ToArray()))];
            int order = 0;
            foreach (var (label, share) in shares)
            {
                var (ids, corners) = (share.Ids.ToArray(), share.Corners.ToArray());
                for (int v = 0; v < ids.Length; v++) offsets.TryAdd(ids[v], (share.Offsets.Span[v], label));
                for (int t = 0; t < share.Cells.Length; t++)
                    triangles.Add((share.Cells.Span[t], p.Chunk, order++, ids[corners[3 * t]], ids[corners[3 * t + 1]], ids[corners[3 * t + 2]], label));
            }
        }
        // A cell belongs to one piece, so (cell, piece order) is cell order with each cell's table order.
        triangles.Sort((a, b) => a.Cell != b.Cell ? a.Cell.CompareTo(b.Cell) : a.Order.CompareTo(b.Order));
        var recorder = new Recorder();
        var objects = offsets.Values.Select(o => o.Label).Distinct()
            .Select(label => (Label: label, Last: triangles.Where(t => t.Label == label).Max(t => t.Cell / layerSize)))
            .OrderBy(o => perLabel ? o.Last : 0).ThenBy(o => o.Label).ToList();
        if (!perLabel) recorder.BeginObject("surface");
        long written = 0;
        foreach (var (label, _) in objects)
        {
            var ids = offsets.Where(o => o.Value.Label == label).Select(o => o.Key).ToList();
            var index = ids.Select((id, i) => (id, i)).ToDictionary(p => p.id, p => p.i);
            var positions = new float[3 * ids.Count];
            for (int i = 0; i < ids.Count; i++) coordinates.PositionOf(ids[i], offsets[ids[i]].Offset, positions.AsSpan(3 * i, 3));
            var corners = triangles.Where(t => t.Label == label)
                .SelectMany(t => coordinates.ArrayOrder ? new[] { t.A, t.C, t.B } : new[] { t.A, t.B, t.C })
                .Select(id => index[id]).ToArray();
            var mesh = new TriangleMesh(positions, corners);
            if (perLabel) recorder.BeginObject($"label_{label}");
            recorder.AddVertices(positions, normals ? MeshNormals.AreaWeighted(mesh) : default);
            recorder.AddTriangles(corners, written);
            written += ids.Count;
        }
        recorder.Complete();
        return recorder;
    }

    /// <summary>Records a mesh as text lines: vertices and faces apart, as the file writers lay them out.</summary>
    private sealed class Recorder : IMeshSink
    {
        private readonly List<string> _vertices = new(), _faces = new();
        public List<string> Lines { get; } = new();

        public void BeginObject(string name) { Flush(); Lines.Add("o " + name); }
        public void AddVertices(ReadOnlySpan<float> positions, ReadOnlySpan<float> normals)
        {
            for (int i = 0; i < positions.Length; i += 3)
                _vertices.Add($"v {positions[i]:R} {positions[i + 1]:R} {positions[i + 2]:R}" + (normals.IsEmpty ? "" : $" {normals[i]:R} {normals[i + 1]:R} {normals[i + 2]:R}"));
        }
        public void AddTriangles(ReadOnlySpan<int> corners, long first)
        {
            for (int i = 0; i < corners.Length; i += 3) _faces.Add($"f {first + corners[i]} {first + corners[i + 1]} {first + corners[i + 2]}");
        }
        public void Complete() => Flush();
        private void Flush() { Lines.AddRange(_vertices); Lines.AddRange(_faces); _vertices.Clear(); _faces.Clear(); }
    }
}
