// Taubin λ|μ smoothing (G. Taubin, "A signal processing approach to fair surface design", SIGGRAPH 1995).
//
// Plain Laplacian smoothing moves every vertex a step λ towards the mean of its edge neighbours, the
// "umbrella" p ← p + λ·(mean(neighbours) − p). It removes the stair steps of a marching-cubes mesh, but it
// also shrinks: on a sphere every umbrella points inwards, so the whole surface walks towards its centre.
// Taubin reads the umbrella as a discrete Laplacian and one step as the filter 1 − λk on the surface
// "frequency" k (0 for the overall shape, up to 2 for vertex-to-vertex zigzag). Following each shrinking
// step λ > 0 by an inflating step μ < −λ gives the filter (1 − λk)(1 − μk), which stays near 1 below the
// pass-band frequency k_PB = 1/λ + 1/μ and falls towards 0 above it:
//
//      gain                                 λ = 0.5, μ = −0.53 (the defaults): k_PB ≈ 0.11,
//      1 ┤━━━━━━━━━━╮                       gain 1.0 at k = 0.11, 0.77 at k = 1, 0 at k = 2, so
//        │           ╲                      the shape keeps its size while noise fades a little
//        │             ╲                    more with every iteration; μ = λ gives plain
//        │               ╲                  Laplacian smoothing (gain (1 − λk)², shrinking)
//      0 ┼────────────────━━━━ k
//        0  k_PB        1       2
//
// Weights are uniform over the distinct edge neighbours of a vertex (a neighbour counts once, however many
// triangles share the edge). Vertices on an open boundary, an edge used by one triangle only (where the
// volume border cut the surface), stay where they are, so pieces meshed chunk by chunk still meet; the
// triangles are never touched, so a closed manifold stays closed and manifold. Each step reads only the
// positions of the step before (Jacobi, not Gauss-Seidel) and sums neighbours in index order in double,
// so the result does not depend on anything but the input; positions are rounded to float once, at the end.
namespace ChunkSeg.Kernels.Meshing;

/// <summary>Smoothing that moves vertices and keeps the triangles as they are.</summary>
public static class MeshSmoothing
{
    /// <summary>
    /// Taubin λ|μ smoothing with uniform umbrella weights: each iteration is one step of factor
    /// <paramref name="lambda"/> towards the neighbours' mean, then one of factor <paramref name="mu"/>.
    /// Open-boundary vertices stay fixed. Returns a new mesh with the same triangles; the input is not modified.
    /// </summary>
    /// <param name="iterations">Number of λ|μ step pairs; 0 returns an equal copy.</param>
    /// <param name="lambda">Shrinking step in (0, 1].</param>
    /// <param name="mu">Inflating step in [−1, 1], normally &lt; −λ; μ = λ gives plain Laplacian smoothing.</param>
    public static TriangleMesh Taubin(TriangleMesh mesh, int iterations, double lambda = 0.5, double mu = -0.53)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        if (iterations < 0)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations,
                $"iterations must be 0 or more (0 returns an unchanged copy); got {iterations}");
        if (!(lambda > 0 && lambda <= 1))
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda,
                $"lambda must lie in (0, 1], the share of the way to the neighbours' mean; got {lambda}. Taubin's default is 0.5");
        if (!(mu >= -1 && mu <= 1))
            throw new ArgumentOutOfRangeException(nameof(mu), mu,
                $"mu must lie in [-1, 1] and is normally a little more negative than -lambda; got {mu}. Taubin's default is -0.53");
        mesh.ThrowIfInvalid();

        int vertexCount = mesh.VertexCount;
        var (offsets, neighbours, isBoundary) = Neighbours(mesh.Triangles, vertexCount);

        var current = new double[mesh.Positions.Length];
        for (int i = 0; i < current.Length; i++) current[i] = mesh.Positions[i];
        var next = new double[current.Length];
        for (int it = 0; it < iterations; it++)
        {
            Step(current, next, offsets, neighbours, isBoundary, lambda);
            Step(next, current, offsets, neighbours, isBoundary, mu);
        }

        var positions = new float[current.Length];
        for (int i = 0; i < positions.Length; i++) positions[i] = (float)current[i];
        return new TriangleMesh(positions, (int[])mesh.Triangles.Clone());
    }

    /// <summary>One umbrella step: dst = src + factor·(mean of neighbours − src), fixed vertices copied.</summary>
    private static void Step(ReadOnlySpan<double> src, Span<double> dst, int[] offsets, int[] neighbours, bool[] isFixed, double factor)
    {
        for (int v = 0; v < isFixed.Length; v++)
        {
            int begin = offsets[v], end = offsets[v + 1];
            double x = src[3 * v], y = src[3 * v + 1], z = src[3 * v + 2];
            if (!isFixed[v] && end > begin)
            {
                double sx = 0, sy = 0, sz = 0;
                for (int k = begin; k < end; k++)
                {
                    int n = 3 * neighbours[k];
                    sx += src[n]; sy += src[n + 1]; sz += src[n + 2];
                }
                double inv = 1.0 / (end - begin);
                x += factor * (sx * inv - x);
                y += factor * (sy * inv - y);
                z += factor * (sz * inv - z);
            }
            dst[3 * v] = x; dst[3 * v + 1] = y; dst[3 * v + 2] = z;
        }
    }

    /// <summary>
    /// Distinct edge neighbours of every vertex as CSR arrays (sorted by index), and which vertices lie on an
    /// open boundary. Every triangle at vertex v lists its two other corners, so a neighbour appears once per
    /// triangle on that edge: appearing once means the edge is used by one triangle only.
    /// </summary>
    private static (int[] Offsets, int[] Neighbours, bool[] IsBoundary) Neighbours(int[] triangles, int vertexCount)
    {
        var offsets = new int[vertexCount + 1];
        for (int t = 0; t < triangles.Length; t += 3)
            for (int c = 0; c < 3; c++)
            {
                int v = triangles[t + c];
                if (triangles[t + (c + 1) % 3] != v) offsets[v + 1]++;
                if (triangles[t + (c + 2) % 3] != v) offsets[v + 1]++;
            }
        for (int v = 0; v < vertexCount; v++) offsets[v + 1] += offsets[v];

        var all = new int[offsets[vertexCount]];
        var fill = offsets.AsSpan(0, vertexCount).ToArray();
        for (int t = 0; t < triangles.Length; t += 3)
            for (int c = 0; c < 3; c++)
            {
                int v = triangles[t + c], a = triangles[t + (c + 1) % 3], b = triangles[t + (c + 2) % 3];
                if (a != v) all[fill[v]++] = a;
                if (b != v) all[fill[v]++] = b;
            }

        // Sort each vertex's list, count the runs of equal neighbours, keep one of each (in place: the write
        // position never passes the read position).
        var isBoundary = new bool[vertexCount];
        int write = 0;
        for (int v = 0; v < vertexCount; v++)
        {
            int begin = offsets[v], end = offsets[v + 1];
            offsets[v] = write;
            all.AsSpan(begin, end - begin).Sort();
            for (int k = begin; k < end;)
            {
                int run = k;
                while (run < end && all[run] == all[k]) run++;
                if (run - k == 1) isBoundary[v] = true;
                all[write++] = all[k];
                k = run;
            }
        }
        offsets[vertexCount] = write;
        return (offsets, all.AsSpan(0, write).ToArray(), isBoundary);
    }
}
