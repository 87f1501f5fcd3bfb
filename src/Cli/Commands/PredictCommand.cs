using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg predict IN OUT (--ilp PROJECT | --model MODEL)`: per-class probabilities, float32, channels last
/// (one per class in the project's label order), chunk by chunk through the spine. A batch, <c>predict IN... --out DIR</c>
/// (or <c>--inputs LIST.txt</c>), writes each input's as the single command would to <c>DIR/{nickname}.zarr</c>.
/// </summary>
internal static class PredictCommand
{
    public static Command Create(CommandContext context)
    {
        var paths = new BatchArguments("the volume to classify (x.zarr, x.zarr/0 or file.h5/dataset) and the probabilities to write (out.h5/probabilities or out.zarr)");
        var (ilp, model, vigraSt) = ClassifierOptions.Create();
        var chunk = new Option<string?>("--chunk") { Description = "Compute chunk core shape z,y,x (default: sized to a 1 GiB per-chunk budget)" };
        var chunks = new Option<string?>("--chunks") { Description = "Output storage chunk shape z,y,x (default 64,64,64; 2D: y,x 256,256)" };
        var codec = new Option<string?>("--codec") { Description = "Output compression (default blosc-lz4:5 for Zarr, gzip:1 for HDF5)" };
        var axes = Options.Axes();
        var workers = Options.Workers();
        var backend = Options.Backend();
        var overwrite = Options.Overwrite();
        var (format, shard) = (Options.ZarrFormat(), Options.Shard());
        var command = new Command("predict", "Per-class probabilities from an ilastik project or a ChunkSeg model")
        {
            ilp, model, vigraSt, chunk, chunks, codec, format, shard, axes, workers, backend, overwrite,
        };
        paths.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (!paths.IsBatch(parse))
            {
                var (input, output) = paths.Single(parse, "predict");
                return (await PredictOne(input, output).ConfigureAwait(false)).Code;
            }
            var (outDir, batch) = paths.Batch(parse, "predict");
            return await BatchConsole.RunAsync(context, "predict", outDir, batch, RunBatch.PredictColumns, async (input, output) =>
            {
                Directory.CreateDirectory(outDir);
                var (code, voxels, already) = await PredictOne(input.Input, output).ConfigureAwait(false);
                if (code != CliApp.Ok) throw new InvalidOperationException($"predict incomplete (exit {code}); a rerun resumes it");
                return new BatchDone(null, voxels, already);
            }, ct).ConfigureAwait(false);

            // The single command: IN into OUT (a rerun of a finished output does nothing).
            async Task<(int Code, long Voxels, bool AlreadyComplete)> PredictOne(string inputAddress, string outputAddress)
            {
                var target = VolumeStore.ParseAddress(outputAddress);
                var requestedCompute = OptionValues.ParseLong3("--chunk", parse.GetValue(chunk));
                var requestedChunks = OptionValues.ParseLong3("--chunks", parse.GetValue(chunks));
                var codecSpec = OptionValues.ParseCodec(parse.GetValue(codec));
                int workerCount = OptionValues.CheckWorkers(parse.GetValue(workers));
                using var source = VolumeStore.Open(inputAddress, OptionValues.ParseAxes(parse.GetValue(axes)));
                var info = source.Info;
                var (loaded, parameters) = OptionValues.LoadClassifier(parse.GetValue(ilp), parse.GetValue(model), parse.GetValue(vigraSt), info);
                int inputChannels = checked((int)info.Channels);
                using var compute = Options.OpenBackend(parse.GetValue(backend));
                PredictStage stage;
                try { stage = new PredictStage(loaded.Features, info.SpatialShape.Z, inputChannels, loaded.Classifier, compute); }
                catch (ArgumentException e) { throw new UsageException($"{loaded.Source} on {info.Location}: {e.Message}", e); }

                var options = OutputLayout.WithZarr(OutputLayout.ChannelsLast(info, target.Format, stage.OutputChannels, requestedChunks,
                    new Long3(64, 64, 64), new Long3(1, 256, 256), codecSpec, CodecSpec.Gzip(1)), target.Format, Options.ZarrLayoutOf(parse, format, shard));

                var request = new JobRequest(StageCatalog.Predict, source, target, options, requestedCompute, workerCount, parse.GetValue(overwrite),
                    parameters, PlanningBytesPerVoxel: stage.PlanningBytesPerVoxel,
                    MaxChunkBytes: 1L << 30, Stage: stage);
                var outcome = await JobConsole.RunWithProgressAsync(context, "predict", request, ct).ConfigureAwait(false);
                int code = JobConsole.Summarize(context, "predict", outcome);
                if (code == CliApp.Ok && !outcome.AlreadyComplete)
                    context.Out.WriteLine($"predict: {stage.OutputChannels} classes ({string.Join(", ", loaded.ClassNames)}) from {loaded.Classifier.FeatureCount} features");
                return (code, info.SpatialShape.Volume * info.TimePoints, outcome.AlreadyComplete);
            }
        });
        return command;
    }
}
