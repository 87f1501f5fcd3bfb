using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Coordinator.Meshing;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Kernels.Meshing;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench mesh`: marching cubes on a smooth random field and on the labelled blobs of the same field,
/// ChunkSeg's kernel (whole volume in memory, one thread) and the `mesh` command (Zarr to binary PLY, chunked, all
/// workers) against scikit-image's marching_cubes on the same volumes, side by side.
/// </summary>
internal static class MeshBench
{
    public static Command Create(CommandContext context)
    {
        var size = new Option<int>("--size") { Description = "Edge of the cubic volume", DefaultValueFactory = _ => 256 };
        var sigma = new Option<double>("--sigma") { Description = "Smoothing of the noise, in voxels", DefaultValueFactory = _ => 4 };
        var chunk = new Option<int>("--chunk") { Description = "Chunk edge of the `mesh` command run", DefaultValueFactory = _ => 128 };
        var workers = Options.Workers();
        var repeats = BenchCommand.Repeats(2);
        var python = BenchCommand.Python("scikit-image");
        var mesh = new Command("mesh", "Marching cubes voxels/s of ChunkSeg vs skimage.measure.marching_cubes") { size, sigma, chunk, workers, repeats, python };
        mesh.SetAction((parse, ct) =>
        {
            int n = parse.GetValue(size), edge = parse.GetValue(chunk), r = Math.Max(1, parse.GetValue(repeats));
            int threads = OptionValues.CheckWorkers(parse.GetValue(workers));
            if (n < 8 || edge < 2) throw new Contracts.Errors.UsageException("--size must be at least 8 and --chunk at least 2");
            context.Error.WriteLine($"bench mesh: making a {n}^3 smooth random field (sigma {parse.GetValue(sigma)}) and labelling its blobs");
            var field = LabelBench.SmoothNoise(n, parse.GetValue(sigma), threads);
            var mask = new byte[field.LongLength];
            for (long i = 0; i < mask.LongLength; i++) mask[i] = field[i] > 0 ? (byte)1 : (byte)0;
            var labels = new uint[mask.LongLength];
            using (var runs = ConnectedComponents.Label<byte>(mask, n, n, n, Connectivity.Faces)) runs.WriteLabels(labels);
            long voxels = (long)n * n * n;
            var shape = Long3.Uniform(n);
            var cells = new Box3(Long3.Zero, shape - Long3.Uniform(1));
            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(dir);
            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"{n}^3, best of {r}; {labels.Max():N0} labelled blobs"))
                .AddColumns("surface", "implementation", "triangles", "Mvoxels/s", "vs skimage");
            try
            {
                string script = BenchCommand.ExtractScript("mesh_reference.py", dir);
                string fieldNpy = Path.Combine(dir, "field.npy"), labelsNpy = Path.Combine(dir, "labels.npy");
                Npy.Write(fieldNpy, field, n, n, n);
                Npy.Write(labelsNpy, System.Runtime.InteropServices.MemoryMarshal.Cast<uint, int>(labels.AsSpan()), n, n, n);
                string labelsZarr = Path.Combine(dir, "labels.zarr");
                using (var volume = VolumeStore.Create(new VolumeAddress(VolumeFormat.Zarr, labelsZarr, ""), new VolumeCreateOptions(AxisOrder.Parse("zyx"),
                           [n, n, n], DataType.UInt32, [64, 64, 64], VoxelSize.Isotropic, CodecSpec.Default)))
                    volume.Write(NdBox.Whole([n, n, n]), System.Runtime.InteropServices.MemoryMarshal.AsBytes(labels.AsSpan()));

                foreach (var (mode, title) in new[] { ("iso", "isosurface of the field at 0"), ("foreground", "foreground of the labels"), ("per-label", "one surface per label") })
                {
                    int triangles = 0;
                    void Kernel()
                    {
                        using var piece = new SurfacePiece(0, shape, labelled: mode == "per-label");
                        if (mode == "iso") MarchingCubes.Extract(field, shape, Long3.Zero, cells, 0f, piece);
                        else MarchingCubes.ExtractLabels<uint>(labels, shape, Long3.Zero, cells, mode == "per-label", piece);
                        triangles = piece.TriangleCount;
                    }
                    // What skimage returns: one welded mesh in memory. ChunkSeg's way to it: chunks on all workers, then the weld.
                    var grid = new ChunkGrid(shape, 1, Long3.Uniform(edge), Halo.None);
                    long welded = 0;
                    void Chunked()
                    {
                        var pieces = new SurfacePiece[grid.Count];
                        Parallel.For(0, grid.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
                        {
                            var core = grid[c].Core;
                            var cellsOfChunk = Box3.FromBounds(core.Start, Long3.Min(core.End, shape - Long3.Uniform(1)));
                            var piece = new SurfacePiece(c, shape, labelled: mode == "per-label");
                            if (!cellsOfChunk.IsEmpty)
                            {
                                if (mode == "iso") MarchingCubes.Extract(field, shape, Long3.Zero, cellsOfChunk, 0f, piece);
                                else MarchingCubes.ExtractLabels<uint>(labels, shape, Long3.Zero, cellsOfChunk, mode == "per-label", piece);
                            }
                            pieces[c] = piece;
                        });
                        var coordinates = new MeshCoordinates(shape, VoxelSize.Isotropic);
                        var sink = new MeshArrays();
                        welded = mode == "per-label"
                            ? new LabelWelder(coordinates, normals: false, finish: null, threads).Weld(pieces.Select(p => p.Index), (index, section) => pieces[index.Chunk].Section(section), sink).Triangles
                            : new SurfaceWelder(grid, c => pieces[c], coordinates, normals: false, finish: null).WeldSurface(0, sink).Triangles;
                        foreach (var piece in pieces) piece.Dispose();
                    }
                    long written = 0;
                    using var source = VolumeStore.Open(labelsZarr);
                    void Command()
                    {
                        var request = new MeshRequest(source, Path.Combine(dir, "mesh.ply"), new SurfaceSpec(mode == "per-label" ? SurfaceKind.PerLabel : SurfaceKind.Foreground),
                            VoxelSize.Isotropic, ArrayOrder: false, Normals: false, 0, 1, Long3.Uniform(edge), threads, Overwrite: true);
                        written = MeshJob.RunAsync(request, null, null, ct).GetAwaiter().GetResult().Weld.Triangles;
                    }

                    // Rounds: skimage once, then each ChunkSeg row once; every row keeps its best round. This VM's speed
                    // drifts by up to twofold over minutes, so each side's best comes from the same minutes.
                    double skimage = double.MaxValue, kernel = double.MaxValue, chunked = double.MaxValue, command = double.MaxValue;
                    JsonElement reference = default;
                    for (int round = 0; round < r; round++)
                    {
                        reference = BenchCommand.RunPython(parse.GetValue(python)!, script, "time", mode == "iso" ? fieldNpy : labelsNpy, mode, "1");
                        skimage = Math.Min(skimage, reference.GetProperty("seconds").GetDouble());
                        kernel = Math.Min(kernel, BenchCommand.Best(1, Kernel));
                        chunked = Math.Min(chunked, BenchCommand.Best(1, Chunked));
                        if (mode != "iso") command = Math.Min(command, BenchCommand.Best(1, Command));
                    }
                    table.AddRow(title, "ChunkSeg kernel, whole volume in memory (1 thread)", $"{triangles:N0}", F(voxels / kernel / 1e6), F(skimage / kernel) + "x");
                    table.AddRow(title, Markup.Escape($"ChunkSeg, {edge}^3 chunks on {threads} threads + weld, one mesh in memory"), $"{welded:N0}", F(voxels / chunked / 1e6), F(skimage / chunked) + "x");
                    if (mode != "iso")
                        table.AddRow(title, Markup.Escape($"ChunkSeg mesh, Zarr to PLY, {edge}^3 chunks, {threads} workers"), $"{written:N0}", F(voxels / command / 1e6), F(skimage / command) + "x");
                    string how = mode == "per-label" ? " (each label's padded bounding box)" : "";
                    table.AddRow(title, Markup.Escape($"skimage {reference.GetProperty("skimage").GetString()} marching_cubes{how}"),
                        $"{reference.GetProperty("triangles").GetInt64():N0}", F(voxels / skimage / 1e6), "1x");
                }
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
            context.Stdout.Write(table);
            return Task.FromResult(CliApp.Ok);
        });
        return mesh;
    }

    /// <summary>The welded mesh kept in memory (as skimage's marching_cubes returns it), one array per batch.</summary>
    private sealed class MeshArrays : IMeshSink
    {
        private readonly List<float[]> _positions = new();
        private readonly List<(int[] Corners, long First)> _triangles = new();

        public void BeginObject(string name) { }
        public void AddVertices(ReadOnlySpan<float> positions, ReadOnlySpan<float> normals) => _positions.Add(positions.ToArray());
        public void AddTriangles(ReadOnlySpan<int> corners, long first) => _triangles.Add((corners.ToArray(), first));
        public void Complete() { }
    }

    private static string F(double v) => v.ToString("0.0", CultureInfo.InvariantCulture);
}
