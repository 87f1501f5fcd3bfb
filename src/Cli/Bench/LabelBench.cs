using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench label`: connected components of smooth random blobs, ChunkSeg (whole volume in memory, and
/// the chunked `label` pipeline from Zarr to Zarr) against scipy.ndimage.label on the same volume.
/// `chunkseg bench merge`: the coordinator's merge alone on synthetic boundary equivalences at cluster scale.
/// </summary>
internal static class LabelBench
{
    public static Command CreateLabel(CommandContext context)
    {
        var size = new Option<int>("--size") { Description = "Edge of the cubic volume", DefaultValueFactory = _ => 512 };
        var sigma = new Option<double>("--sigma") { Description = "Smoothing of the noise, in voxels (blob size)", DefaultValueFactory = _ => 4 };
        var chunk = new Option<int>("--chunk") { Description = "Chunk edge of the chunked run", DefaultValueFactory = _ => 128 };
        var workers = Options.Workers();
        var repeats = BenchCommand.Repeats(2);
        var python = BenchCommand.Python("SciPy");
        var label = new Command("label", "Connected components voxels/s of ChunkSeg (whole and chunked) vs scipy.ndimage.label") { size, sigma, chunk, workers, repeats, python };
        label.SetAction(async (parse, ct) =>
        {
            int n = parse.GetValue(size), edge = parse.GetValue(chunk), r = Math.Max(1, parse.GetValue(repeats));
            int threads = OptionValues.CheckWorkers(parse.GetValue(workers));
            if (n < 8 || edge < 1) throw new Contracts.Errors.UsageException("--size must be at least 8 and --chunk at least 1");
            context.Error.WriteLine($"bench label: making {n}^3 smooth random blobs (sigma {parse.GetValue(sigma)})");
            var mask = Blobs(n, parse.GetValue(sigma), threads);
            double density = mask.Count(b => b != 0) / (double)mask.Length;
            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(dir);
            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"{n}^3 blobs ({density:P0} foreground), best of {r}"))
                .AddColumns("connectivity", "implementation", "Mvoxels/s", "vs scipy");
            try
            {
                Npy.Write(Path.Combine(dir, "mask.npy"), mask, n, n, n);
                string script = BenchCommand.ExtractScript("label_reference.py", dir);
                string input = Path.Combine(dir, "mask.zarr");
                using (var volume = VolumeStore.Create(new VolumeAddress(VolumeFormat.Zarr, input, ""), new VolumeCreateOptions(AxisOrder.Parse("zyx"),
                           [n, n, n], DataType.UInt8, [64, 64, 64], VoxelSize.Isotropic, CodecSpec.Default)))
                    volume.Write(NdBox.Whole([n, n, n]), mask);
                long voxels = (long)n * n * n;
                foreach (var connectivity in new[] { Connectivity.Faces, Connectivity.All })
                {
                    var scipy = BenchCommand.RunPython(parse.GetValue(python)!, script, "time", Path.Combine(dir, "mask.npy"),
                        connectivity == Connectivity.Faces ? "1" : "3", r.ToString(CultureInfo.InvariantCulture));
                    double scipySeconds = scipy.GetProperty("seconds").GetDouble();
                    var labels = new uint[voxels];
                    double whole = BenchCommand.Best(r, () =>
                    {
                        using var runs = ConnectedComponents.Label<byte>(mask, n, n, n, connectivity);
                        runs.WriteLabels(labels);
                    });
                    double inMemory = BenchCommand.Best(r, () => ChunkedInMemory(mask, n, edge, connectivity, threads, labels));
                    labels = [];
                    double chunked = double.MaxValue;
                    using (var source = VolumeStore.Open(input))
                        for (int i = 0; i < r; i++)
                        {
                            string output = Path.Combine(dir, $"labels{i}.zarr");
                            var request = new LabelRequest(source, new VolumeAddress(VolumeFormat.Zarr, output, ""), new Segmentation(SegmentationMode.Labels),
                                connectivity, new ObjectFilter(), null, null, Long3.Uniform(edge), new Long3(64, 64, 64), null, threads, Overwrite: true);
                            var clock = Stopwatch.StartNew();
                            var outcome = await LabelJob.RunAsync(request, (_, job, token) => EmbeddedJob.RunAsync(job, NullLoggerFactory.Instance, null, token), null, ct)
                                .ConfigureAwait(false);
                            chunked = Math.Min(chunked, clock.Elapsed.TotalSeconds);
                            if (!outcome.IsComplete) throw new InvalidOperationException("the chunked labelling did not complete");
                            Directory.Delete(output, recursive: true);
                        }
                    string c = connectivity == Connectivity.Faces ? "6" : "26";
                    table.AddRow(c, "ChunkSeg, whole volume in memory (1 thread)", F(voxels / whole / 1e6), F(scipySeconds / whole) + "x");
                    table.AddRow(c, Markup.Escape($"ChunkSeg chunked in memory, {edge}^3 chunks, {threads} threads"), F(voxels / inMemory / 1e6), F(scipySeconds / inMemory) + "x");
                    table.AddRow(c, Markup.Escape($"ChunkSeg label, Zarr to Zarr, {edge}^3 chunks, {threads} workers"), F(voxels / chunked / 1e6), F(scipySeconds / chunked) + "x");
                    table.AddRow(c, Markup.Escape($"scipy {scipy.GetProperty("scipy").GetString()} ndimage.label (in memory)"), F(voxels / scipySeconds / 1e6), "1x");
                }
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
            context.Stdout.Write(table);
            return CliApp.Ok;
        });
        return label;
    }

    public static Command CreateMerge(CommandContext context)
    {
        var chunks = new Option<int>("--chunks") { Description = "Chunks in the simulated grid", DefaultValueFactory = _ => 300_000 };
        var objects = new Option<int>("--objects") { Description = "Objects crossing chunk borders", DefaultValueFactory = _ => 10_000_000 };
        var merge = new Command("merge", "The coordinator's merge on synthetic boundary equivalences: time and memory at cluster scale") { chunks, objects };
        merge.SetAction(parse =>
        {
            int c = parse.GetValue(chunks), o = parse.GetValue(objects);
            if (c < 8 || o < 1) throw new Contracts.Errors.UsageException("--chunks must be at least 8 and --objects at least 1");
            var result = SimulateMerge(c, o);
            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"{result.Chunks:N0} chunks ({result.Blocks}), {o:N0} objects crossing chunk borders"))
                .AddColumns("quantity", "value");
            table.AddRow("pieces on shared faces (union-find nodes)", $"{result.Pieces:N0}");
            table.AddRow("equivalences (touching piece pairs)", $"{result.Equivalences:N0}");
            table.AddRow("objects found", $"{result.Sets:N0}");
            table.AddRow("register + unite + flatten + number", $"{result.Elapsed.TotalSeconds:0.00} s");
            table.AddRow("merge state (union-find, label lists, per-object numbers)", Units.Bytes(result.StateBytes));
            table.AddRow("process peak working set", Units.Bytes(result.PeakWorkingSet));
            context.Stdout.Write(table);
            if (result.Sets != o) throw new InvalidOperationException($"the merge found {result.Sets} objects, expected {o}");
            return CliApp.Ok;
        });
        return merge;
    }

    /// <summary>Thresholded Gaussian-smoothed noise: blobs of about the sigma's size, about half the volume.</summary>
    internal static byte[] Blobs(int n, double sigma, int threads)
    {
        var field = SmoothNoise(n, sigma, threads);
        var mask = new byte[field.LongLength];
        for (long i = 0; i < field.LongLength; i++) mask[i] = field[i] > 0 ? (byte)1 : (byte)0;
        return mask;
    }

    /// <summary>Uniform noise in [−0.5, 0.5) (seed 1) smoothed by a Gaussian of <paramref name="sigma"/> voxels: a smooth random field around 0.</summary>
    internal static float[] SmoothNoise(int n, double sigma, int threads)
    {
        long count = (long)n * n * n;
        var noise = new float[count];
        var rng = new Random(1);
        for (long i = 0; i < count; i++) noise[i] = (float)rng.NextDouble() - 0.5f;
        var other = new float[count];
        var kernel = FirKernel.Gaussian(0, sigma, 3.0);
        SeparableConvolution.Apply(noise, other, n, n, n, 2, kernel, threads);
        SeparableConvolution.Apply(other, noise, n, n, n, 1, kernel, threads);
        SeparableConvolution.Apply(noise, other, n, n, n, 0, kernel, threads);
        return other;
    }

    /// <summary>
    /// The chunked algorithm without storage: each chunk labelled and summarised, equivalences from the face planes,
    /// the boundary merge and numbering, then every chunk's local labels mapped to final ids in <paramref name="labels"/>.
    /// </summary>
    internal static void ChunkedInMemory(byte[] mask, int n, int edge, Connectivity connectivity, int threads, uint[] labels)
    {
        var shape = Long3.Uniform(n);
        var grid = new ChunkGrid(shape, 1, Long3.Uniform(edge), Halo.None);
        var summaries = new ChunkLabelSummary[grid.Count];
        var local = new uint[grid.Count][];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads };
        Parallel.For(0, grid.Count, parallel, c =>
        {
            var core = grid[c].Core;
            int sz = (int)core.Size.Z, sy = (int)core.Size.Y, sx = (int)core.Size.X;
            var block = new byte[sz * sy * sx];
            for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                mask.AsSpan((int)(((core.Start.Z + z) * n + core.Start.Y + y) * n + core.Start.X), sx).CopyTo(block.AsSpan((z * sy + y) * sx));
            using var runs = ConnectedComponents.Label<byte>(block, sz, sy, sx, connectivity);
            var chunkLabels = local[c] = new uint[block.Length];
            runs.WriteLabels(chunkLabels);
            summaries[c] = ChunkPieces.Summarize<byte>(runs, block, default, chunkLabels, c, core, shape, (true, true, true));
        });
        var merge = new BoundaryMerge(grid.Count);
        LabelJob.FindEquivalences(grid, c => summaries[c], connectivity, merge, threads, CancellationToken.None);
        merge.Flatten();
        var maps = new ulong[grid.Count][];
        new ObjectNumbering(grid, merge, c => summaries[c], new ObjectFilter(), keepStats: false).Run((c, ids) => maps[c] = ids);
        Parallel.For(0, grid.Count, parallel, c =>
        {
            var core = grid[c].Core;
            int sz = (int)core.Size.Z, sy = (int)core.Size.Y, sx = (int)core.Size.X;
            var map = maps[c];
            var source = local[c];
            for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
            {
                var row = labels.AsSpan((int)(((core.Start.Z + z) * n + core.Start.Y + y) * n + core.Start.X), sx);
                var from = source.AsSpan((z * sy + y) * sx, sx);
                for (int x = 0; x < sx; x++) row[x] = (uint)map[from[x]];
            }
        });
    }

    internal sealed record MergeResult(long Chunks, string Blocks, long Pieces, long Equivalences, long Sets, TimeSpan Elapsed, long StateBytes, long PeakWorkingSet);

    /// <summary>
    /// Objects at random places of a grid of about <paramref name="chunkCount"/> chunks, each cut into two pieces by
    /// a face (one in four into three, across an edge): the equivalences a real job's pass 2 would produce, fed to
    /// the same <see cref="BoundaryMerge"/>, then numbered by their first voxel as <see cref="ObjectNumbering"/> does.
    /// The equivalences are generated twice from one seed (counting, then uniting), never stored.
    /// </summary>
    internal static MergeResult SimulateMerge(int chunkCount, int objectCount)
    {
        int side = (int)Math.Round(Math.Cbrt(chunkCount));
        var blocks = new Long3(side, side, (chunkCount + side * side - 1) / (side * side));
        long chunks = blocks.Volume;
        var grid = new ChunkGrid(new Long3(blocks.Z * 64, blocks.Y * 64, blocks.X * 64), 1, Long3.Uniform(64), Halo.None);
        var clock = Stopwatch.StartNew();
        var pieces = new int[chunks];
        long equivalences = 0;
        ForEachObject(grid, objectCount, chain => { foreach (long c in chain) pieces[c]++; });
        var merge = new BoundaryMerge(chunks);
        for (long c = 0; c < chunks; c++)
        {
            var labels = new uint[pieces[c]];
            for (int i = 0; i < labels.Length; i++) labels[i] = (uint)(i + 1);
            merge.Register(c, labels);
        }
        Array.Clear(pieces);
        ForEachObject(grid, objectCount, chain =>
        {
            PieceRef? previous = null;
            foreach (long c in chain)
            {
                var piece = new PieceRef(c, (uint)++pieces[c]);
                if (previous is { } p) { merge.Union(p, piece); equivalences++; }
                previous = piece;
            }
        });
        int sets = merge.Flatten();
        // Numbering: each object's first voxel (here: its first piece's chunk start), then ids in that order.
        var first = new long[sets];
        Array.Fill(first, long.MaxValue);
        Array.Clear(pieces);
        ForEachObject(grid, objectCount, chain =>
        {
            foreach (long c in chain)
            {
                int set = merge.SetOf(merge.NodeOf(new PieceRef(c, (uint)++pieces[c])));
                var start = grid[c].Core.Start;
                first[set] = Math.Min(first[set], (start.Z * grid.VolumeShape.Y + start.Y) * grid.VolumeShape.X + start.X + pieces[c]);
            }
        });
        var order = new int[sets];
        for (int i = 0; i < sets; i++) order[i] = i;
        Array.Sort(first, order);
        clock.Stop();
        long state = merge.MemoryBytes + sets * (8L + 4);
        return new MergeResult(chunks, $"{blocks.Z}x{blocks.Y}x{blocks.X}", merge.NodeCount, equivalences, sets, clock.Elapsed, state,
            Process.GetCurrentProcess().PeakWorkingSet64);
    }

    /// <summary>The chunks each synthetic object lies in, in order along its extent; deterministic for a seed.</summary>
    private static void ForEachObject(ChunkGrid grid, int objects, ChainVisitor visit)
    {
        var rng = new Random(17);
        var b = grid.Blocks;
        var chain = new long[3];
        for (int i = 0; i < objects; i++)
        {
            var at = new Long3(rng.NextInt64(b.Z - 1), rng.NextInt64(b.Y - 1), rng.NextInt64(b.X - 1));
            int axis = rng.Next(3);
            var step = axis switch { 0 => new Long3(1, 0, 0), 1 => new Long3(0, 1, 0), _ => new Long3(0, 0, 1) };
            chain[0] = grid.IndexOfBlock(0, at);
            chain[1] = grid.IndexOfBlock(0, at + step);
            bool three = rng.Next(4) == 0;
            chain[2] = grid.IndexOfBlock(0, at + step + (axis == 2 ? new Long3(0, 1, 0) : new Long3(0, 0, 1)));
            visit(chain.AsSpan(0, three ? 3 : 2));
        }
    }

    private delegate void ChainVisitor(ReadOnlySpan<long> chain);

    private static string F(double v) => v.ToString(v >= 100 ? "0" : v >= 1 ? "0.00" : "0.000", CultureInfo.InvariantCulture);
}
