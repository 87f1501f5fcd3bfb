#!/usr/bin/python3
"""Independent checks of ChunkSeg meshes: read them with meshio, compare them with scikit-image.

  mesh_reference.py check MESH                     -> JSON on stdout: counts and topology per object
  mesh_reference.py compare MESH VOLUME.npy SPEC   -> JSON on stdout: ChunkSeg vs skimage.measure.marching_cubes
  mesh_reference.py npy FILE.h5 DATASET OUT.npy    -> writes an HDF5 dataset as .npy (h5py)
  mesh_reference.py time VOLUME.npy MODE REPEATS   -> JSON: best wall time of skimage marching_cubes, MODE one of
                                                      iso (float field at 0), foreground (labels > 0 at 0.5),
                                                      per-label (labels == id on each object's padded bounding box)
  mesh_reference.py cases                          -> JSON: for each marching-cubes case 1..254 of a 2x2x2 mask,
                                                      skimage's (Lewiner) surface as connected components, each
                                                      the sorted cube edges it crosses (12 = a vertex inside the
                                                      cube); corner k = x + 2y + 4z, edge 4*axis + k' as in
                                                      src/Kernels/Meshing/MarchingCubesTable.cs

MESH is an .obj or .ply file as `chunkseg mesh` writes it (x y z in micrometers unless SPEC says zyx).
SPEC is a JSON object: {"spacing": [z, y, x], "level": 0.5, "per_label": false, "zyx": false}.
With per_label, VOLUME holds integer labels and each label is meshed by skimage as labels == id at 0.5 on
the whole volume; otherwise VOLUME is the scalar field (float) meshed at "level".

Per object the topology check reports: vertices and triangles used, edges used by one triangle (open
border), by more than two (non-manifold), directed edges used twice (inconsistent winding), repeated vertex
positions, Euler characteristic V - E + F and connected components, surface area and signed volume.
"""
import json
import sys

import meshio
import numpy as np
from scipy.spatial import cKDTree
from skimage import measure


def read_objects(path):
    """The mesh as (points, [(name, triangles)]): OBJ groups or PLY 'label' face data become objects."""
    mesh = meshio.read(path)
    points = np.asarray(mesh.points, dtype=np.float64)
    objects = []
    if path.lower().endswith(".obj"):
        group_ids = mesh.cell_data.get("obj:group_ids")
        for i, block in enumerate(mesh.cells):
            assert block.type == "triangle", block.type
            gid = int(group_ids[i][0]) if group_ids is not None else i
            objects.append((f"group{gid}", np.asarray(block.data, dtype=np.int64)))
    else:
        triangles = np.concatenate([np.asarray(b.data, dtype=np.int64) for b in mesh.cells if b.type == "triangle"])
        labels = None
        for key, data in mesh.cell_data.items():
            if key.endswith("label"):
                labels = np.concatenate(data)
        if labels is None:
            objects.append(("surface", triangles))
        else:
            for value in np.unique(labels):
                objects.append((f"label_{int(value)}", triangles[labels == value]))
    return points, objects


def topology(points, triangles):
    used = np.unique(triangles)
    directed = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    _, edge_counts = np.unique(undirected, axis=0, return_counts=True)
    _, directed_counts = np.unique(directed, axis=0, return_counts=True)
    _, position_counts = np.unique(points[used], axis=0, return_counts=True)
    # Connected components over the triangles' vertices (union-find).
    parent = {int(v): int(v) for v in used}

    def find(v):
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b, c in triangles:
        ra, rb, rc = find(int(a)), find(int(b)), find(int(c))
        parent[rb] = ra
        parent[find(rc)] = ra
    components = len({find(int(v)) for v in used})
    p = points[triangles]
    cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1).sum()
    volume = np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0
    return {
        "vertices": int(len(used)),
        "triangles": int(len(triangles)),
        "edges": int(len(edge_counts)),
        "border_edges": int((edge_counts == 1).sum()),
        "nonmanifold_edges": int((edge_counts > 2).sum()),
        "misoriented_edges": int((directed_counts > 1).sum()),
        "duplicate_positions": int((position_counts > 1).sum()),
        "degenerate_triangles": int((np.linalg.norm(cross, axis=1) == 0).sum()),
        "euler": int(len(used) - len(edge_counts) + len(triangles)),
        "components": components,
        "area": float(area),
        "volume": float(volume),
    }


def skimage_mesh(field, level, spacing):
    verts, faces, _, _ = measure.marching_cubes(field, level=level, spacing=tuple(spacing))
    return verts, faces


def surface_samples(verts, faces):
    """Points on a surface: its vertices, edge midpoints and triangle centroids."""
    p = verts[faces]
    return np.concatenate([verts[np.unique(faces)], (p[:, 0] + p[:, 1]) / 2, (p[:, 1] + p[:, 2]) / 2,
                           (p[:, 2] + p[:, 0]) / 2, p.mean(axis=1)])


def point_triangle_distance(q, a, b, c):
    """Distance from points q to triangles (a, b, c), row by row (Ericson, Real-Time Collision Detection 5.1.5)."""
    ab, ac, ap = b - a, c - a, q - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = q - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = q - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    closest = np.empty_like(q)
    denom = va + vb + vc
    with np.errstate(divide="ignore", invalid="ignore"):
        v = vb / denom
        w = vc / denom
        closest[:] = a + ab * v[:, None] + ac * w[:, None]
        cases = [
            ((d1 <= 0) & (d2 <= 0), a),
            ((d3 >= 0) & (d4 <= d3), b),
            ((d6 >= 0) & (d5 <= d6), c),
        ]
        t = d1 / (d1 - d3)
        m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        closest[m] = (a + ab * t[:, None])[m]
        t = d2 / (d2 - d6)
        m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        closest[m] = (a + ac * t[:, None])[m]
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        m = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
        closest[m] = (b + (c - b) * t[:, None])[m]
        for mask, point in cases:
            closest[mask] = point[mask]
    return np.linalg.norm(q - closest, axis=1)


def one_sided(samples, verts, faces, k=24):
    """Largest distance from the sample points to the surface (verts, faces)."""
    centroids = verts[faces].mean(axis=1)
    _, nearest = cKDTree(centroids).query(samples, k=min(k, len(faces)))
    nearest = nearest.reshape(len(samples), -1)
    best = np.full(len(samples), np.inf)
    for j in range(nearest.shape[1]):
        tri = faces[nearest[:, j]]
        best = np.minimum(best, point_triangle_distance(samples, verts[tri[:, 0]], verts[tri[:, 1]], verts[tri[:, 2]]))
    return float(best.max())


def hausdorff(verts_a, faces_a, verts_b, faces_b):
    """Symmetric Hausdorff distance between two surfaces, measured from points sampled on each to the other."""
    return max(one_sided(surface_samples(verts_a, faces_a), verts_b, faces_b),
               one_sided(surface_samples(verts_b, faces_b), verts_a, faces_a))


def enclosed_volume(verts, faces):
    """skimage winds its triangles the other way round (normals into the inside): its volume, made positive."""
    p = verts[faces]
    return abs(float(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0))


def compare(mesh_path, volume_path, spec):
    spacing = spec["spacing"]
    written, objects = read_objects(mesh_path)
    # skimage's order is z y x; topology (and the sign of the volume) is taken in the file's own order.
    points = written if spec.get("zyx", False) else written[:, ::-1]
    volume = np.load(volume_path)
    results = []
    if spec.get("per_label", False):
        ids = [int(v) for v in np.unique(volume) if v != 0]
        # Objects are written in a ChunkSeg-specific order; match them to labels by their vertices' voxels.
        by_label = {}
        for name, triangles in objects:
            by_label[name] = (triangles, np.unique(triangles))
        for label in ids:
            verts, faces = skimage_mesh((volume == label).astype(np.float32), 0.5, spacing)
            # Our object for this label: the one whose vertex set is nearest to skimage's.
            tree = cKDTree(verts)
            best = min(by_label.items(), key=lambda kv: tree.query(points[kv[1][1]])[0].mean())
            triangles, used = best[1]
            mine = topology(written, triangles)
            results.append({
                "label": label, "closed": mine["border_edges"] == 0,
                "area": mine["area"], "volume": mine["volume"],
                "euler": mine["euler"], "components": mine["components"],
                "skimage_euler": topology(verts, faces)["euler"],
                "skimage_area": float(measure.mesh_surface_area(verts, faces)),
                "skimage_volume": enclosed_volume(verts, faces),
                "hausdorff": hausdorff(points, triangles, verts, faces),
            })
    else:
        verts, faces = skimage_mesh(volume.astype(np.float32), spec.get("level", 0.5), spacing)
        triangles = np.concatenate([t for _, t in objects])
        mine = topology(written, triangles)
        results.append({
            "label": 0, "closed": mine["border_edges"] == 0,
            "area": mine["area"], "volume": mine["volume"],
            "skimage_area": float(measure.mesh_surface_area(verts, faces)),
            "skimage_volume": enclosed_volume(verts, faces),
            "hausdorff": hausdorff(points, triangles, verts, faces),
        })
    return results


def time_skimage(volume, mode, repeats):
    import time

    import skimage
    from scipy import ndimage

    def run():
        if mode == "iso":
            return len(measure.marching_cubes(volume, level=0.0)[1])
        if mode == "foreground":
            return len(measure.marching_cubes((volume > 0).astype(np.float32), level=0.5)[1])
        triangles = 0
        for label, box in enumerate(ndimage.find_objects(volume), start=1):
            if box is None:
                continue
            padded = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
            mask = (volume[padded] == label).astype(np.float32)
            if min(mask.shape) >= 2:
                triangles += len(measure.marching_cubes(mask, level=0.5)[1])
        return triangles

    best, triangles = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        triangles = run()
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "triangles": triangles, "skimage": skimage.__version__}


def case_components():
    """skimage's surface of each 2x2x2 mask case as components of crossed cube edges (12: inside the cube)."""
    def edge_of(xyz):
        off_grid = [abs(a - round(a)) > 1e-6 for a in xyz]
        if sum(off_grid) != 1:
            return 12
        axis = off_grid.index(True)
        u, v = (int(round(xyz[i])) for i in range(3) if i != axis)
        return 4 * axis + u + 2 * v

    cases = {}
    for case in range(1, 255):
        mask = np.zeros((2, 2, 2), np.float32)
        for k in range(8):
            if case >> k & 1:
                mask[k >> 2 & 1, k >> 1 & 1, k & 1] = 1
        verts, faces, _, _ = measure.marching_cubes(mask, 0.5, method="lewiner", allow_degenerate=True)
        ids = [edge_of(v[::-1]) for v in verts]
        parent = {}

        def root(a):
            while parent.setdefault(a, a) != a:
                a = parent[a]
            return a

        for f in faces:
            for i in f[1:]:
                parent[root(ids[i])] = root(ids[f[0]])
        groups = {}
        for f in faces:
            for i in f:
                groups.setdefault(root(ids[i]), set()).add(ids[i])
        cases[str(case)] = sorted(sorted(g) for g in groups.values())
    import skimage
    return {"skimage": skimage.__version__, "cases": cases}


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        points, objects = read_objects(argv[1])
        report = {"points": int(len(points)), "objects": [dict(name=n, **topology(points, t)) for n, t in objects]}
    elif len(argv) >= 4 and argv[0] == "time":
        report = time_skimage(np.load(argv[1]), argv[2], int(argv[3]))
    elif len(argv) >= 4 and argv[0] == "npy":
        import h5py
        with h5py.File(argv[1], "r") as f:
            np.save(argv[3], f[argv[2]][...])
        return
    elif argv[:1] == ["cases"]:
        report = case_components()
    elif len(argv) >= 4 and argv[0] == "compare":
        report = compare(argv[1], argv[2], json.loads(argv[3]))
    else:
        sys.exit(__doc__)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
