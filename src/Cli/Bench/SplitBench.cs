using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench split` (issue 25): touching objects split by Voronoi-Otsu labelling (clEsperanto's
/// voronoi_otsu_labeling) on one synthetic volume of blurred touching spheres plus noise, the same sigmas for all.
/// Rows: ChunkSeg's whole-image <see cref="VoronoiOtsu.Label"/> (one thread, in memory); the chunked
/// `label --voronoi-otsu` pipeline (Zarr to Zarr, all workers: its reads, scratch volumes and writes are timed too);
/// the numpy transcription of clEsperanto ChunkSeg is tested against (tools/reference/voronoi_otsu.py, runs once);
/// the scikit-image route users take without clEsperanto (gaussian, box maxima, Otsu, seeded watershed;
/// tools/reference/split_reference.py). Python rows time their compute alone (no load, no save).
/// The labels are compared as partitions: whole image = chunked = numpy is what ChunkSeg claims (whole ≠ chunked
/// fails the command); skimage's watershed is another algorithm, so only its object count is shown.
/// </summary>
internal static class SplitBench
{
    public static Command Create(CommandContext context)
    {
        var shape = new Option<string>("--shape") { Description = "Volume shape z,y,x", DefaultValueFactory = _ => "256,256,256" };
        var radius = new Option<double>("--radius") { Description = "Sphere radius in voxels (centres 1.8 radii apart, so neighbours overlap)", DefaultValueFactory = _ => 8 };
        var sigmas = new Option<string>("--sigmas") { Description = "SPOT,OUTLINE sigmas in voxels, as `label --voronoi-otsu` takes them", DefaultValueFactory = _ => "2,1" };
        var chunk = new Option<string>("--chunk") { Description = "Chunk shape of the chunked run (z,y,x or one edge)", DefaultValueFactory = _ => "128" };
        var workers = Options.Workers();
        var repeats = BenchCommand.Repeats(2, "ChunkSeg and skimage runs (best kept; the first includes the JIT); the numpy reference runs once");
        var python = BenchCommand.Python("NumPy, SciPy and scikit-image");
        var command = new Command("split", "Voronoi-Otsu split voxels/s of ChunkSeg (whole and chunked) vs skimage's watershed and the numpy reference")
        {
            shape, radius, sigmas, chunk, workers, repeats, python,
        };
        command.SetAction(async (parse, ct) =>
        {
            var size = OptionValues.ParseLong3("--shape", parse.GetValue(shape))!.Value;
            var edge = OptionValues.ParseLong3("--chunk", parse.GetValue(chunk))!.Value;
            edge = Long3.Min(edge, size);
            int threads = OptionValues.CheckWorkers(parse.GetValue(workers));
            int r = Math.Max(1, parse.GetValue(repeats));
            double sphere = parse.GetValue(radius);
            if (size.Z < 8 || size.Y < 8 || size.X < 8) throw new UsageException("--shape: every axis needs at least 8 voxels");
            if (!(sphere >= 2) || double.IsInfinity(sphere)) throw new UsageException("--radius must be at least 2 voxels");
            var parts = parse.GetValue(sigmas)!.Split(',');
            if (parts.Length != 2 || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double spot) ||
                !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double outline) || !(spot > 0) || !(outline > 0) ||
                double.IsInfinity(spot + outline))
                throw new UsageException($"--sigmas {parse.GetValue(sigmas)}: give two positive sigmas in voxels, SPOT,OUTLINE (e.g. 2,1)");
            var split = new VoronoiOtsuSigmas((spot, spot, spot), (outline, outline, outline));
            string spotText = spot.ToString(CultureInfo.InvariantCulture), outlineText = outline.ToString(CultureInfo.InvariantCulture);
            long voxels = size.Volume;
            long[] dims = [size.Z, size.Y, size.X];

            context.Error.WriteLine($"bench split: making {size} touching spheres (radius {sphere}) with noise");
            var raw = TouchingSpheres(size, sphere, threads);
            var image = raw.Select(v => (float)v).ToArray();
            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(dir);
            try
            {
                // ChunkSeg, whole image in memory.
                context.Error.WriteLine("bench split: ChunkSeg whole image");
                var whole = new uint[voxels];
                VoronoiOtsuResult found = default;
                double wholeSeconds = BenchCommand.Best(r, () => found = VoronoiOtsu.Label(image, size, threeD: true, split, whole));
                int wholeObjects = (int)whole.Max();
                int blobs;   // what the split is for: the foreground's 26-connected components, each holding many objects
                using (var runs = ConnectedComponents.Label<byte>(whole.Select(l => l == 0 ? (byte)0 : (byte)1).ToArray(),
                           (int)size.Z, (int)size.Y, (int)size.X, Connectivity.All))
                    blobs = runs.Components;

                // ChunkSeg, chunked: `label --voronoi-otsu` from Zarr to Zarr.
                context.Error.WriteLine($"bench split: ChunkSeg label --voronoi-otsu, {edge} chunks, {threads} workers");
                string input = Path.Combine(dir, "raw.zarr"), output = Path.Combine(dir, "labels.zarr");
                int[] storage = [(int)edge.Z, (int)edge.Y, (int)edge.X];
                using (var volume = VolumeStore.Create(new VolumeAddress(VolumeFormat.Zarr, input, ""), new VolumeCreateOptions(AxisOrder.Parse("zyx"),
                           dims, DataType.UInt16, storage, VoxelSize.Isotropic, CodecSpec.Default)))
                    volume.Write<ushort>(NdBox.Whole(dims), raw);
                double chunkedSeconds = double.MaxValue;
                ulong chunkedObjects = 0;
                using (var source = VolumeStore.Open(input))
                    for (int i = 0; i < r; i++)
                    {
                        var request = new LabelRequest(source, new VolumeAddress(VolumeFormat.Zarr, output, ""), new Segmentation(SegmentationMode.Labels),
                            Connectivity.All, new ObjectFilter(), null, null, edge, edge, null, threads, Overwrite: true) { Split = new SplitSpec(split) };
                        var clock = Stopwatch.StartNew();
                        var outcome = await LabelJob.RunAsync(request, (_, job, token) => EmbeddedJob.RunAsync(job, NullLoggerFactory.Instance, null, token), null, ct)
                            .ConfigureAwait(false);
                        chunkedSeconds = Math.Min(chunkedSeconds, clock.Elapsed.TotalSeconds);
                        if (!outcome.IsComplete) throw new InvalidOperationException("the chunked split did not complete");
                        chunkedObjects = outcome.Objects;
                    }
                var chunked = new uint[voxels];
                using (var labels = VolumeStore.Open(output))
                {
                    if (labels.Info.DataType != DataType.UInt32) throw new InvalidOperationException($"the chunked split wrote {labels.Info.DataType.Name()}, expected uint32");
                    labels.Read<uint>(NdBox.Whole(dims), chunked);
                }

                // The numpy reference and scikit-image, on the same values.
                string npy = Path.Combine(dir, "raw.npy");
                Npy.Write(npy, image, dims);
                context.Error.WriteLine("bench split: numpy reference (tools/reference/voronoi_otsu.py)");
                string numpyScript = BenchCommand.ExtractScript("voronoi_otsu.py", dir), numpyOut = Path.Combine(dir, "numpy.npy");
                var numpy = BenchCommand.RunPython(parse.GetValue(python)!, numpyScript, npy, numpyOut, spotText, outlineText, "--otsu-trim");
                var reference = Npy.ReadUInt32(numpyOut, voxels);
                context.Error.WriteLine("bench split: scikit-image (tools/reference/split_reference.py)");
                string skimageScript = BenchCommand.ExtractScript("split_reference.py", dir);
                var skimage = BenchCommand.RunPython(parse.GetValue(python)!, skimageScript, npy, Path.Combine(dir, "skimage.npy"), spotText, outlineText,
                    r.ToString(CultureInfo.InvariantCulture));

                double numpySeconds = numpy.GetProperty("seconds").GetDouble(), skimageSeconds = skimage.GetProperty("seconds").GetDouble();
                var table = new Table().Border(TableBorder.Rounded)
                    .Title(Markup.Escape($"{size} touching spheres, Voronoi-Otsu spot {spotText}, outline {outlineText}; " +
                        $"Otsu {found.Threshold:G6}, {found.Seeds:N0} seed voxels, {blobs:N0} connected foreground component(s); best of {r}"))
                    .AddColumns("implementation", "objects", "seconds", "Mvoxels/s", "vs skimage");
                void Row(string name, long objects, double seconds) =>
                    table.AddRow(Markup.Escape(name), $"{objects:N0}", F(seconds), F(voxels / seconds / 1e6), F(skimageSeconds / seconds) + "x");
                Row("ChunkSeg VoronoiOtsu.Label, whole image in memory (1 thread)", wholeObjects, wholeSeconds);
                Row($"ChunkSeg label --voronoi-otsu, Zarr to Zarr, {edge} chunks, {threads} workers", (long)chunkedObjects, chunkedSeconds);
                Row("numpy reference (voronoi_otsu.py, clEsperanto's steps), once", numpy.GetProperty("labels").GetInt64(), numpySeconds);
                Row($"skimage {skimage.GetProperty("skimage").GetString()} gaussian + box maxima + threshold_otsu + watershed",
                    skimage.GetProperty("labels").GetInt64(), skimageSeconds);
                context.Stdout.Write(table);

                long chunkedDiffer = PartitionDifference(whole, chunked), numpyDiffer = PartitionDifference(whole, reference);
                context.Out.WriteLine(chunkedDiffer == 0
                    ? $"whole image vs chunked: identical partitions ({wholeObjects:N0} objects)"
                    : $"whole image vs chunked: DIFFERENT partitions, {chunkedDiffer:N0} of {voxels:N0} voxels disagree ({wholeObjects:N0} vs {chunkedObjects:N0} objects)");
                context.Out.WriteLine(numpyDiffer == 0
                    ? $"whole image vs numpy reference: identical partitions ({wholeObjects:N0} objects)"
                    : $"whole image vs numpy reference: DIFFERENT partitions, {numpyDiffer:N0} of {voxels:N0} voxels disagree ({wholeObjects:N0} vs {reference.Max():N0} objects)");
                context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"bench split: {size} on {Machine()}: ChunkSeg {voxels / wholeSeconds / 1e6:0.00} Mvoxels/s whole image (1 thread), " +
                    $"{voxels / chunkedSeconds / 1e6:0.00} chunked ({threads} workers); skimage {voxels / skimageSeconds / 1e6:0.00}, numpy reference {voxels / numpySeconds / 1e6:0.00}"));
                return chunkedDiffer == 0 ? CliApp.Ok : CliApp.DataError;
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        });
        return command;
    }

    /// <summary>
    /// Touching spheres on a jittered grid (centres 1.8 radii apart, ±0.2 radii; radii ±15 %): each a dome, its peak
    /// brightness (600 – 1000) at the centre falling to half at the rim, overlaps keeping the brighter, so neighbours
    /// touch with a dip between them as nuclei do; blurred by a Gaussian of 1.5 voxels, on a background of 100 plus
    /// uniform noise 0 – 59, as uint16. Deterministic (seed 25).
    /// </summary>
    internal static ushort[] TouchingSpheres(Long3 shape, double radius, int threads)
    {
        int sz = (int)shape.Z, sy = (int)shape.Y, sx = (int)shape.X;
        var image = new float[shape.Volume];
        var rng = new Random(25);
        double step = 1.8 * radius;
        for (double gz = step / 2; gz < sz; gz += step)
        for (double gy = step / 2; gy < sy; gy += step)
        for (double gx = step / 2; gx < sx; gx += step)
        {
            double cz = gz + (rng.NextDouble() - 0.5) * 0.4 * radius, cy = gy + (rng.NextDouble() - 0.5) * 0.4 * radius, cx = gx + (rng.NextDouble() - 0.5) * 0.4 * radius;
            double rr = radius * (0.85 + 0.3 * rng.NextDouble());
            float brightness = 600 + 400 * rng.NextSingle();
            for (int z = Math.Max(0, (int)Math.Ceiling(cz - rr)); z <= Math.Min(sz - 1, (int)Math.Floor(cz + rr)); z++)
            for (int y = Math.Max(0, (int)Math.Ceiling(cy - rr)); y <= Math.Min(sy - 1, (int)Math.Floor(cy + rr)); y++)
            for (int x = Math.Max(0, (int)Math.Ceiling(cx - rr)); x <= Math.Min(sx - 1, (int)Math.Floor(cx + rr)); x++)
            {
                double d2 = (z - cz) * (z - cz) + (y - cy) * (y - cy) + (x - cx) * (x - cx);
                int i = (z * sy + y) * sx + x;
                float v = (float)(brightness * (1 - 0.5 * d2 / (rr * rr)));
                if (d2 <= rr * rr && image[i] < v) image[i] = v;
            }
        }
        var other = new float[image.Length];
        var kernel = FirKernel.Gaussian(0, 1.5, 3.0);
        SeparableConvolution.Apply(image, other, sz, sy, sx, 2, kernel, threads);
        SeparableConvolution.Apply(other, image, sz, sy, sx, 1, kernel, threads);
        SeparableConvolution.Apply(image, other, sz, sy, sx, 0, kernel, threads);
        var raw = new ushort[image.Length];
        for (int i = 0; i < raw.Length; i++) raw[i] = (ushort)Math.Round(100 + other[i] + rng.Next(0, 60));
        return raw;
    }

    /// <summary>
    /// Voxels where <paramref name="a"/> and <paramref name="b"/> break a one-to-one match of their labels (background
    /// with background), each pair of labels matched at its first voxel: 0 when both are the same partition.
    /// </summary>
    internal static long PartitionDifference(uint[] a, uint[] b)
    {
        var ab = new uint[a.Max() + 1L];
        var ba = new uint[b.Max() + 1L];
        Array.Fill(ab, uint.MaxValue);
        Array.Fill(ba, uint.MaxValue);
        ab[0] = ba[0] = 0;
        long differ = 0;
        for (long i = 0; i < a.LongLength; i++)
        {
            uint x = a[i], y = b[i];
            if (ab[x] == uint.MaxValue && ba[y] == uint.MaxValue) { ab[x] = y; ba[y] = x; }
            else if (ab[x] != y || ba[y] != x) differ++;
        }
        return differ;
    }

    /// <summary>Cores, CPU model (Linux) and OS: what the summary line names the machine by.</summary>
    private static string Machine()
    {
        string? model = null;
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
        }
        catch (IOException) { }
        return $"{Environment.ProcessorCount} cores" + (model is null ? "" : $", {model}") + $", {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
    }

    private static string F(double v) => v.ToString(v >= 100 ? "0" : v >= 1 ? "0.00" : "0.000", CultureInfo.InvariantCulture);
}
