// Quadric-error-metric decimation by edge collapse (M. Garland and P. S. Heckbert, "Surface simplification
// using quadric error metrics", SIGGRAPH 1997).
//
// The plane of every triangle gives a quadric, the squared distance to that plane as a symmetric 4×4 matrix;
// a vertex starts with the sum of the quadrics of its triangles, each weighted by the triangle's area so that
// a finely and a coarsely tessellated part of one surface pay the same for the same displacement. Collapsing
// the edge u–v merges both ends into one vertex w at a point p with Q = Qu + Qv; the cost is pᵀQp, the
// summed squared distance from p to the planes that u and v stood on. p is the minimiser of that quadratic
// when its 3×3 part is well conditioned (and the minimiser lies near the edge), otherwise the cheapest of
// u, v and the midpoint.
//
//        x ─── a ─── y                 x ─── a ─── y
//         \   / \   /                   \    |    /
//          \ /   \ /                     \   |   /
//           u ─── v          →               w            the triangles u v a and v u b vanish;
//          / \   / \                     /   |   \        every other triangle of u or v uses w
//         /   \ /   \                   /    |    \
//        z ─── b ─── q                 z ─── b ─── q
//
// What keeps the surface a surface is the link condition (Dey, Edelsbrunner, Guha and Nekhayev, 1999):
// u–v may collapse only when the vertices adjacent to both u and v are exactly a and b, the tips of its two
// triangles, and u a b and v a b are not both triangles (then the four triangles are a whole tetrahedron,
// the smallest closed surface). A third common neighbour c means a loop u–v–c that bounds no triangle,
// around a handle or a thin tube; collapsing u–v would pinch it into an edge w–c shared by four triangles.
// With the condition, a closed 2-manifold stays a closed 2-manifold with the same Euler characteristic and
// the same components. Geometry adds two refusals: no remaining triangle of u or v may turn over (the dot
// product of its new and old normals must stay positive) or become degenerate.
//
// Vertices that are not inside one closed fan of triangles, such as those on an open boundary (an edge used
// once, where the volume border cut the surface), at a non-manifold edge or vertex, or in a degenerate
// triangle, are locked: no edge that touches one collapses, so open boundaries stay exactly where they were.
//
// Edges are collapsed cheapest first from a priority queue, ties broken by the vertex indices. A collapse
// changes only the costs of the edges at w, so instead of updating the queue in place those edges are queued
// again and the old entries are recognised as stale: each entry carries the collapse count when it was
// queued, each vertex the count when it last changed. A refused edge is dropped; a later collapse nearby may
// make it legal, so when the queue runs dry short of the target every live edge is queued again, and the
// run ends when a whole pass collapses nothing. The queue is also rebuilt when stale entries pile up. Every
// step depends only on the mesh, so the output is a pure function of the input.
using System.Diagnostics;

namespace ChunkSeg.Kernels.Meshing;

/// <summary>Decimation that keeps the topology: edge collapses ordered by the quadric error metric.</summary>
public static class MeshDecimation
{
    /// <summary>
    /// Collapses edges until about <paramref name="targetFraction"/> of the triangles remain, or until every
    /// remaining collapse would change the topology or fold the surface. Closed manifold meshes stay closed and
    /// manifold with the same Euler characteristic and components; vertices on open boundaries, non-manifold
    /// edges or vertices stay in place. Returns a new mesh, its vertices numbered in order of first use;
    /// the input is not modified.
    /// </summary>
    /// <param name="targetFraction">Share of the triangles to keep, in (0, 1]; 1 returns an equal copy.</param>
    public static TriangleMesh Decimate(TriangleMesh mesh, double targetFraction)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        if (!(targetFraction > 0 && targetFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(targetFraction), targetFraction,
                $"targetFraction is the share of triangles to keep and must lie in (0, 1]; got {targetFraction}. Use 1 for an unchanged copy");
        mesh.ThrowIfInvalid();

        if (targetFraction == 1) return new TriangleMesh((float[])mesh.Positions.Clone(), (int[])mesh.Triangles.Clone());
        if (mesh.TriangleCount == 0) return TriangleMesh.Empty;

        int target = (int)Math.Round(targetFraction * mesh.TriangleCount);
        var collapser = new EdgeCollapser(mesh);
        collapser.Run(target);
        return collapser.ToMesh();
    }
}

/// <summary>The state of one decimation run; trusts its caller (indices in range, positions finite).</summary>
internal sealed class EdgeCollapser
{
    private const int QuadricSize = 10;            // xx xy xz xw yy yz yw zz zw ww of the symmetric 4×4 matrix
    private const double MaxCondition = 1e6;       // ‖A‖·‖A⁻¹‖ (Frobenius) above which the optimum is not trusted
    private const double MinSineSquared = 1e-12;   // a new triangle whose corner at w is flatter than this is degenerate

    private readonly float[] _positions;
    private readonly int[] _triangles;
    private readonly bool[] _isDead;
    private readonly double[] _quadrics;
    private readonly bool[] _isLocked;
    private readonly int[] _changedAt;             // collapse count when the vertex last changed; int.MaxValue once merged away

    // Triangles of each vertex: _refs[_start[v] .. _start[v] + _count[v]). A merged vertex gets a new segment at
    // the end; the array is compacted when it fills.
    private readonly int[] _start;
    private readonly int[] _count;
    private int[] _refs;
    private int _refsLength;

    private readonly int[] _mark;                  // _mark[v] == _markStamp: v was seen in the current neighbourhood
    private int _markStamp;
    private int[] _scratch = new int[64];

    /// <summary>Queue order: cheapest first, then by the edge's vertex indices (Lo &lt; Hi). The element is the collapse count when queued.</summary>
    private readonly record struct EdgeKey(double Cost, int Lo, int Hi) : IComparable<EdgeKey>
    {
        public int CompareTo(EdgeKey other)
        {
            int c = Cost.CompareTo(other.Cost);
            if (c != 0) return c;
            c = Lo.CompareTo(other.Lo);
            return c != 0 ? c : Hi.CompareTo(other.Hi);
        }
    }

    private readonly PriorityQueue<int, EdgeKey> _queue = new();
    private int _liveTriangles;
    private int _collapses;

    public EdgeCollapser(TriangleMesh mesh)
    {
        _positions = (float[])mesh.Positions.Clone();
        _triangles = (int[])mesh.Triangles.Clone();
        int vertexCount = mesh.VertexCount, triangleCount = mesh.TriangleCount;
        _isDead = new bool[triangleCount];
        _liveTriangles = triangleCount;
        _changedAt = new int[vertexCount];
        _mark = new int[vertexCount];
        _isLocked = new bool[vertexCount];

        // Segments sized by corner count (an upper bound), then filled with each triangle once per vertex.
        _start = new int[vertexCount];
        _count = new int[vertexCount];
        foreach (int v in _triangles) _count[v]++;
        for (int v = 1; v < vertexCount; v++) _start[v] = _start[v - 1] + _count[v - 1];
        _refs = new int[Math.Max(2 * _triangles.Length, 1024)];
        _refsLength = _triangles.Length;
        var fill = (int[])_start.Clone();
        for (int t = 0; t < triangleCount; t++)
            for (int c = 0; c < 3; c++)
            {
                int v = _triangles[3 * t + c];
                if (c > 0 && _triangles[3 * t + c - 1] == v) continue;    // a vertex twice in one triangle: listed once
                if (c == 2 && _triangles[3 * t] == v) continue;
                _refs[fill[v]++] = t;
            }
        for (int v = 0; v < vertexCount; v++) _count[v] = fill[v] - _start[v];

        _quadrics = new double[QuadricSize * vertexCount];
        for (int t = 0; t < triangleCount; t++) AddPlaneQuadric(t);
        for (int v = 0; v < vertexCount; v++) _isLocked[v] = !IsClosedFan(v);
    }

    public void Run(int targetTriangles)
    {
        QueueAllEdges();
        int collapsesThisPass = 0;
        while (_liveTriangles > targetTriangles)
        {
            if (!_queue.TryDequeue(out int queuedAt, out EdgeKey key))
            {
                if (collapsesThisPass == 0) break;              // a whole pass refused everything: done
                QueueAllEdges();
                collapsesThisPass = 0;
                continue;
            }
            if (_changedAt[key.Lo] > queuedAt || _changedAt[key.Hi] > queuedAt) continue;   // stale or merged away
            if (!TryCollapse(key.Lo, key.Hi)) continue;
            collapsesThisPass++;
            // Stale entries outnumber live edges (about 1.5 per triangle) twice over: start a fresh pass.
            if (_queue.Count > 3 * _liveTriangles + 4096)
            {
                QueueAllEdges();
                collapsesThisPass = 0;
            }
        }
    }

    /// <summary>The live triangles in their original order, vertices renumbered in order of first use.</summary>
    public TriangleMesh ToMesh()
    {
        var newIndex = new int[_changedAt.Length];
        Array.Fill(newIndex, -1);
        var triangles = new int[3 * _liveTriangles];
        var positions = new List<float>();
        int written = 0, vertices = 0;
        for (int t = 0; t < _isDead.Length; t++)
        {
            if (_isDead[t]) continue;
            for (int c = 0; c < 3; c++)
            {
                int v = _triangles[3 * t + c];
                if (newIndex[v] < 0)
                {
                    newIndex[v] = vertices++;
                    positions.Add(_positions[3 * v]);
                    positions.Add(_positions[3 * v + 1]);
                    positions.Add(_positions[3 * v + 2]);
                }
                triangles[written++] = newIndex[v];
            }
        }
        Debug.Assert(written == triangles.Length);
        return new TriangleMesh(positions.ToArray(), triangles);
    }

    private void AddPlaneQuadric(int t)
    {
        int i0 = 3 * _triangles[3 * t], i1 = 3 * _triangles[3 * t + 1], i2 = 3 * _triangles[3 * t + 2];
        double x0 = _positions[i0], y0 = _positions[i0 + 1], z0 = _positions[i0 + 2];
        double ux = _positions[i1] - x0, uy = _positions[i1 + 1] - y0, uz = _positions[i1 + 2] - z0;
        double vx = _positions[i2] - x0, vy = _positions[i2 + 1] - y0, vz = _positions[i2 + 2] - z0;
        double nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
        double length = Math.Sqrt(nx * nx + ny * ny + nz * nz);
        if (!(length > 0)) return;                      // a degenerate triangle has no plane
        nx /= length; ny /= length; nz /= length;
        double d = -(nx * x0 + ny * y0 + nz * z0), area = 0.5 * length;
        Span<double> q = stackalloc double[QuadricSize]
        {
            nx * nx, nx * ny, nx * nz, nx * d, ny * ny, ny * nz, ny * d, nz * nz, nz * d, d * d,
        };
        for (int c = 0; c < 3; c++)
        {
            var target = _quadrics.AsSpan(QuadricSize * _triangles[3 * t + c], QuadricSize);
            for (int k = 0; k < QuadricSize; k++) target[k] += area * q[k];
        }
    }

    /// <summary>
    /// Whether the triangles of v form one closed fan: rotated to (v, x, y), the x are distinct, the y are
    /// the same set, and following x = y from triangle to triangle visits all of them in one cycle.
    /// </summary>
    private bool IsClosedFan(int v)
    {
        int k = _count[v];
        if (k < 3) return false;
        if (_scratch.Length < 3 * k) _scratch = new int[3 * k];
        Span<int> xs = _scratch.AsSpan(0, k), ys = _scratch.AsSpan(k, k), sortedYs = _scratch.AsSpan(2 * k, k);
        for (int i = 0; i < k; i++)
        {
            var (x, y) = Rotate(_refs[_start[v] + i], v);
            if (x == v || y == v || x == y) return false;
            xs[i] = x; ys[i] = y;
        }
        xs.Sort(ys);
        ys.CopyTo(sortedYs);
        sortedYs.Sort();
        for (int i = 1; i < k; i++)
            if (xs[i] == xs[i - 1]) return false;
        if (!xs.SequenceEqual(sortedYs)) return false;
        int steps = 0, at = 0;
        do { at = xs.BinarySearch(ys[at]); steps++; } while (at != 0 && steps <= k);
        return steps == k;
    }

    /// <summary>The two other corners of triangle t in its winding order, starting after v.</summary>
    private (int X, int Y) Rotate(int t, int v)
    {
        int a = _triangles[3 * t], b = _triangles[3 * t + 1], c = _triangles[3 * t + 2];
        return a == v ? (b, c) : b == v ? (c, a) : (a, b);
    }

    private bool Contains(int t, int v) =>
        _triangles[3 * t] == v || _triangles[3 * t + 1] == v || _triangles[3 * t + 2] == v;

    private void QueueAllEdges()
    {
        _queue.Clear();
        _queue.EnqueueRange(LiveEdges());               // on an empty queue: one O(n) heapify
    }

    /// <summary>Each collapsible edge once: as the directed edge lo → hi of the one triangle that holds it so.</summary>
    private IEnumerable<(int, EdgeKey)> LiveEdges()
    {
        for (int t = 0; t < _isDead.Length; t++)
        {
            if (_isDead[t]) continue;
            for (int c = 0; c < 3; c++)
            {
                int a = _triangles[3 * t + c], b = _triangles[3 * t + (c + 1) % 3];
                if (a < b && !_isLocked[a] && !_isLocked[b]) yield return (_collapses, Key(a, b));
            }
        }
    }

    private EdgeKey Key(int lo, int hi) => new(Place(lo, hi).Cost, lo, hi);

    private readonly record struct Placement(float X, float Y, float Z, double Cost);

    /// <summary>Where u and v merge and what it costs; a pure function of their positions and quadrics.</summary>
    private Placement Place(int u, int v)
    {
        Span<double> q = stackalloc double[QuadricSize];
        for (int k = 0; k < QuadricSize; k++) q[k] = _quadrics[QuadricSize * u + k] + _quadrics[QuadricSize * v + k];
        double xx = q[0], xy = q[1], xz = q[2], xw = q[3], yy = q[4], yz = q[5], yw = q[6], zz = q[7], zw = q[8];

        double ux = _positions[3 * u], uy = _positions[3 * u + 1], uz = _positions[3 * u + 2];
        double vx = _positions[3 * v], vy = _positions[3 * v + 1], vz = _positions[3 * v + 2];
        double mx = 0.5 * (ux + vx), my = 0.5 * (uy + vy), mz = 0.5 * (uz + vz);

        // A p = −b by the adjugate: A symmetric positive semi-definite, so det ≥ 0 and ‖A‖·‖adj A‖ / det
        // estimates the condition number (flat or ridge-like neighbourhoods make it huge).
        double c11 = yy * zz - yz * yz, c12 = xz * yz - xy * zz, c13 = xy * yz - xz * yy;
        double c22 = xx * zz - xz * xz, c23 = xy * xz - xx * yz, c33 = xx * yy - xy * xy;
        double det = xx * c11 + xy * c12 + xz * c13;
        double normA = Math.Sqrt(xx * xx + yy * yy + zz * zz + 2 * (xy * xy + xz * xz + yz * yz));
        double normAdj = Math.Sqrt(c11 * c11 + c22 * c22 + c33 * c33 + 2 * (c12 * c12 + c13 * c13 + c23 * c23));
        if (det > 0 && normA * normAdj <= MaxCondition * det)
        {
            double px = -(c11 * xw + c12 * yw + c13 * zw) / det;
            double py = -(c12 * xw + c22 * yw + c23 * zw) / det;
            double pz = -(c13 * xw + c23 * yw + c33 * zw) / det;
            // Noise can put the optimum of a nearly flat neighbourhood far away: keep it within an edge length.
            double dx = px - mx, dy = py - my, dz = pz - mz;
            double ex = ux - vx, ey = uy - vy, ez = uz - vz;
            if (dx * dx + dy * dy + dz * dz <= ex * ex + ey * ey + ez * ez)
                return At(q, (float)px, (float)py, (float)pz);
        }

        var best = At(q, (float)ux, (float)uy, (float)uz);
        var other = At(q, (float)vx, (float)vy, (float)vz);
        if (other.Cost < best.Cost) best = other;
        var middle = At(q, (float)mx, (float)my, (float)mz);
        return middle.Cost < best.Cost ? middle : best;
    }

    private static Placement At(ReadOnlySpan<double> q, float fx, float fy, float fz)
    {
        double x = fx, y = fy, z = fz;
        double cost = x * (q[0] * x + 2 * (q[1] * y + q[2] * z + q[3]))
                    + y * (q[4] * y + 2 * (q[5] * z + q[6]))
                    + z * (q[7] * z + 2 * q[8])
                    + q[9];
        return new Placement(fx, fy, fz, Math.Max(cost, 0));   // rounding can dip a little below zero
    }

    private void NextMark()
    {
        if (++_markStamp == int.MaxValue)
        {
            Array.Clear(_mark);
            _markStamp = 1;
        }
    }

    /// <summary>Collapses u–v into u when the topology and geometry checks pass; otherwise leaves all as it was.</summary>
    private bool TryCollapse(int u, int v)
    {
        // The two triangles on u–v: t1 = (u, v, a) and t2 = (v, u, b) in winding order.
        int t1 = -1, t2 = -1, a = -1, b = -1, shared = 0;
        for (int i = 0; i < _count[u]; i++)
        {
            int t = _refs[_start[u] + i];
            if (!Contains(t, v)) continue;
            shared++;
            var (x, y) = Rotate(t, u);
            if (x == v) (t1, a) = (t, y);
            else (t2, b) = (t, x);
        }
        if (shared != 2 || t1 < 0 || t2 < 0 || a == b) return false;

        // Link condition: the only common neighbours are a and b, and u a b, v a b are not both triangles.
        NextMark();
        for (int i = 0; i < _count[u]; i++)
        {
            int t = _refs[_start[u] + i];
            for (int c = 0; c < 3; c++) _mark[_triangles[3 * t + c]] = _markStamp;
        }
        for (int i = 0; i < _count[v]; i++)
        {
            int t = _refs[_start[v] + i];
            for (int c = 0; c < 3; c++)
            {
                int x = _triangles[3 * t + c];
                if (x != u && x != v && x != a && x != b && _mark[x] == _markStamp) return false;
            }
        }
        if (HasTriangleWith(u, a, b) && HasTriangleWith(v, a, b)) return false;

        var p = Place(u, v);
        if (!KeepsTrianglesUpright(u, v, p) || !KeepsTrianglesUpright(v, u, p)) return false;

        _isDead[t1] = _isDead[t2] = true;
        _liveTriangles -= 2;
        RemoveRef(a, t1);
        RemoveRef(b, t2);

        EnsureRefCapacity(_count[u] + _count[v]);
        int start = _refsLength;
        for (int i = 0; i < _count[u]; i++)
        {
            int t = _refs[_start[u] + i];
            if (t != t1 && t != t2) _refs[_refsLength++] = t;
        }
        for (int i = 0; i < _count[v]; i++)
        {
            int t = _refs[_start[v] + i];
            if (t == t1 || t == t2) continue;
            for (int c = 0; c < 3; c++)
                if (_triangles[3 * t + c] == v) _triangles[3 * t + c] = u;
            _refs[_refsLength++] = t;
        }
        _start[u] = start;
        _count[u] = _refsLength - start;
        _count[v] = 0;

        (_positions[3 * u], _positions[3 * u + 1], _positions[3 * u + 2]) = (p.X, p.Y, p.Z);
        for (int k = 0; k < QuadricSize; k++) _quadrics[QuadricSize * u + k] += _quadrics[QuadricSize * v + k];
        _changedAt[v] = int.MaxValue;
        _changedAt[u] = ++_collapses;

        // The edges at u changed cost: queue them again (their old entries are now stale).
        NextMark();
        _mark[u] = _markStamp;
        for (int i = 0; i < _count[u]; i++)
        {
            int t = _refs[_start[u] + i];
            for (int c = 0; c < 3; c++)
            {
                int x = _triangles[3 * t + c];
                if (_mark[x] == _markStamp) continue;
                _mark[x] = _markStamp;
                if (!_isLocked[x]) _queue.Enqueue(_collapses, Key(Math.Min(u, x), Math.Max(u, x)));
            }
        }
        return true;
    }

    private bool HasTriangleWith(int v, int a, int b)
    {
        for (int i = 0; i < _count[v]; i++)
        {
            int t = _refs[_start[v] + i];
            if (Contains(t, a) && Contains(t, b)) return true;
        }
        return false;
    }

    /// <summary>
    /// Whether every triangle of <paramref name="moving"/> that survives the collapse (those without
    /// <paramref name="other"/>) keeps its normal within 90° of the old one and stays non-degenerate when
    /// <paramref name="moving"/> goes to p.
    /// </summary>
    private bool KeepsTrianglesUpright(int moving, int other, Placement p)
    {
        double px = p.X, py = p.Y, pz = p.Z;
        double mx = _positions[3 * moving], my = _positions[3 * moving + 1], mz = _positions[3 * moving + 2];
        for (int i = 0; i < _count[moving]; i++)
        {
            int t = _refs[_start[moving] + i];
            if (Contains(t, other)) continue;
            var (x, y) = Rotate(t, moving);
            double xx = _positions[3 * x], xy = _positions[3 * x + 1], xz = _positions[3 * x + 2];
            double yx = _positions[3 * y], yy = _positions[3 * y + 1], yz = _positions[3 * y + 2];

            // Normals of (moving, x, y) before and after, both as (x − corner) × (y − corner).
            var (ox, oy, oz) = Cross(xx - mx, xy - my, xz - mz, yx - mx, yy - my, yz - mz);
            double ax = xx - px, ay = xy - py, az = xz - pz, bx = yx - px, by = yy - py, bz = yz - pz;
            var (nx, ny, nz) = Cross(ax, ay, az, bx, by, bz);
            if (ox * nx + oy * ny + oz * nz <= 0) return false;
            double n2 = nx * nx + ny * ny + nz * nz;
            if (n2 <= MinSineSquared * (ax * ax + ay * ay + az * az) * (bx * bx + by * by + bz * bz)) return false;
        }
        return true;
    }

    private static (double X, double Y, double Z) Cross(double ax, double ay, double az, double bx, double by, double bz) =>
        (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx);

    /// <summary>Removes triangle t from v's list, keeping the order of the rest.</summary>
    private void RemoveRef(int v, int t)
    {
        var list = _refs.AsSpan(_start[v], _count[v]);
        int at = list.IndexOf(t);
        Debug.Assert(at >= 0);
        list[(at + 1)..].CopyTo(list[at..]);
        _count[v]--;
    }

    /// <summary>Makes room for <paramref name="extra"/> more references, compacting the live segments when full.</summary>
    private void EnsureRefCapacity(int extra)
    {
        if (_refsLength + extra <= _refs.Length) return;
        long live = 0;
        foreach (int n in _count) live += n;
        var fresh = new int[checked((int)Math.Max(2 * live + extra, 1024))];
        int length = 0;
        for (int v = 0; v < _count.Length; v++)
        {
            _refs.AsSpan(_start[v], _count[v]).CopyTo(fresh.AsSpan(length));
            _start[v] = length;
            length += _count[v];
        }
        _refs = fresh;
        _refsLength = length;
    }
}
