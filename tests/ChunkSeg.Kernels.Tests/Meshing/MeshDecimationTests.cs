using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Kernels.Tests.Meshing;

/// <summary>Quadric decimation: topology kept (closed, manifold, oriented, same Euler and components), shape kept.</summary>
public sealed class MeshDecimationTests
{
    private const double Radius = 10;

    [Fact]
    public void Sphere_to_a_tenth_keeps_count_topology_and_shape()
    {
        var sphere = TestMeshes.Icosphere(5, Radius);                  // 20480 triangles
        var before = MeshProperties.AssertClosedManifold(sphere);
        var decimated = MeshDecimation.Decimate(sphere, 0.1);

        Assert.InRange(decimated.TriangleCount, 0.98 * 2048, 1.02 * 2048);
        var after = MeshProperties.AssertClosedManifold(decimated);
        Assert.Equal((2, 1), (after.Euler, after.Components));
        Assert.InRange(after.Area / before.Area, 0.98, 1.02);
        Assert.InRange(after.Volume / before.Volume, 0.98, 1.02);
        foreach (double r in TestMeshes.Radii(decimated))
            Assert.InRange(r, 0.98 * Radius, 1.02 * Radius);
        Assert.Equal(0, TestMeshes.InwardFacing(decimated));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.01)]
    public void Noisy_sphere_decimates_without_folds(double fraction)
    {
        var noisy = TestMeshes.WithNoise(TestMeshes.Icosphere(5, Radius), 0.05, seed: 9);
        var decimated = MeshDecimation.Decimate(noisy, fraction);
        double target = fraction * noisy.TriangleCount;
        Assert.InRange(decimated.TriangleCount, 0.98 * target, 1.02 * target);
        var after = MeshProperties.AssertClosedManifold(decimated);
        Assert.Equal((2, 1), (after.Euler, after.Components));
        Assert.InRange(after.Volume / MeshProperties.Of(noisy).Volume, 0.95, 1.02);
        Assert.Equal(0, TestMeshes.InwardFacing(decimated));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(1e-6)]
    public void Torus_keeps_its_hole(double fraction)
    {
        // A thin tube of 6 vertices around: the link condition is all that stops a collapse across it.
        var torus = TestMeshes.Torus(3, 0.5, 96, 6);
        var decimated = MeshDecimation.Decimate(torus, fraction);
        var after = MeshProperties.AssertClosedManifold(decimated);
        Assert.Equal((0, 1), (after.Euler, after.Components));
        Assert.True(after.Volume > 0);
        Assert.True(decimated.TriangleCount < torus.TriangleCount / 2);
    }

    [Fact]
    public void Torus_to_a_tenth_reaches_the_target()
    {
        var torus = TestMeshes.Torus(3, 1, 128, 40);                  // 10240 triangles
        var decimated = MeshDecimation.Decimate(torus, 0.1);
        Assert.InRange(decimated.TriangleCount, 0.98 * 1024, 1.02 * 1024);
        var after = MeshProperties.AssertClosedManifold(decimated);
        Assert.Equal((0, 1), (after.Euler, after.Components));
        Assert.InRange(after.Volume / MeshProperties.Of(torus).Volume, 0.98, 1.02);
    }

    [Fact]
    public void Two_spheres_stay_two()
    {
        var pair = TestMeshes.Join(TestMeshes.Icosphere(4, Radius), TestMeshes.Icosphere(4, 5, cx: 30));
        var decimated = MeshDecimation.Decimate(pair, 0.05);
        var after = MeshProperties.AssertClosedManifold(decimated);
        Assert.Equal((4, 2), (after.Euler, after.Components));
    }

    [Fact]
    public void Rough_meshes_keep_their_topology_at_every_fraction()
    {
        // Noise of about half an edge length folds the surface here and there to begin with; whatever the
        // collapses meet, closedness, orientation, Euler characteristic and components must survive.
        for (int seed = 0; seed < 4; seed++)
        {
            var sphere = TestMeshes.WithNoise(TestMeshes.Icosphere(3, Radius), 0.4, seed);
            var torus = TestMeshes.WithNoise(TestMeshes.Torus(3, 1, 40, 12), 0.15, seed);
            foreach (var (mesh, euler) in new[] { (sphere, 2), (torus, 0) })
                foreach (double fraction in new[] { 0.5, 0.2, 0.05, 1e-6 })
                {
                    var after = MeshProperties.AssertClosedManifold(MeshDecimation.Decimate(mesh, fraction));
                    Assert.Equal((euler, 1), (after.Euler, after.Components));
                }
        }
    }

    [Fact]
    public void Spheres_touching_at_one_vertex_keep_that_vertex()
    {
        // Two spheres welded at one point: the shared vertex is not inside one fan, so it stays locked.
        var first = TestMeshes.Icosphere(3, Radius);
        var second = TestMeshes.Icosphere(3, Radius, cz: -2 * Radius);
        int top = TopVertex(second), bottom = BottomVertex(first);
        var joined = TestMeshes.Join(first, second);
        var triangles = (int[])joined.Triangles.Clone();
        for (int i = 0; i < triangles.Length; i++)
            if (triangles[i] == first.VertexCount + top) triangles[i] = bottom;
        var pinched = new TriangleMesh(joined.Positions, triangles);
        var before = MeshProperties.Of(pinched);
        Assert.Equal((3, 1), (before.Euler, before.Components));

        var decimated = MeshDecimation.Decimate(pinched, 0.1);
        var after = MeshProperties.AssertClosedManifold(decimated);
        Assert.Equal((3, 1), (after.Euler, after.Components));
        Assert.Contains(Enumerable.Range(0, decimated.VertexCount), v =>
            decimated.Positions.AsSpan(3 * v, 3).SequenceEqual(first.Positions.AsSpan(3 * bottom, 3)));
    }

    private static int TopVertex(TriangleMesh mesh) =>
        Enumerable.Range(0, mesh.VertexCount).MaxBy(v => mesh.Positions[3 * v + 2]);

    private static int BottomVertex(TriangleMesh mesh) =>
        Enumerable.Range(0, mesh.VertexCount).MinBy(v => mesh.Positions[3 * v + 2]);

    [Theory]
    [InlineData(0.2)]
    [InlineData(1e-6)]
    public void Open_boundary_stays_where_it_was(double fraction)
    {
        var cut = TestMeshes.CutSphere(4, Radius, 0.3);
        var decimated = MeshDecimation.Decimate(cut, fraction);

        var after = MeshProperties.AssertManifold(decimated);
        Assert.Equal((1, 1), (after.Euler, after.Components));
        Assert.Equal(MeshProperties.BoundaryEdgePositions(cut), MeshProperties.BoundaryEdgePositions(decimated));
        Assert.True(decimated.TriangleCount < cut.TriangleCount / 2);
    }

    [Fact]
    public void Tiny_fraction_stops_at_a_small_valid_closed_mesh()
    {
        var decimated = MeshDecimation.Decimate(TestMeshes.Icosphere(4, Radius), 1e-6);
        var after = MeshProperties.AssertClosedManifold(decimated);
        Assert.Equal((2, 1), (after.Euler, after.Components));
        Assert.InRange(decimated.TriangleCount, 4, 40);
        Assert.True(after.Volume > 0);
        Assert.Equal(0, TestMeshes.InwardFacing(decimated));
    }

    [Fact]
    public void Fraction_one_returns_an_equal_copy()
    {
        var mesh = TestMeshes.WithNoise(TestMeshes.Icosphere(3, Radius), 0.1, seed: 6);
        var copy = MeshDecimation.Decimate(mesh, 1);
        Assert.Equal(mesh.Positions, copy.Positions);
        Assert.Equal(mesh.Triangles, copy.Triangles);
        Assert.NotSame(mesh.Triangles, copy.Triangles);
    }

    [Fact]
    public void Result_is_deterministic_compacted_and_the_input_untouched()
    {
        var mesh = TestMeshes.WithNoise(TestMeshes.Icosphere(4, Radius), 0.05, seed: 7);
        var (positions, triangles) = ((float[])mesh.Positions.Clone(), (int[])mesh.Triangles.Clone());
        var first = MeshDecimation.Decimate(mesh, 0.25);
        var second = MeshDecimation.Decimate(mesh, 0.25);

        Assert.Equal(first.Positions, second.Positions);
        Assert.Equal(first.Triangles, second.Triangles);
        Assert.Equal(positions, mesh.Positions);
        Assert.Equal(triangles, mesh.Triangles);
        // Vertices numbered in order of first use: each new index is at most one past the largest so far.
        int next = 0;
        foreach (int v in first.Triangles)
        {
            Assert.True(v <= next);
            if (v == next) next++;
        }
        Assert.Equal(first.VertexCount, next);
    }

    [Fact]
    public void Empty_mesh_gives_an_empty_mesh()
    {
        var decimated = MeshDecimation.Decimate(TriangleMesh.Empty, 0.5);
        Assert.Equal((0, 0), (decimated.VertexCount, decimated.TriangleCount));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.5)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Fraction_outside_zero_to_one_is_refused(double fraction)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => MeshDecimation.Decimate(TestMeshes.Icosphere(1), fraction));
        Assert.Equal("targetFraction", e.ParamName);
    }

    [Fact]
    public void Invalid_meshes_are_refused()
    {
        Assert.Throws<ArgumentNullException>(() => MeshDecimation.Decimate(null!, 0.5));
        var mesh = TestMeshes.Icosphere(1);
        var outOfRange = (int[])mesh.Triangles.Clone();
        outOfRange[2] = -1;
        var e = Assert.Throws<ArgumentException>(() => MeshDecimation.Decimate(new TriangleMesh(mesh.Positions, outOfRange), 0.5));
        Assert.Contains("triangle 0 refers to vertex -1", e.Message);
    }
}
