using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Kernels.Tests.Meshing;

/// <summary>Taubin smoothing against analytic spheres and tori: topology kept, noise removed, volume kept.</summary>
public sealed class MeshSmoothingTests
{
    private const double Radius = 10;

    [Fact]
    public void Test_meshes_are_closed_outward_and_of_the_expected_topology()
    {
        var sphere = MeshProperties.AssertClosedManifold(TestMeshes.Icosphere(3, Radius));
        Assert.Equal((2, 1, 1280), (sphere.Euler, sphere.Components, sphere.Triangles));
        Assert.InRange(sphere.Volume, 0.98 * 4 / 3.0 * Math.PI * Radius * Radius * Radius, 4 / 3.0 * Math.PI * Radius * Radius * Radius);

        var torus = MeshProperties.AssertClosedManifold(TestMeshes.Torus(3, 1, 48, 16));
        Assert.Equal((0, 1), (torus.Euler, torus.Components));
        Assert.InRange(torus.Volume, 0.97 * 2 * Math.PI * Math.PI * 3, 2 * Math.PI * Math.PI * 3);

        var cut = MeshProperties.AssertManifold(TestMeshes.CutSphere(3, Radius, 0.3));
        Assert.Equal((1, 1), (cut.Euler, cut.Components));   // a disk
        Assert.True(cut.BoundaryEdges > 0);
    }

    [Fact]
    public void Property_checks_see_a_flipped_triangle_a_hole_and_a_pinch()
    {
        var sphere = TestMeshes.Icosphere(2);
        var flipped = (int[])sphere.Triangles.Clone();
        (flipped[0], flipped[1]) = (flipped[1], flipped[0]);
        Assert.True(MeshProperties.Of(new TriangleMesh(sphere.Positions, flipped)).RepeatedDirectedEdges > 0);

        var holed = MeshProperties.Of(new TriangleMesh(sphere.Positions, sphere.Triangles[3..]));
        Assert.Equal(3, holed.BoundaryEdges);

        // Two vertices of one component merged: the Euler characteristic moves off 2.
        var pinched = (int[])sphere.Triangles.Clone();
        int from = sphere.Triangles[0], to = sphere.Triangles[sphere.Triangles.Length / 2 + 1];
        for (int i = 0; i < pinched.Length; i++) if (pinched[i] == from) pinched[i] = to;
        Assert.NotEqual(2, MeshProperties.Of(new TriangleMesh(sphere.Positions, pinched)).Euler);
    }

    public static TheoryData<string> ClosedMeshes => new() { "sphere", "torus" };

    private static TriangleMesh Closed(string name) =>
        name == "sphere" ? TestMeshes.WithNoise(TestMeshes.Icosphere(4, Radius), 0.2, seed: 1)
                         : TestMeshes.WithNoise(TestMeshes.Torus(3, 1, 64, 24), 0.05, seed: 2);

    [Theory]
    [MemberData(nameof(ClosedMeshes))]
    public void Keeps_triangles_closedness_and_topology(string name)
    {
        var mesh = Closed(name);
        var before = MeshProperties.AssertClosedManifold(mesh);
        var smoothed = MeshSmoothing.Taubin(mesh, 10);

        Assert.Equal(mesh.Triangles, smoothed.Triangles);
        Assert.NotSame(mesh.Triangles, smoothed.Triangles);
        var after = MeshProperties.AssertClosedManifold(smoothed);
        Assert.Equal((before.Euler, before.Components), (after.Euler, after.Components));
        Assert.True(after.Volume > 0);
    }

    [Fact]
    public void Noisy_sphere_comes_closer_to_the_true_sphere()
    {
        var noisy = TestMeshes.WithNoise(TestMeshes.Icosphere(4, Radius), 0.3, seed: 11);
        double before = TestMeshes.Radii(noisy).Average(r => Math.Abs(r - Radius));
        double after = TestMeshes.Radii(MeshSmoothing.Taubin(noisy, 10)).Average(r => Math.Abs(r - Radius));
        Assert.True(after < 0.5 * before, $"mean |r - R| {before:G4} before, {after:G4} after");
    }

    [Fact]
    public void Clean_sphere_keeps_its_volume_where_plain_Laplacian_smoothing_shrinks_it()
    {
        var sphere = TestMeshes.Icosphere(4, Radius);
        double volume = MeshProperties.Of(sphere).Volume;
        double taubin = MeshProperties.Of(MeshSmoothing.Taubin(sphere, 10)).Volume / volume - 1;
        double laplacian = MeshProperties.Of(MeshSmoothing.Taubin(sphere, 10, lambda: 0.5, mu: 0.5)).Volume / volume - 1;

        Assert.True(Math.Abs(taubin) < 0.01, $"Taubin changed the volume by {taubin:P3}");
        Assert.True(laplacian < -0.02, $"plain Laplacian smoothing changed the volume by {laplacian:P3}");
        Assert.True(Math.Abs(taubin) < 0.1 * Math.Abs(laplacian), $"Taubin {taubin:P3}, Laplacian {laplacian:P3}");
    }

    [Fact]
    public void Open_boundary_stays_bit_for_bit_and_the_inside_moves()
    {
        var cut = TestMeshes.WithNoise(TestMeshes.CutSphere(4, Radius, 0.3), 0.2, seed: 5);
        var smoothed = MeshSmoothing.Taubin(cut, 10);

        Assert.Equal(MeshProperties.BoundaryEdgePositions(cut), MeshProperties.BoundaryEdgePositions(smoothed));
        var onBoundary = BoundaryVertices(cut);
        int moved = 0;
        for (int v = 0; v < cut.VertexCount; v++)
        {
            bool same = cut.Positions.AsSpan(3 * v, 3).SequenceEqual(smoothed.Positions.AsSpan(3 * v, 3));
            if (onBoundary.Contains(v)) Assert.True(same, $"boundary vertex {v} moved");
            else if (!same) moved++;
        }
        Assert.Equal(cut.VertexCount - onBoundary.Count, moved);
        MeshProperties.AssertManifold(smoothed);
    }

    [Fact]
    public void Zero_iterations_return_an_equal_copy()
    {
        var mesh = TestMeshes.WithNoise(TestMeshes.Icosphere(2, Radius), 0.2, seed: 3);
        var copy = MeshSmoothing.Taubin(mesh, 0);
        Assert.Equal(mesh.Positions, copy.Positions);
        Assert.Equal(mesh.Triangles, copy.Triangles);
        Assert.NotSame(mesh.Positions, copy.Positions);
    }

    [Fact]
    public void Result_is_deterministic_and_the_input_untouched()
    {
        var mesh = TestMeshes.WithNoise(TestMeshes.Torus(3, 1, 64, 24), 0.05, seed: 4);
        var positions = (float[])mesh.Positions.Clone();
        var first = MeshSmoothing.Taubin(mesh, 7);
        var second = MeshSmoothing.Taubin(mesh, 7);
        Assert.Equal(first.Positions, second.Positions);
        Assert.Equal(positions, mesh.Positions);
    }

    [Fact]
    public void Empty_mesh_gives_an_empty_mesh()
    {
        var smoothed = MeshSmoothing.Taubin(TriangleMesh.Empty, 5);
        Assert.Equal((0, 0), (smoothed.VertexCount, smoothed.TriangleCount));
    }

    [Fact]
    public void Invalid_arguments_are_refused_with_the_value()
    {
        var mesh = TestMeshes.Icosphere(1);
        Assert.Throws<ArgumentNullException>(() => MeshSmoothing.Taubin(null!, 1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => MeshSmoothing.Taubin(mesh, -1));
        Assert.Contains("got -1", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MeshSmoothing.Taubin(mesh, 1, lambda: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MeshSmoothing.Taubin(mesh, 1, lambda: double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => MeshSmoothing.Taubin(mesh, 1, lambda: 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => MeshSmoothing.Taubin(mesh, 1, mu: -2));
        Assert.Throws<ArgumentOutOfRangeException>(() => MeshSmoothing.Taubin(mesh, 1, mu: double.PositiveInfinity));

        var outOfRange = (int[])mesh.Triangles.Clone();
        outOfRange[4] = mesh.VertexCount;
        var invalid = Assert.Throws<ArgumentException>(() => MeshSmoothing.Taubin(new TriangleMesh(mesh.Positions, outOfRange), 1));
        Assert.Contains("triangle 1 refers to vertex", invalid.Message);
        var notFinite = (float[])mesh.Positions.Clone();
        notFinite[7] = float.NaN;
        Assert.Throws<ArgumentException>(() => MeshSmoothing.Taubin(new TriangleMesh(notFinite, mesh.Triangles), 1));
    }

    private static HashSet<int> BoundaryVertices(TriangleMesh mesh) =>
        MeshProperties.OpenEdges(mesh).SelectMany(e => new[] { e.A, e.B }).ToHashSet();
}
