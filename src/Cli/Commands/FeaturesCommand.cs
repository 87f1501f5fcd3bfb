using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg features IN OUT (--ilp PROJECT.ilp | --features SPEC)`: ilastik's pixel-feature matrix,
/// float32, channels last in ilastik's order, computed chunk by chunk with the halo the features need.
/// </summary>
internal static class FeaturesCommand
{
    public static Command Create(CommandContext context)
    {
        var input = new Argument<string>("input") { Description = "Volume to read: x.zarr, x.zarr/0 or file.h5/dataset" };
        var output = new Argument<string>("output") { Description = "Feature matrix to write: out.h5/features or out.zarr (float32, channels last)" };
        var ilp = new Option<string?>("--ilp") { Description = "Take the feature selection from an ilastik project (FeatureSelections)" };
        var features = new Option<string?>("--features")
        {
            Description = "Feature selection: 'all', or e.g. 'GaussianSmoothing:0.3,1.0;HessianOfGaussianEigenvalues:1.6/2d,3.5' (/2d = per z-slice)",
        };
        var chunk = new Option<string?>("--chunk") { Description = "Compute chunk core shape z,y,x (default: sized to a 1 GiB per-chunk budget)" };
        var chunks = new Option<string?>("--chunks") { Description = "Output storage chunk shape z,y,x (default 32,64,64; 2D: y,x 128,128)" };
        var codec = new Option<string?>("--codec") { Description = "Output compression (default blosc-lz4:5 for Zarr, none for HDF5)" };
        var anisotropic = new Option<bool>("--anisotropic")
        {
            Description = "Scale sigmas per axis by the voxel size (a scale counts widths of the finest voxel axis); ilastik ignores voxel size, so projects trained in ilastik expect this off",
        };
        var axes = Options.Axes();
        var workers = Options.Workers();
        var backend = Options.Backend();
        var overwrite = Options.Overwrite();
        var command = new Command("features", "Compute ilastik's pixel features (exact, chunk-invariant)")
        {
            input, output, ilp, features, anisotropic, chunk, chunks, codec, axes, workers, backend, overwrite,
        };
        command.SetAction(async (parse, ct) =>
        {
            var set = Options.SelectFeatures(parse.GetValue(ilp), parse.GetValue(features));
            var target = VolumeStore.ParseAddress(parse.GetValue(output)!);
            var requestedCompute = OptionValues.ParseLong3("--chunk", parse.GetValue(chunk));
            var requestedChunks = OptionValues.ParseLong3("--chunks", parse.GetValue(chunks));
            var codecSpec = OptionValues.ParseCodec(parse.GetValue(codec));
            int workerCount = OptionValues.CheckWorkers(parse.GetValue(workers));
            using var source = VolumeStore.Open(parse.GetValue(input)!, OptionValues.ParseAxes(parse.GetValue(axes)));
            var info = source.Info;
            int inputChannels = checked((int)info.Channels);
            long volumeZ = info.SpatialShape.Z;
            set = OptionValues.FitToVolume(set, info, parse.GetValue(anisotropic));
            using var compute = Options.OpenBackend(parse.GetValue(backend));
            var stage = new FeaturesStage(set, volumeZ, inputChannels, compute);

            var options = OutputLayout.ChannelsLast(info, target.Format, stage.OutputChannels, requestedChunks,
                new Long3(32, 64, 64), new Long3(1, 128, 128), codecSpec, CodecSpec.None);

            var parameters = new Dictionary<string, string>
            {
                ["features"] = set.ToString(),
                ["inputChannels"] = inputChannels.ToString(CultureInfo.InvariantCulture),
            };
            if (!set.AxisScales.Equals(Sigma3.One)) parameters["axisScales"] = set.AxisScales.ToString();
            var request = new JobRequest(StageCatalog.Features, source, target, options, requestedCompute, workerCount,
                parse.GetValue(overwrite), parameters, PlanningBytesPerVoxel: 4L * (FeatureEngine.MaxScratchBuffers + 2 * inputChannels + stage.OutputChannels),
                MaxChunkBytes: 1L << 30, Stage: stage);
            var outcome = await JobConsole.RunWithProgressAsync(context, "features", request, ct).ConfigureAwait(false);
            int code = JobConsole.Summarize(context, "features", outcome);
            if (code == CliApp.Ok && !outcome.AlreadyComplete)
                context.Out.WriteLine($"features: {stage.OutputChannels} channels ({set.Entries.Count} feature/scale entries), halo {stage.RequiredHalo} (z,y,x)" +
                    (set.AxisScales.Equals(Sigma3.One) ? "" : $", sigmas scaled per axis by {set.AxisScales} (z,y,x)"));
            return code;
        });
        return command;
    }
}
