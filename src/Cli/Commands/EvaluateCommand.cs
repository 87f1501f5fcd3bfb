using ChunkSeg.Contracts.Memory;
using System.Buffers;
using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Evaluation;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg evaluate LABELS REFERENCE [--sparse]`: Jaccard, Dice, precision and recall of a label image against a
/// reference, pixel-wise and object-wise (see <see cref="SegmentationEvaluation"/>), read chunk by chunk.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create(CommandContext context)
    {
        var labels = new Argument<string>("labels") { Description = "The segmentation to score (integer labels; 0 is background): x.zarr, file.h5/dataset" };
        var reference = new Argument<string>("reference") { Description = "The reference annotation (integer labels), same shape" };
        var sparse = new Option<bool>("--sparse") { Description = "The reference annotates only some objects; 0 there means not annotated" };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of tables" };
        var chunk = new Option<string?>("--chunk") { Description = "Chunk shape z,y,x read at a time (default 128^3)" };
        var axes = Options.Axes();
        var workers = Options.Workers();
        var command = new Command("evaluate", "Score a segmentation against a reference: Jaccard, Dice, precision, recall, pixel- and object-wise")
        {
            labels, reference, sparse, json, chunk, axes, workers,
        };
        command.SetAction((parse, ct) =>
        {
            var axesGiven = OptionValues.ParseAxes(parse.GetValue(axes));
            using var predicted = VolumeStore.Open(parse.GetValue(labels)!, axesGiven);
            using var annotated = VolumeStore.Open(parse.GetValue(reference)!, axesGiven);
            CheckLabels(predicted.Info);
            CheckLabels(annotated.Info);
            var (p, a) = (predicted.Info, annotated.Info);
            if (p.SpatialShape != a.SpatialShape || p.TimePoints != a.TimePoints)
                throw new UsageException($"{p.Location} is {Describe(p)} but {a.Location} is {Describe(a)}; a segmentation and its reference must have the same shape");
            var grid = new ChunkGrid(p.SpatialShape, p.TimePoints, OptionValues.ParseLong3("--chunk", parse.GetValue(chunk)) ?? Long3.Uniform(128), Halo.None);
            int threads = OptionValues.CheckWorkers(parse.GetValue(workers));

            var table = new OverlapTable();
            context.Console.Progress().AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(progress =>
                {
                    var task = progress.AddTask(Markup.Escape($"evaluate  0/{grid.Count} chunks"), maxValue: Math.Max(1, grid.Count));
                    long done = 0;
                    Parallel.For(0, grid.Count, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = ct },
                        () => new OverlapTable(),
                        (c, _, local) =>
                        {
                            var spec = grid[c];
                            int n = checked((int)spec.Core.VoxelCount);
                            ulong[] r = ArrayPool<ulong>.Shared.Rent(n), s = ArrayPool<ulong>.Shared.Rent(n);
                            try
                            {
                                ReadLabels(annotated, spec.TimePoint, spec.Core, r.AsSpan(0, n));
                                ReadLabels(predicted, spec.TimePoint, spec.Core, s.AsSpan(0, n));
                                local.Add(r.AsSpan(0, n), s.AsSpan(0, n));
                            }
                            finally
                            {
                                ArrayPool<ulong>.Shared.Return(r);
                                ArrayPool<ulong>.Shared.Return(s);
                            }
                            long d = Interlocked.Increment(ref done);
                            task.Value = d;
                            task.Description = Markup.Escape($"evaluate  {d}/{grid.Count} chunks");
                            return local;
                        },
                        local => { lock (table) table.Merge(local); });
                    task.StopTask();
                });

            var scores = SegmentationEvaluation.Score(table, parse.GetValue(sparse));
            if (parse.GetValue(json)) context.Out.WriteLine(JsonSerializer.Serialize(scores, JsonOptions));
            else Print(context, scores, p.Location, a.Location);
            return Task.FromResult(CliApp.Ok);
        });
        return command;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static string Describe(VolumeInfo info) =>
        $"{info.SpatialShape.Z} x {info.SpatialShape.Y} x {info.SpatialShape.X} (z, y, x)" + (info.TimePoints > 1 ? $" at {info.TimePoints} time points" : "");

    private static void CheckLabels(VolumeInfo info)
    {
        if (info.DataType.IsFloat())
            throw new UsageException($"{info.Location} holds {info.DataType.Name()} values; evaluate compares integer label images (threshold or label it first)");
        if (info.Channels != 1) throw new UsageException($"{info.Location}: a label image has one channel; this one has {info.Channels}");
    }

    /// <summary>One box of a label image as 64-bit labels, z, y, x order; negative labels are refused.</summary>
    private static void ReadLabels(IVolume volume, long t, Box3 box, Span<ulong> destination)
    {
        byte[] planar = PlanarRead.Rent(volume, t, box, out int bytes);
        try
        {
            var raw = planar.AsSpan(0, bytes);
            switch (volume.Info.DataType)
            {
                case DataType.UInt8: Widen<byte>(raw, destination, volume.Info.Location, box); break;
                case DataType.UInt16: Widen(MemoryMarshal.Cast<byte, ushort>(raw), destination, volume.Info.Location, box); break;
                case DataType.UInt32: Widen(MemoryMarshal.Cast<byte, uint>(raw), destination, volume.Info.Location, box); break;
                case DataType.UInt64: Widen(MemoryMarshal.Cast<byte, ulong>(raw), destination, volume.Info.Location, box); break;
                case DataType.Int8: Widen(MemoryMarshal.Cast<byte, sbyte>(raw), destination, volume.Info.Location, box); break;
                case DataType.Int16: Widen(MemoryMarshal.Cast<byte, short>(raw), destination, volume.Info.Location, box); break;
                case DataType.Int32: Widen(MemoryMarshal.Cast<byte, int>(raw), destination, volume.Info.Location, box); break;
                default: Widen(MemoryMarshal.Cast<byte, long>(raw), destination, volume.Info.Location, box); break;
            }
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
        }

        static void Widen<T>(ReadOnlySpan<T> values, Span<ulong> destination, string source, Box3 box) where T : unmanaged, System.Numerics.IBinaryInteger<T>
        {
            for (int i = 0; i < destination.Length; i++)
            {
                if (T.IsNegative(values[i])) throw new VolumeException(source, $"label {values[i]} at a voxel of {box}: labels must not be negative");
                destination[i] = ulong.CreateTruncating(values[i]);
            }
        }
    }

    private static void Print(CommandContext context, SegmentationScores s, string labels, string reference)
    {
        static string F(double? v) => v is { } x ? x.ToString("0.0000", CultureInfo.InvariantCulture) : "-";
        static string N(long? v) => v is { } x ? x.ToString("N0", CultureInfo.InvariantCulture) : "-";
        var p = s.Pixels;
        var pixels = new Table().Border(TableBorder.Rounded).Title(s.Sparse ? "pixel-wise, annotated" : "pixel-wise")
            .AddColumns("measure", "value");
        foreach (var (name, value) in new[]
                 {
                     ("true positives", N(p.TruePositives)), ("false positives", N(p.FalsePositives)), ("false negatives", N(p.FalseNegatives)),
                     ("true negatives", N(p.TrueNegatives)), ("Jaccard", F(p.Jaccard)), ("Dice", F(p.Dice)), ("precision", F(p.Precision)), ("recall", F(p.Recall)),
                 })
            pixels.AddRow(name, value);
        var o = s.Objects;
        var objects = new Table().Border(TableBorder.Rounded).Title("object-wise")
            .AddColumns("measure", "value");
        foreach (var (name, value) in new[]
                 {
                     ("reference objects", N(o.ReferenceObjects)), ("predicted objects", N(o.PredictedObjects)), ("matched", N(o.Matched)),
                     ("precision", F(o.Precision)), ("recall", F(o.Recall)), ("F1", F(o.F1)), ("Jaccard", F(o.Jaccard)),
                     ("mean best Jaccard", F(o.MeanBestJaccard)), ("mean best Dice", F(o.MeanBestDice)),
                 })
            objects.AddRow(name, value);
        context.Out.WriteLine($"evaluate: {labels} against {reference}" + (s.Sparse ? " (sparse reference: unannotated voxels and objects are not judged)" : ""));
        context.Out.WriteLine($"foreground = label ≠ 0; objects match when their Jaccard index exceeds {SegmentationEvaluation.MatchThreshold.ToString(CultureInfo.InvariantCulture)}");
        context.Stdout.Write(pixels);
        context.Stdout.Write(objects);
    }
}
