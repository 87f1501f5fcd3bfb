using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Kernels.Tests.Meshing;

/// <summary>
/// The case table and the block kernel: topology (closed, manifold, outward) on random fields, and the
/// piece of any sub-block equal to the same cells of the whole block.
/// </summary>
public sealed class MarchingCubesTests
{
    [Fact]
    public void Every_loop_has_a_fan_without_diagonals_in_a_cube_face()
    {
        _ = MarchingCubesTable.Edges.Length;
        Assert.Equal(0, MarchingCubesTable.FallbackTriangulations);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_case_uses_exactly_its_crossed_edges(bool mask)
    {
        for (int c = 1; c < 255; c++)
        {
            var edges = TrianglesOf(c, mask).SelectMany(t => t).ToHashSet();
            bool tunnel = edges.Remove(MarchingCubesTable.Centre);
            Assert.Equal(mask && MarchingCubesTable.HasInteriorTunnel(c), tunnel);
            var crossed = Enumerable.Range(0, 12).Where(e =>
            {
                var (lo, hi) = MarchingCubesTable.EdgeCorners[e];
                return ((c >> lo) & 1) != ((c >> hi) & 1);
            }).ToHashSet();
            Assert.True(crossed.SetEquals(edges), $"case {c}: triangles use edges {string.Join(',', edges)}, crossings are {string.Join(',', crossed)}");
        }
    }

    /// <summary>
    /// The mask table's surface in each case, as connected sets of crossed edges, against scikit-image's Lewiner
    /// marching cubes on the same 2×2×2 mask (golden file from tools/reference/mesh_reference.py cases): equal but
    /// for the 8 case-7 tunnels the table does not cut (see MarchingCubesTable), where skimage joins two sheets.
    /// </summary>
    [Fact]
    public void Mask_surfaces_connect_as_scikit_images_but_for_case_7_tunnels()
    {
        using var golden = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Meshing", "skimage_lewiner_cases.json")));
        var differing = new List<int>();
        for (int c = 1; c < 255; c++)
        {
            var expected = golden.RootElement.GetProperty("cases").GetProperty(c.ToString()).EnumerateArray()
                .Select(g => string.Join(',', g.EnumerateArray().Select(e => e.GetInt32()))).Order().ToList();
            var actual = Components(TrianglesOf(c, mask: true)).Select(g => string.Join(',', g)).Order().ToList();
            if (!expected.SequenceEqual(actual)) differing.Add(c);
        }
        // Three inside corners, pairwise across a face diagonal: the neighbours of one outside corner.
        var case7 = Enumerable.Range(1, 254).Where(c => int.PopCount(c) == 3 && Enumerable.Range(0, 8).Any(k =>
            (c >> k & 1) == 0 && Enumerable.Range(0, 3).All(axis => (c >> (k ^ (1 << axis)) & 1) == 1))).ToList();
        Assert.Equal(8, case7.Count);
        Assert.Equal(case7, differing);
        Assert.Equal(24, Enumerable.Range(1, 254).Count(MarchingCubesTable.HasInteriorTunnel));
    }

    /// <summary>A tunnel cell (case 6 seen from inside) inside a closed mask: one vertex at the cell's centre, the surface still closed and outward.</summary>
    [Fact]
    public void A_tunnel_cell_adds_a_centre_vertex_and_keeps_the_surface_closed()
    {
        int @case = Enumerable.Range(1, 254).First(MarchingCubesTable.HasInteriorTunnel);
        var shape = new Long3(4, 4, 4);
        var mask = new byte[shape.Volume];
        for (int k = 0; k < 8; k++)
            if ((@case >> k & 1) == 1) mask[((1 + (k >> 2)) * 4 + 1 + (k >> 1 & 1)) * 4 + 1 + (k & 1)] = 1;
        var piece = new SurfacePiece(0, shape, labelled: false);
        MarchingCubes.ExtractLabels<byte>(mask, shape, Long3.Zero, new Box3(Long3.Zero, shape - Long3.Uniform(1)), perLabel: false, piece);
        var centres = Enumerable.Range(0, piece.VertexCount).Where(v => SurfacePiece.DecodeVertexId(piece.VertexIds[v]).Axis < 0).ToList();
        Assert.Single(centres);
        Assert.Equal(SurfacePiece.CentreVertexId((1 * 4 + 1) * 4 + 1, 0), piece.VertexIds[centres[0]]);
        var mesh = Weld([piece]);
        var properties = MeshProperties.AssertClosedManifold(mesh);
        Assert.True(properties.Volume > 0, "outward normals give a positive enclosed volume");
        int centre = Array.IndexOf(Enumerable.Range(0, mesh.VertexCount).Select(v => (mesh.Positions[3 * v], mesh.Positions[3 * v + 1], mesh.Positions[3 * v + 2])).ToArray(), (1.5f, 1.5f, 1.5f));
        Assert.True(centre >= 0, "a vertex at the cell's centre (1.5, 1.5, 1.5)");
    }

    [Fact]
    public void A_single_inside_corner_gets_one_triangle_facing_away_from_it()
    {
        var values = new float[8];
        values[0] = 1;
        var piece = Extract(values, new Long3(2, 2, 2), 0.5f);
        Assert.Equal(1, piece.TriangleCount);
        var mesh = Weld([piece]);
        var n = MeshNormals.Face(mesh.Positions.AsSpan(3 * mesh.Triangles[0], 3), mesh.Positions.AsSpan(3 * mesh.Triangles[1], 3), mesh.Positions.AsSpan(3 * mesh.Triangles[2], 3));
        Assert.True(n.X > 0 && n.Y > 0 && n.Z > 0, $"normal {n} should point away from the inside corner at the origin");
    }

    public static TheoryData<int, double> Fields => new() { { 1, 0.0 }, { 2, 0.8 }, { 3, 1.5 }, { 4, 3.0 } };

    /// <summary>Random smooth fields padded with a low border: every surface is closed, manifold and outward.</summary>
    [Theory]
    [MemberData(nameof(Fields))]
    public void Surfaces_of_random_fields_are_closed_manifold_and_outward(int seed, double smoothness)
    {
        var shape = new Long3(14, 17, 19);
        var values = RandomField(shape, seed, smoothness, pad: true);
        var mesh = Weld([Extract(values, shape, 0f)]);
        Assert.True(mesh.TriangleCount > 50, $"only {mesh.TriangleCount} triangles");
        var properties = MeshProperties.AssertClosedManifold(mesh);
        Assert.True(properties.Volume > 0, "outward normals give a positive enclosed volume");
    }

    [Fact]
    public void Label_surfaces_are_closed_per_label_and_touching_labels_keep_their_own_vertices()
    {
        var shape = new Long3(9, 10, 11);
        var rng = new Random(5);
        var labels = new ushort[shape.Volume];
        for (long z = 1; z < shape.Z - 1; z++)
        for (long y = 1; y < shape.Y - 1; y++)
        for (long x = 1; x < shape.X - 1; x++)
            labels[(z * shape.Y + y) * shape.X + x] = (ushort)rng.Next(0, 4);
        var piece = new SurfacePiece(0, shape, labelled: true);
        MarchingCubes.ExtractLabels<ushort>(labels, shape, Long3.Zero, new Box3(Long3.Zero, shape - Long3.Uniform(1)), perLabel: true, piece);
        Assert.Equal([1UL, 2UL, 3UL], piece.Sections.Select(s => s.Label));
        var owner = new Dictionary<ulong, ulong>();
        foreach (var section in piece.Sections)
        {
            var share = piece.Section(section);
            // Touching labels never share a vertex: each keeps its own on their common edges.
            foreach (ulong id in share.Ids.Span) Assert.True(owner.TryAdd(id, section.Label), $"vertex {id} is in labels {owner.GetValueOrDefault(id)} and {section.Label}");
            var directed = new Dictionary<(ulong, ulong), int>();
            for (int t = 0; t < share.Cells.Length; t++)
            {
                var ids = Enumerable.Range(0, 3).Select(j => share.Ids.Span[share.Corners.Span[3 * t + j]]).ToArray();
                for (int j = 0; j < 3; j++) directed[(ids[j], ids[(j + 1) % 3])] = directed.GetValueOrDefault((ids[j], ids[(j + 1) % 3])) + 1;
            }
            foreach (var ((a, b), count) in directed)
            {
                Assert.Equal(1, count);
                Assert.True(directed.ContainsKey((b, a)), $"label {section.Label}: edge without twin");
            }
        }
    }

    /// <summary>Any sub-block's piece holds exactly the vertices and triangles of the same cells of the whole.</summary>
    [Fact]
    public void Pieces_of_sub_blocks_weld_into_the_whole_blocks_mesh()
    {
        var shape = new Long3(13, 16, 18);
        var values = RandomField(shape, seed: 7, smoothness: 1.2, pad: false);
        var whole = Weld([Extract(values, shape, 0f)]);
        foreach (var chunk in new[] { new Long3(1, 1, 1), new Long3(4, 5, 3), new Long3(13, 2, 18), new Long3(7, 16, 6) })
        {
            var pieces = new List<SurfacePiece>();
            for (long z = 0; z < shape.Z - 1; z += chunk.Z)
            for (long y = 0; y < shape.Y - 1; y += chunk.Y)
            for (long x = 0; x < shape.X - 1; x += chunk.X)
            {
                var cells = Box3.FromBounds(new Long3(z, y, x), Long3.Min(new Long3(z, y, x) + chunk, shape - Long3.Uniform(1)));
                var block = new Box3(cells.Start, cells.Size + Long3.Uniform(1));
                var sub = Crop(values, shape, block);
                var piece = new SurfacePiece(pieces.Count, shape, labelled: false);
                MarchingCubes.Extract(sub, block.Size, block.Start, cells, 0f, piece);
                pieces.Add(piece);
            }
            var welded = Weld(pieces);
            Assert.Equal(whole.Positions, welded.Positions);
            Assert.Equal(TriangleSet(whole), TriangleSet(welded));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Pieces_hold_their_vertices_in_id_order_and_every_one_is_a_triangle_corner(int kind)
    {
        // Random sub-blocks of random volumes: isosurfaces, foregrounds (tunnel cells included) and label surfaces.
        for (int trial = 0; trial < 200; trial++)
        {
            var rng = new Random(1000 * kind + trial);
            var shape = new Long3(rng.Next(2, 9), rng.Next(2, 9), rng.Next(2, 30));
            int n = (int)shape.Volume;
            var field = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
            var labels = Enumerable.Range(0, n).Select(_ => (byte)(rng.NextDouble() < 0.4 ? 0 : rng.Next(1, 4))).ToArray();
            var start = new Long3(rng.Next(0, (int)shape.Z - 1), rng.Next(0, (int)shape.Y - 1), rng.Next(0, (int)shape.X - 1));
            var end = new Long3(rng.Next((int)start.Z + 1, (int)shape.Z), rng.Next((int)start.Y + 1, (int)shape.Y), rng.Next((int)start.X + 1, (int)shape.X));
            var cells = Box3.FromBounds(start, end);
            var piece = new SurfacePiece(0, shape, labelled: kind == 2);
            if (kind == 0) MarchingCubes.Extract(field, shape, Long3.Zero, cells, 0.5f, piece);
            else MarchingCubes.ExtractLabels<byte>(labels, shape, Long3.Zero, cells, kind == 2, piece);
            // A label-surface piece label by label: ids in order and every vertex used within each label's share.
            var shares = kind == 2 ? piece.Sections.Select(piece.Section).ToArray() : [new PieceSection(0, piece.VertexIds.ToArray(), default, default, piece.TriangleCorners.ToArray())];
            Assert.Equal(piece.VertexCount, shares.Sum(s => s.Ids.Length));
            foreach (var share in shares)
            {
                for (int i = 1; i < share.Ids.Length; i++) Assert.True(share.Ids.Span[i - 1] < share.Ids.Span[i], $"trial {trial}: vertex {i} out of id order");
                var used = new bool[share.Ids.Length];
                foreach (int corner in share.Corners.Span) used[corner] = true;
                Assert.True(used.All(u => u), $"trial {trial}: {used.Count(u => !u)} vertices are no triangle's corner");
            }
        }
    }

    [Fact]
    public void Blocks_that_miss_corners_or_leave_the_volume_are_refused()
    {
        var shape = new Long3(4, 4, 4);
        var values = new float[shape.Volume];
        var piece = new SurfacePiece(0, shape, labelled: false);
        Assert.Throws<ArgumentOutOfRangeException>(() => MarchingCubes.Extract(values, shape, Long3.Zero, new Box3(Long3.Zero, shape), 0.5f, piece));
        Assert.Throws<ArgumentException>(() => MarchingCubes.Extract(values.AsSpan(1), shape, Long3.Zero, new Box3(Long3.Zero, Long3.Uniform(3)), 0.5f, piece));
        MarchingCubes.Extract(values, shape, Long3.Zero, new Box3(Long3.Zero, Long3.Uniform(3)), 0.5f, piece);
        Assert.Equal(0, piece.TriangleCount);
    }

    // ---- helpers ----

    private static List<int[]> TrianglesOf(int @case, bool mask = false)
    {
        var (offsets, edges) = mask ? (MarchingCubesTable.MaskOffsets, MarchingCubesTable.MaskEdges) : (MarchingCubesTable.Offsets, MarchingCubesTable.Edges);
        var list = new List<int[]>();
        for (int k = offsets[@case]; k < offsets[@case + 1]; k += 3)
            list.Add([edges[k], edges[k + 1], edges[k + 2]]);
        return list;
    }

    /// <summary>The triangles' connected components, each as its sorted vertices.</summary>
    private static List<List<int>> Components(List<int[]> triangles)
    {
        var parent = Enumerable.Range(0, 13).ToArray();
        int Root(int a) => parent[a] == a ? a : parent[a] = Root(parent[a]);
        foreach (var t in triangles) { parent[Root(t[1])] = Root(t[0]); parent[Root(t[2])] = Root(t[0]); }
        return triangles.SelectMany(t => t).Distinct().GroupBy(Root).Select(g => g.Order().ToList()).ToList();
    }

    internal static SurfacePiece Extract(float[] values, Long3 shape, float isovalue)
    {
        var piece = new SurfacePiece(0, shape, labelled: false);
        MarchingCubes.Extract(values, shape, Long3.Zero, new Box3(Long3.Zero, shape - Long3.Uniform(1)), isovalue, piece);
        return piece;
    }

    /// <summary>Welds pieces by vertex id; vertices in id order, positions in voxels (x, y, z).</summary>
    internal static TriangleMesh Weld(IReadOnlyList<SurfacePiece> pieces)
    {
        var offsets = new SortedDictionary<ulong, float>();
        foreach (var p in pieces)
            for (int v = 0; v < p.VertexCount; v++) offsets.TryAdd(p.VertexIds[v], p.VertexOffsets[v]);
        var index = new Dictionary<ulong, int>();
        var shape = pieces[0].VolumeShape;
        var coordinates = new MeshCoordinates(shape, Contracts.Volumes.VoxelSize.Isotropic);
        var positions = new float[3 * offsets.Count];
        foreach (var (id, offset) in offsets)
        {
            coordinates.PositionOf(id, offset, positions.AsSpan(3 * index.Count, 3));
            index[id] = index.Count;
        }
        var triangles = new List<int>();
        foreach (var p in pieces)
            foreach (int corner in p.TriangleCorners) triangles.Add(index[p.VertexIds[corner]]);
        return new TriangleMesh(positions, triangles.ToArray());
    }

    internal static HashSet<(int, int, int)> TriangleSet(TriangleMesh mesh)
    {
        var set = new HashSet<(int, int, int)>();
        var t = mesh.Triangles;
        for (int i = 0; i < t.Length; i += 3)
        {
            // Rotate so the smallest index leads: the same triangle with the same winding compares equal.
            int a = t[i], b = t[i + 1], c = t[i + 2];
            var key = a < b && a < c ? (a, b, c) : b < c ? (b, c, a) : (c, a, b);
            Assert.True(set.Add(key), $"triangle {key} twice");
        }
        return set;
    }

    /// <summary>Seeded noise, box-blurred <paramref name="smoothness"/> times; with <paramref name="pad"/> a border of −1 closes every surface.</summary>
    internal static float[] RandomField(Long3 shape, int seed, double smoothness, bool pad)
    {
        var rng = new Random(seed);
        var v = new float[shape.Volume];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int pass = 0; pass < (int)Math.Ceiling(smoothness); pass++)
        {
            var next = new float[v.Length];
            for (long z = 0; z < shape.Z; z++)
            for (long y = 0; y < shape.Y; y++)
            for (long x = 0; x < shape.X; x++)
            {
                double sum = 0; int n = 0;
                for (long dz = -1; dz <= 1; dz++)
                for (long dy = -1; dy <= 1; dy++)
                for (long dx = -1; dx <= 1; dx++)
                {
                    long zz = z + dz, yy = y + dy, xx = x + dx;
                    if (zz < 0 || yy < 0 || xx < 0 || zz >= shape.Z || yy >= shape.Y || xx >= shape.X) continue;
                    sum += v[(zz * shape.Y + yy) * shape.X + xx]; n++;
                }
                next[(z * shape.Y + y) * shape.X + x] = (float)(sum / n * 2.5);
            }
            v = next;
        }
        if (pad)
            for (long z = 0; z < shape.Z; z++)
            for (long y = 0; y < shape.Y; y++)
            for (long x = 0; x < shape.X; x++)
                if (z == 0 || y == 0 || x == 0 || z == shape.Z - 1 || y == shape.Y - 1 || x == shape.X - 1)
                    v[(z * shape.Y + y) * shape.X + x] = -1;
        return v;
    }

    private static float[] Crop(float[] values, Long3 shape, Box3 box)
    {
        var sub = new float[box.VoxelCount];
        int i = 0;
        for (long z = box.Start.Z; z < box.End.Z; z++)
        for (long y = box.Start.Y; y < box.End.Y; y++)
        for (long x = box.Start.X; x < box.End.X; x++)
            sub[i++] = values[(z * shape.Y + y) * shape.X + x];
        return sub;
    }
}
