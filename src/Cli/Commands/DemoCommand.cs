using System.CommandLine;
using System.Globalization;
using ChunkSeg.Cli.Jobs;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg demo`: generates a synthetic nuclei-like light-sheet stack (anisotropic voxels, noise) through
/// the chunk spine as OME-Zarr, then converts it to HDF5 (ilastik's format) the same way.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(CommandContext context)
    {
        var outDir = new Option<string>("--out") { Description = "Output folder", DefaultValueFactory = _ => "demo-out" };
        var shape = new Option<string>("--shape") { Description = "Volume shape z,y,x", DefaultValueFactory = _ => "64,256,256" };
        var voxelSize = new Option<string>("--voxel-size") { Description = "Voxel size z,y,x in micrometers", DefaultValueFactory = _ => "2.0,0.4,0.4" };
        var nuclei = new Option<int>("--nuclei") { Description = "Number of nuclei", DefaultValueFactory = _ => 150 };
        var seed = new Option<ulong>("--seed") { Description = "Random seed (the volume is a pure function of it)", DefaultValueFactory = _ => 42UL };
        var workers = Options.Workers();
        var overwrite = new Option<bool>("--overwrite") { Description = "Regenerate outputs that already exist" };
        var command = new Command("demo", "Generate a synthetic nuclei volume and write it as OME-Zarr and HDF5")
        {
            outDir, shape, voxelSize, nuclei, seed, workers, overwrite,
        };
        command.SetAction(async (parse, ct) =>
        {
            var size = Options.ParseLong3("--shape", parse.GetValue(shape))!.Value;
            var voxel = Options.ParseVoxelSize(parse.GetValue(voxelSize))!;
            int workerCount = Options.CheckWorkers(parse.GetValue(workers));
            if (parse.GetValue(nuclei) < 0) throw new Contracts.Errors.UsageException("--nuclei must not be negative");
            string dir = parse.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            bool replace = parse.GetValue(overwrite);

            var zarr = VolumeStore.ParseAddress(Path.Combine(dir, "nuclei.zarr"));
            var zarrOptions = new VolumeCreateOptions(AxisOrder.Parse("zyx"), [size.Z, size.Y, size.X], DataType.UInt16,
                [(int)Math.Min(64, size.Z), (int)Math.Min(128, size.Y), (int)Math.Min(128, size.X)], voxel, CodecSpec.Default);
            var parameters = new Dictionary<string, string>
            {
                ["nuclei"] = parse.GetValue(nuclei).ToString(CultureInfo.InvariantCulture),
                ["seed"] = parse.GetValue(seed).ToString(CultureInfo.InvariantCulture),
            };
            var synth = await JobConsole.RunWithProgressAsync(context, "synthesize",
                new JobRequest(StageCatalog.Synthesize, null, zarr, zarrOptions, null, workerCount, replace, parameters), ct).ConfigureAwait(false);
            int code = JobConsole.Summarize(context, "synthesize", synth);
            if (code != CliApp.Ok) return code;

            var h5 = VolumeStore.ParseAddress(Path.Combine(dir, "nuclei.h5") + "/raw");
            using var source = VolumeStore.Open(zarr);
            var h5Options = OutputLayout.For(source.Info, VolumeFormat.Hdf5, null, null, null);
            var convert = await JobConsole.RunWithProgressAsync(context, "convert",
                new JobRequest(StageCatalog.Convert, source, h5, h5Options, null, workerCount, replace, new Dictionary<string, string>()), ct).ConfigureAwait(false);
            code = JobConsole.Summarize(context, "convert", convert);
            if (code != CliApp.Ok) return code;

            context.Out.WriteLine($"Open {zarr} in napari (napari-ome-zarr) or {h5} in ilastik/Fiji; inspect with: chunkseg info {zarr}");
            return CliApp.Ok;
        });
        return command;
    }
}
