using System.CommandLine;
using System.Globalization;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Pipelines;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench features`: ilastik's feature matrix on one float32 cube, ChunkSeg's engine against VIGRA
/// called the way ilastik calls it (tools/reference/vigra_features.py), on this machine, side by side.
/// </summary>
internal static class FeaturesBench
{
    public static Command Create(CommandContext context)
    {
        var size = new Option<int>("--size") { Description = "Edge of the float32 cube", DefaultValueFactory = _ => 128 };
        var features = new Option<string>("--features") { Description = "Feature spec ('all' = the 37 entries / 61 channels of ilastik's table)", DefaultValueFactory = _ => "all" };
        var threads = new Option<int>("--threads") { Description = "ChunkSeg threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var repeats = BenchCommand.Repeats(3, "ChunkSeg runs (best kept); VIGRA runs once");
        var python = BenchCommand.Python("vigra");
        var skipVigra = new Option<bool>("--no-vigra") { Description = "Time ChunkSeg only" };
        var command = new Command("features", "Feature-matrix voxels/s of ChunkSeg vs VIGRA on the same volume") { size, features, threads, repeats, python, skipVigra };
        command.SetAction(parse =>
        {
            int edge = parse.GetValue(size);
            if (edge < 40) throw new Contracts.Errors.UsageException("--size must be at least 40 (ilastik's scale 10 needs 36 voxels per axis)");
            var set = FeatureSet.Parse(parse.GetValue(features)!);
            int threadCount = OptionValues.CheckWorkers(parse.GetValue(threads));
            int n = edge * edge * edge;
            var volume = BenchCommand.SyntheticCube(edge);

            int channels = set.ChannelCount(edge);
            var matrix = new float[(long)n * channels];   // channel-planar: the whole matrix exists, as VIGRA's does
            var offsets = new int[set.Entries.Count];
            for (int e = 1; e < offsets.Length; e++) offsets[e] = offsets[e - 1] + set.ChannelsOf(set.Entries[e - 1], edge);
            var engine = new FeatureEngine(set, edge, threadCount);
            // The matrix is written in place, as the pipeline's classifier reads it. Untimed runs first, until tiered
            // compilation has promoted the per-plane loops (VIGRA, compiled ahead of time, needs none).
            void Features() => engine.Compute(volume, edge, edge, edge, new Box3(Long3.Zero, Long3.Uniform(edge)),
                (entry, component) => matrix.AsMemory((offsets[entry] + component) * n, n));
            BenchCommand.WarmUp(Features, limit: 10);
            double ours = BenchCommand.Best(Math.Max(1, parse.GetValue(repeats)), Features);

            double? vigra = null;
            if (!parse.GetValue(skipVigra))
            {
                string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
                Directory.CreateDirectory(dir);
                try
                {
                    string npy = Path.Combine(dir, "volume.npy");
                    Npy.Write(npy, volume, edge, edge, edge);
                    string script = BenchCommand.ExtractScript("vigra_features.py", dir);
                    vigra = BenchCommand.RunPython(parse.GetValue(python)!, script, npy, set.ToString(), Path.Combine(dir, "vigra.npy")).GetDouble();
                }
                finally
                {
                    Directory.Delete(dir, true);
                }
            }

            double mvx(double seconds) => n / seconds / 1e6;
            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"{edge}³ float32, {set.Entries.Count} feature/scale entries, {channels} channels"))
                .AddColumns("implementation", "seconds", "Mvoxels/s", "speed-up");
            table.AddRow(Markup.Escape($"ChunkSeg ({threadCount} threads, {SimdName()})"), F(ours), F(mvx(ours)), vigra is { } v ? F(v / ours) + "x" : "-");
            if (vigra is { } vs) table.AddRow("VIGRA 1.11 (ilastik's calls)", F(vs), F(mvx(vs)), "1x");
            context.Stdout.Write(table);
            return CliApp.Ok;
        });
        return command;
    }

    private static string F(double v) => v.ToString(v >= 100 ? "0" : v >= 1 ? "0.00" : "0.000", CultureInfo.InvariantCulture);

    private static string SimdName() =>
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "Vector512"
        : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "Vector256" : "scalar";
}
