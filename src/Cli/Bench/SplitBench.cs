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
/// `chunkseg bench split` (issue 25): touching objects split on one synthetic volume of blurred touching spheres plus
/// noise, two ways, each beside scikit-image's usual route and ChunkSeg's numpy reference.
/// Voronoi-Otsu labelling (clEsperanto's voronoi_otsu_labeling) of the image, the same sigmas for all: ChunkSeg's
/// whole-image <see cref="VoronoiOtsu.Label"/> (one thread, in memory); the chunked `label --voronoi-otsu` pipeline
/// (Zarr to Zarr, all workers: its reads, scratch volumes and writes are timed too); the numpy transcription of
/// clEsperanto ChunkSeg is tested against (tools/reference/voronoi_otsu.py, runs once); the scikit-image route users
/// take without clEsperanto (gaussian, box maxima, Otsu, seeded watershed; tools/reference/split_reference.py).
/// The distance split (`--split distance`, the binary watershed) of the spheres' union (the mask a perfect
/// segmentation gives), the same seeds' window for all: ChunkSeg's whole-image <see cref="DistanceWatershed.Split"/>
/// (one thread, in memory); the chunked `label --split distance --threshold 1` pipeline on the mask (Zarr to Zarr, all
/// workers); its numpy transcription (tools/reference/distance_split.py, brute force, so only up to
/// <see cref="NumpyDistanceLimit"/> voxels); scikit-image's gallery route (distance_transform_edt, peak_local_max,
/// watershed of -distance; split_reference.py --distance).
/// Python rows time their compute alone (no load, no save). The labels are compared as partitions: whole image =
/// chunked = numpy is what ChunkSeg claims (whole ≠ chunked fails the command); skimage's watersheds are other
/// algorithms, so their object count is shown and the share of the foreground on which they agree with ChunkSeg.
/// </summary>
internal static class SplitBench
{
    /// <summary>
    /// The most voxels the numpy transcription of the distance split runs on: its distance passes take every position
    /// of every line (O(n·L)) and its seed walk is a python loop; 64³ takes about 15 s on the project's 2 cores under
    /// load, 256³ would take tens of minutes.
    /// </summary>
    internal const long NumpyDistanceLimit = 64L * 64 * 64;

    public static Command Create(CommandContext context)
    {
        var shape = new Option<string>("--shape") { Description = "Volume shape z,y,x", DefaultValueFactory = _ => "256,256,256" };
        var radius = new Option<double>("--radius") { Description = "Sphere radius in voxels (centres 1.8 radii apart, so neighbours overlap)", DefaultValueFactory = _ => 8 };
        var sigmas = new Option<string>("--sigmas") { Description = "SPOT,OUTLINE sigmas in voxels, as `label --voronoi-otsu` takes them", DefaultValueFactory = _ => "2,1" };
        var minDistance = new Option<string?>("--min-distance")
        {
            Description = $"The distance split's seeds' window in voxels, d or z,y,x, as `label --split distance` takes it (default {OptionValues.DefaultMinDistance})",
        };
        var chunk = new Option<string>("--chunk") { Description = "Chunk shape of the chunked runs (z,y,x or one edge)", DefaultValueFactory = _ => "128" };
        var workers = Options.Workers();
        var repeats = BenchCommand.Repeats(2, "ChunkSeg and skimage runs (best kept; the first includes the JIT); the numpy references run once");
        var python = BenchCommand.Python("NumPy, SciPy and scikit-image");
        var command = new Command("split",
            "Voronoi-Otsu and distance split voxels/s of ChunkSeg (whole and chunked) vs skimage's watersheds and the numpy references")
        {
            shape, radius, sigmas, minDistance, chunk, workers, repeats, python,
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
            var window = OptionValues.MinDistance(parse.GetValue(minDistance), threeD: true);
            string spotText = spot.ToString(CultureInfo.InvariantCulture), outlineText = outline.ToString(CultureInfo.InvariantCulture);
            string windowText = string.Create(CultureInfo.InvariantCulture, $"{window.Z},{window.Y},{window.X}");
            string interpreter = parse.GetValue(python)!;
            long voxels = size.Volume;
            long[] dims = [size.Z, size.Y, size.X];

            context.Error.WriteLine($"bench split: making {size} touching spheres (radius {sphere}) with noise");
            var spheres = TouchingSpheres(size, sphere, threads);
            var raw = spheres.Raw;
            var image = raw.Select(v => (float)v).ToArray();
            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(dir);
            try
            {
                // Voronoi-Otsu. ChunkSeg, whole image in memory.
                context.Error.WriteLine("bench split: ChunkSeg whole image (Voronoi-Otsu)");
                var whole = new uint[voxels];
                VoronoiOtsuResult found = default;
                double wholeSeconds = BenchCommand.Best(r, () => found = VoronoiOtsu.Label(image, size, threeD: true, split, whole));
                int wholeObjects = (int)whole.Max();
                int blobs = Components(whole.Select(l => l == 0 ? (byte)0 : (byte)1).ToArray(), size);

                // ChunkSeg, chunked: `label --voronoi-otsu` from Zarr to Zarr.
                context.Error.WriteLine($"bench split: ChunkSeg label --voronoi-otsu, {edge} chunks, {threads} workers");
                string input = Path.Combine(dir, "raw.zarr");
                WriteZarr(input, dims, DataType.UInt16, edge, raw);
                var chunked = await Chunked(input, Path.Combine(dir, "labels.zarr"), new Segmentation(SegmentationMode.Labels), new SplitSpec(split),
                    edge, threads, r, dims, ct).ConfigureAwait(false);

                // The numpy reference and scikit-image, on the same values.
                string npy = Path.Combine(dir, "raw.npy");
                Npy.Write(npy, image, dims);
                context.Error.WriteLine("bench split: numpy reference (tools/reference/voronoi_otsu.py)");
                string numpyScript = BenchCommand.ExtractScript("voronoi_otsu.py", dir), numpyOut = Path.Combine(dir, "numpy.npy");
                var numpy = BenchCommand.RunPython(interpreter, numpyScript, npy, numpyOut, spotText, outlineText, "--otsu-trim");
                var reference = Npy.ReadUInt32(numpyOut, voxels);
                context.Error.WriteLine("bench split: scikit-image (tools/reference/split_reference.py)");
                string skimageScript = BenchCommand.ExtractScript("split_reference.py", dir), skimageOut = Path.Combine(dir, "skimage.npy");
                var skimage = BenchCommand.RunPython(interpreter, skimageScript, npy, skimageOut, spotText, outlineText, r.ToString(CultureInfo.InvariantCulture));

                // The distance split of the spheres' union. ChunkSeg, whole image in memory.
                var mask = spheres.Union;
                long foreground = mask.LongCount(v => v != 0);
                int maskBlobs = Components(mask, size);
                context.Error.WriteLine("bench split: ChunkSeg whole image (distance split)");
                var keys = new ulong[voxels];
                double distanceWholeSeconds = BenchCommand.Best(r, () =>
                    DistanceWatershed.Split(mask, (int)size.Z, (int)size.Y, (int)size.X, (1, 1, 1), window, threeD: true, keys));
                var distanceWhole = Renumber(keys);
                long distanceObjects = distanceWhole.Max();

                // ChunkSeg, chunked: `label --split distance --threshold 1` on the mask, Zarr to Zarr.
                context.Error.WriteLine($"bench split: ChunkSeg label --split distance, {edge} chunks, {threads} workers");
                string maskInput = Path.Combine(dir, "mask.zarr");
                WriteZarr(maskInput, dims, DataType.UInt8, edge, mask);
                var threshold = new Segmentation(SegmentationMode.Threshold, Channel: 0, Threshold: 1);
                var distanceChunked = await Chunked(maskInput, Path.Combine(dir, "distance.zarr"), threshold,
                    SplitSpec.Distance(threshold, new DistanceSplit(window, (1, 1, 1))), edge, threads, r, dims, ct).ConfigureAwait(false);

                // The numpy reference (small volumes only) and scikit-image, on the same mask.
                string maskNpy = Path.Combine(dir, "mask.npy");
                Npy.Write(maskNpy, mask, dims);
                System.Text.Json.JsonElement? distanceNumpy = null;
                uint[]? distanceReference = null;
                if (voxels <= NumpyDistanceLimit)
                {
                    context.Error.WriteLine("bench split: numpy reference (tools/reference/distance_split.py)");
                    string script = BenchCommand.ExtractScript("distance_split.py", dir), output = Path.Combine(dir, "distance-numpy.npy");
                    distanceNumpy = BenchCommand.RunPython(interpreter, script, maskNpy, output, "--spacing", "1,1,1", "--min-distance", windowText);
                    distanceReference = Renumber(Npy.ReadUInt64(output, voxels));
                }
                context.Error.WriteLine("bench split: scikit-image (tools/reference/split_reference.py --distance)");
                string distanceSkimageOut = Path.Combine(dir, "distance-skimage.npy");
                var distanceSkimage = BenchCommand.RunPython(interpreter, skimageScript, "--distance", maskNpy, distanceSkimageOut, windowText,
                    r.ToString(CultureInfo.InvariantCulture));

                double numpySeconds = Seconds(numpy), skimageSeconds = Seconds(skimage), distanceSkimageSeconds = Seconds(distanceSkimage);
                context.Stdout.Write(Table(
                    $"{size}: {spheres.Count:N0} touching spheres, Voronoi-Otsu spot {spotText}, outline {outlineText}; " +
                    $"Otsu {found.Threshold:G6}, {found.Seeds:N0} seed voxels, {blobs:N0} connected foreground component(s); best of {r}", voxels, skimageSeconds,
                    [
                        new("ChunkSeg VoronoiOtsu.Label, whole image in memory (1 thread)", wholeObjects, wholeSeconds),
                        new($"ChunkSeg label --voronoi-otsu, Zarr to Zarr, {edge} chunks, {threads} workers", (long)chunked.Objects, chunked.Seconds),
                        new("numpy reference (voronoi_otsu.py, clEsperanto's steps), once", numpy.GetProperty("labels").GetInt64(), numpySeconds),
                        new($"skimage {Version(skimage)} gaussian + box maxima + threshold_otsu + watershed", skimage.GetProperty("labels").GetInt64(), skimageSeconds),
                    ]));
                context.Stdout.Write(Table(
                    $"{size}: the spheres' union ({foreground:N0} foreground voxels, {maskBlobs:N0} connected component(s)), distance split, " +
                    $"min-distance {windowText}; best of {r}", voxels, distanceSkimageSeconds,
                    [
                        new("ChunkSeg DistanceWatershed.Split, whole image in memory (1 thread)", distanceObjects, distanceWholeSeconds),
                        new($"ChunkSeg label --split distance --threshold 1, Zarr to Zarr, {edge} chunks, {threads} workers", (long)distanceChunked.Objects,
                            distanceChunked.Seconds),
                        distanceNumpy is { } ran
                            ? new("numpy reference (distance_split.py, the definition by brute force), once", ran.GetProperty("objects").GetInt64(), Seconds(ran))
                            : new($"numpy reference (distance_split.py): skipped, {voxels:N0} voxels > {NumpyDistanceLimit:N0} (64³): " +
                                "its brute-force distance passes and python seed walk would take tens of minutes", null, null),
                        new($"skimage {Version(distanceSkimage)} distance_transform_edt + peak_local_max + watershed", distanceSkimage.GetProperty("labels").GetInt64(),
                            distanceSkimageSeconds),
                    ]));

                bool same = Compare("Voronoi-Otsu", whole, chunked.Labels, reference, Npy.ReadUInt32(skimageOut, voxels), context.Out);
                same &= Compare("distance split", distanceWhole, distanceChunked.Labels, distanceReference, Npy.ReadUInt32(distanceSkimageOut, voxels), context.Out);
                string distanceNumpyRate = distanceNumpy is { } n ? (voxels / Seconds(n) / 1e6).ToString("0.00", CultureInfo.InvariantCulture) : "skipped";
                context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"bench split: {size} on {Machine()}: Voronoi-Otsu: ChunkSeg {voxels / wholeSeconds / 1e6:0.00} Mvoxels/s whole image (1 thread), " +
                    $"{voxels / chunked.Seconds / 1e6:0.00} chunked ({threads} workers); skimage {voxels / skimageSeconds / 1e6:0.00}, " +
                    $"numpy reference {voxels / numpySeconds / 1e6:0.00}. Distance split: ChunkSeg {voxels / distanceWholeSeconds / 1e6:0.00} whole image, " +
                    $"{voxels / distanceChunked.Seconds / 1e6:0.00} chunked; skimage {voxels / distanceSkimageSeconds / 1e6:0.00}, numpy reference {distanceNumpyRate}"));
                return same ? CliApp.Ok : CliApp.DataError;
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        });
        return command;
    }

    private static double Seconds(System.Text.Json.JsonElement reference) => reference.GetProperty("seconds").GetDouble();

    private static string? Version(System.Text.Json.JsonElement reference) => reference.GetProperty("skimage").GetString();

    /// <summary>A row of a split's table: no objects and seconds where the implementation did not run.</summary>
    private sealed record Row(string Name, long? Objects, double? Seconds);

    /// <summary>One split's rows, each timed against the last (skimage's) by <paramref name="skimageSeconds"/>.</summary>
    private static Table Table(string title, long voxels, double skimageSeconds, Row[] rows)
    {
        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(title))
            .AddColumns("implementation", "objects", "seconds", "Mvoxels/s", "vs skimage");
        foreach (var row in rows)
            table.AddRow(Markup.Escape(row.Name), row.Objects is { } o ? $"{o:N0}" : "–", row.Seconds is { } s ? F(s) : "–",
                row.Seconds is { } t ? F(voxels / t / 1e6) : "–", row.Seconds is { } u ? F(skimageSeconds / u) + "x" : "–");
        return table;
    }

    /// <summary>
    /// Writes whether <paramref name="whole"/> and the chunked labels (and the numpy reference's, when it ran) are the
    /// same partition, and on how much of the foreground skimage's labels agree with them (<see cref="Agreement"/>);
    /// false when whole and chunked differ.
    /// </summary>
    private static bool Compare(string split, uint[] whole, uint[] chunked, uint[]? reference, uint[] skimage, TextWriter output)
    {
        long voxels = whole.LongLength;
        long objects = whole.Max();
        long chunkedDiffer = PartitionDifference(whole, chunked);
        output.WriteLine(chunkedDiffer == 0
            ? $"{split}: whole image vs chunked: identical partitions ({objects:N0} objects)"
            : $"{split}: whole image vs chunked: DIFFERENT partitions, {chunkedDiffer:N0} of {voxels:N0} voxels disagree ({objects:N0} vs {chunked.Max():N0} objects)");
        if (reference is not null)
        {
            long numpyDiffer = PartitionDifference(whole, reference);
            output.WriteLine(numpyDiffer == 0
                ? $"{split}: whole image vs numpy reference: identical partitions ({objects:N0} objects)"
                : $"{split}: whole image vs numpy reference: DIFFERENT partitions, {numpyDiffer:N0} of {voxels:N0} voxels disagree ({objects:N0} vs {reference.Max():N0} objects)");
        }
        else
            output.WriteLine($"{split}: whole image vs numpy reference: not run ({voxels:N0} voxels > {NumpyDistanceLimit:N0}; try --shape 64,64,64)");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{split}: whole image vs skimage: {objects:N0} vs {skimage.Max():N0} objects, agreeing on {Agreement(whole, skimage):0.0 %} of the foreground (labels matched one to one)"));
        return chunkedDiffer == 0;
    }

    /// <summary>Writes one uint16 or uint8 volume as Zarr in chunks of <paramref name="edge"/>.</summary>
    private static void WriteZarr<T>(string path, long[] dims, DataType type, Long3 edge, T[] data) where T : unmanaged
    {
        using var volume = VolumeStore.Create(new VolumeAddress(VolumeFormat.Zarr, path, ""), new VolumeCreateOptions(AxisOrder.Parse("zyx"),
            dims, type, [(int)edge.Z, (int)edge.Y, (int)edge.X], VoxelSize.Isotropic, CodecSpec.Default));
        volume.Write<T>(NdBox.Whole(dims), data);
    }

    /// <summary>
    /// `label` with <paramref name="split"/> from the Zarr <paramref name="input"/> to <paramref name="output"/>,
    /// best of <paramref name="repeats"/>; the labels read back.
    /// </summary>
    private static async Task<(double Seconds, ulong Objects, uint[] Labels)> Chunked(string input, string output, Segmentation segmentation, SplitSpec split,
        Long3 edge, int threads, int repeats, long[] dims, CancellationToken ct)
    {
        double seconds = double.MaxValue;
        ulong objects = 0;
        using (var source = VolumeStore.Open(input))
            for (int i = 0; i < repeats; i++)
            {
                var request = new LabelRequest(source, new VolumeAddress(VolumeFormat.Zarr, output, ""), segmentation,
                    Connectivity.All, new ObjectFilter(), null, null, edge, edge, null, threads, Overwrite: true) { Split = split };
                var clock = Stopwatch.StartNew();
                var outcome = await LabelJob.RunAsync(request, (_, job, token) => EmbeddedJob.RunAsync(job, NullLoggerFactory.Instance, null, token), null, ct)
                    .ConfigureAwait(false);
                seconds = Math.Min(seconds, clock.Elapsed.TotalSeconds);
                if (!outcome.IsComplete) throw new InvalidOperationException($"the chunked split ({output}) did not complete");
                objects = outcome.Objects;
            }
        var labels = new uint[dims[0] * dims[1] * dims[2]];
        using (var volume = VolumeStore.Open(output))
        {
            if (volume.Info.DataType != DataType.UInt32) throw new InvalidOperationException($"the chunked split wrote {volume.Info.DataType.Name()}, expected uint32");
            volume.Read<uint>(NdBox.Whole(dims), labels);
        }
        return (seconds, objects, labels);
    }

    /// <summary>The 26-connected components of a mask: what a split is for, each holding many objects.</summary>
    private static int Components(byte[] mask, Long3 size)
    {
        using var runs = ConnectedComponents.Label<byte>(mask, (int)size.Z, (int)size.Y, (int)size.X, Connectivity.All);
        return runs.Components;
    }

    /// <summary>Keys (0 background) as labels 1, 2, … in the order of their first voxel, x fastest.</summary>
    internal static uint[] Renumber(ulong[] keys)
    {
        var ids = new Dictionary<ulong, uint>();
        var labels = new uint[keys.LongLength];
        for (long i = 0; i < keys.LongLength; i++)
        {
            if (keys[i] == 0) continue;
            ref uint id = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(ids, keys[i], out bool exists);
            if (!exists) id = (uint)ids.Count;
            labels[i] = id;
        }
        return labels;
    }

    /// <summary>
    /// The share of the foreground (of either labelling) on which <paramref name="b"/> agrees with <paramref name="a"/>:
    /// the voxels of label pairs matched one to one, the pairs with the most voxels in common first; 1 for identical
    /// partitions.
    /// </summary>
    internal static double Agreement(uint[] a, uint[] b)
    {
        var overlaps = new Dictionary<ulong, long>();
        long foreground = 0;
        for (long i = 0; i < a.LongLength; i++)
        {
            if (a[i] == 0 && b[i] == 0) continue;
            foreground++;
            if (a[i] != 0 && b[i] != 0) System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(overlaps, (ulong)a[i] << 32 | b[i], out _)++;
        }
        var matchedA = new HashSet<uint>();
        var matchedB = new HashSet<uint>();
        long agree = 0;
        foreach (var (pair, count) in overlaps.OrderByDescending(p => p.Value).ThenBy(p => p.Key))
        {
            uint x = (uint)(pair >> 32), y = (uint)pair;
            if (matchedA.Contains(x) || matchedB.Contains(y)) continue;
            matchedA.Add(x);
            matchedB.Add(y);
            agree += count;
        }
        return foreground == 0 ? 1 : agree / (double)foreground;
    }

    /// <summary>
    /// Touching spheres on a jittered grid (centres 1.8 radii apart, ±0.2 radii; radii ±15 %): each a dome, its peak
    /// brightness (600 – 1000) at the centre falling to half at the rim, overlaps keeping the brighter, so neighbours
    /// touch with a dip between them as nuclei do; blurred by a Gaussian of 1.5 voxels, on a background of 100 plus
    /// uniform noise 0 – 59, as uint16. Deterministic (seed 25). With it the spheres' union (1 inside a sphere, else 0:
    /// the mask a perfect segmentation gives) and how many spheres there are.
    /// </summary>
    internal static Spheres TouchingSpheres(Long3 shape, double radius, int threads)
    {
        int sz = (int)shape.Z, sy = (int)shape.Y, sx = (int)shape.X;
        var image = new float[shape.Volume];
        var union = new byte[shape.Volume];
        int count = 0;
        var rng = new Random(25);
        double step = 1.8 * radius;
        for (double gz = step / 2; gz < sz; gz += step)
        for (double gy = step / 2; gy < sy; gy += step)
        for (double gx = step / 2; gx < sx; gx += step)
        {
            double cz = gz + (rng.NextDouble() - 0.5) * 0.4 * radius, cy = gy + (rng.NextDouble() - 0.5) * 0.4 * radius, cx = gx + (rng.NextDouble() - 0.5) * 0.4 * radius;
            double rr = radius * (0.85 + 0.3 * rng.NextDouble());
            float brightness = 600 + 400 * rng.NextSingle();
            count++;
            for (int z = Math.Max(0, (int)Math.Ceiling(cz - rr)); z <= Math.Min(sz - 1, (int)Math.Floor(cz + rr)); z++)
            for (int y = Math.Max(0, (int)Math.Ceiling(cy - rr)); y <= Math.Min(sy - 1, (int)Math.Floor(cy + rr)); y++)
            for (int x = Math.Max(0, (int)Math.Ceiling(cx - rr)); x <= Math.Min(sx - 1, (int)Math.Floor(cx + rr)); x++)
            {
                double d2 = (z - cz) * (z - cz) + (y - cy) * (y - cy) + (x - cx) * (x - cx);
                int i = (z * sy + y) * sx + x;
                float v = (float)(brightness * (1 - 0.5 * d2 / (rr * rr)));
                if (d2 > rr * rr) continue;
                union[i] = 1;
                if (image[i] < v) image[i] = v;
            }
        }
        var other = new float[image.Length];
        var kernel = FirKernel.Gaussian(0, 1.5, 3.0);
        SeparableConvolution.Apply(image, other, sz, sy, sx, 2, kernel, threads);
        SeparableConvolution.Apply(other, image, sz, sy, sx, 1, kernel, threads);
        SeparableConvolution.Apply(image, other, sz, sy, sx, 0, kernel, threads);
        var raw = new ushort[image.Length];
        for (int i = 0; i < raw.Length; i++) raw[i] = (ushort)Math.Round(100 + other[i] + rng.Next(0, 60));
        return new Spheres(raw, union, count);
    }

    /// <summary>The bench's volume: the image, the spheres' union and how many spheres (some may lie partly outside).</summary>
    internal sealed record Spheres(ushort[] Raw, byte[] Union, int Count);

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
