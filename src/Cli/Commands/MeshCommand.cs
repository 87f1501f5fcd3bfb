using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Meshing;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg mesh IN OUT.obj|OUT.ply`: marching cubes chunk by chunk, welded into one mesh in micrometers: the
/// isosurface of a probability channel, the surface of a mask's foreground, or one closed surface per label.
/// </summary>
internal static class MeshCommand
{
    public static Command Create(CommandContext context)
    {
        var input = new Argument<string>("input") { Description = "Probabilities (float, channels) or a label/mask volume (integers): x.zarr, file.h5/dataset" };
        var output = new Argument<string>("output") { Description = "Mesh file: out.obj (Wavefront, text) or out.ply (binary)" };
        var perLabel = new Option<bool>("--per-label") { Description = "One closed surface per label (OBJ objects/groups label_<id>; a PLY face property 'label')" };
        var channel = new Option<int?>("--channel") { Description = "Channel of a probability map to mesh, 0-based (default 1, or 0 for one channel)" };
        var isovalue = new Option<float?>("--isovalue") { Description = "Isovalue of the surface (default 0.5)" };
        var smooth = new Option<string?>("--smooth-sigma") { Description = "Gaussian smoothing before meshing, sigma in voxels: s or z,y,x (a mask is smoothed as 0/1)" };
        var voxelSize = new Option<string?>("--voxel-size") { Description = "Voxel size z,y,x in micrometers (default: from the input's metadata)" };
        var axisOrder = new Option<string>("--axis-order") { Description = "Vertex coordinate order: xyz (default) or zyx (array order)", DefaultValueFactory = _ => "xyz" };
        var decimate = new Option<double?>("--decimate") { Description = "Quadric decimation to this fraction of the triangles (0 < f < 1), keeping surfaces closed" };
        var taubin = new Option<int>("--taubin") { Description = "Taubin smoothing iterations after welding (shape-preserving, no shrinkage)" };
        var normals = new Option<bool>("--normals") { Description = "Write vertex normals (area-weighted)" };
        var time = new Option<long?>("--time") { Description = "Time point of a 3D+t volume, 0-based" };
        var chunk = new Option<string?>("--chunk") { Description = "Compute chunk core shape z,y,x (default 128^3, aligned to storage chunks)" };
        var axes = Options.Axes();
        var workers = Options.Workers();
        var overwrite = Options.Overwrite();
        var backend = Options.Backend("the smoothing before marching cubes");
        var command = new Command("mesh", "Marching-cubes surface meshes welded across chunks, in micrometers (OBJ or PLY)")
        {
            input, output, perLabel, channel, isovalue, smooth, voxelSize, axisOrder, decimate, taubin, normals, time, chunk, axes, workers, overwrite, backend,
        };
        command.SetAction(async (parse, ct) =>
        {
            string target = Path.GetFullPath(parse.GetValue(output)!);
            MeshFileWriter.FormatOf(target);
            if (!Directory.Exists(Path.GetDirectoryName(target))) throw new UsageException($"{target}: the directory does not exist");
            using var source = VolumeStore.Open(parse.GetValue(input)!, OptionValues.ParseAxes(parse.GetValue(axes)));
            var info = source.Info;
            var surface = SurfaceOf(info, parse.GetValue(perLabel), parse.GetValue(channel), parse.GetValue(isovalue),
                OptionValues.ParseSigma("--smooth-sigma", parse.GetValue(smooth)), parse.GetValue(time));
            bool arrayOrder = parse.GetValue(axisOrder) switch
            {
                "xyz" => false,
                "zyx" => true,
                var other => throw new UsageException($"--axis-order {other}: use xyz or zyx"),
            };
            double fraction = parse.GetValue(decimate) ?? 1;
            if (!(fraction > 0 && fraction <= 1)) throw new UsageException($"--decimate {fraction}: the fraction of triangles to keep must be in (0, 1]");
            int iterations = parse.GetValue(taubin);
            if (iterations < 0) throw new UsageException($"--taubin {iterations}: iterations must not be negative");
            using var compute = Options.OpenBackend(parse.GetValue(backend));
            var request = new MeshRequest(source, target, surface, OptionValues.VoxelSizeOf(info, parse.GetValue(voxelSize)), arrayOrder, parse.GetValue(normals),
                iterations, fraction, OptionValues.ParseLong3("--chunk", parse.GetValue(chunk)), OptionValues.CheckWorkers(parse.GetValue(workers)), parse.GetValue(overwrite))
            { Backend = compute };

            MeshOutcome? outcome = null;
            using var logs = context.CreateLogs();
            await context.Console.Progress().AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async p =>
                {
                    var extract = p.AddTask("mesh 1/2: marching cubes", maxValue: 1);
                    var progress = new SynchronousProgress<(long Done, long Total)>(d =>
                    {
                        extract.MaxValue = Math.Max(1, d.Total);
                        extract.Value = d.Done;
                        extract.Description = Markup.Escape($"mesh 1/2: marching cubes  {d.Done}/{d.Total} chunks");
                    });
                    outcome = await MeshJob.RunAsync(request, logs, progress, ct);
                    extract.StopTask();
                    var weld = p.AddTask("mesh 2/2: weld and write", maxValue: 1);
                    weld.Value = 1;
                });
            var o = outcome!;
            double voxels = (double)info.SpatialShape.Volume;
            var ci = CultureInfo.InvariantCulture;
            string objects = surface.Kind == SurfaceKind.PerLabel ? string.Format(ci, ", {0:N0} objects", o.Weld.Objects) : "";
            string resumed = o.ChunksResumed > 0 ? string.Format(ci, " ({0} resumed)", o.ChunksResumed) : "";
            context.Out.WriteLine(string.Format(ci,
                "mesh: wrote {0} — {1:N0} vertices, {2:N0} triangles{3}; {4} chunks of {5}{6}, marching cubes {7:0.00} s ({8}), weld {9:0.00} s; " +
                "coordinates in micrometers ({10}).",
                target, o.Weld.Vertices, o.Weld.Triangles, objects, o.Chunks, o.ChunkShape, resumed, o.ExtractTime.TotalSeconds,
                Units.Rate(voxels / Math.Max(o.ExtractTime.TotalSeconds, 1e-9)), o.WeldTime.TotalSeconds, arrayOrder ? "z y x" : "x y z"));
            return CliApp.Ok;
        });
        return command;
    }

    private static SurfaceSpec SurfaceOf(VolumeInfo info, bool perLabel, int? channel, float? isovalue, Kernels.Features.Sigma3 sigma, long? time)
    {
        if (!info.Axes.HasZ) throw new UsageException($"{info.Location}: meshing needs a 3D volume (axes {info.Axes})");
        long t = time ?? 0;
        if (time is null && info.TimePoints > 1)
            throw new UsageException($"{info.Location}: has {info.TimePoints} time points; choose one with --time (0 to {info.TimePoints - 1})");
        if (t < 0 || t >= info.TimePoints) throw new UsageException($"--time {t}: {info.Location} has {info.TimePoints} time point(s)");
        bool smooths = sigma.Z > 0 || sigma.Y > 0 || sigma.X > 0;
        if (isovalue is { } iso && !float.IsFinite(iso)) throw new UsageException($"--isovalue must be a number; got {iso}");
        if (info.DataType.IsFloat())
        {
            if (perLabel) throw new UsageException($"--per-label: {info.Location} holds {info.DataType.Name()} values; per-label surfaces need an integer label image");
            int ch = channel ?? (info.Channels > 1 ? 1 : 0);
            if (ch < 0 || ch >= info.Channels)
                throw new UsageException($"--channel {ch}: {info.Location} has {info.Channels} channel(s), numbered 0 to {info.Channels - 1}");
            return CheckSmoothing(info, new SurfaceSpec(SurfaceKind.Isosurface, ch, isovalue ?? 0.5f, sigma, t));
        }
        if (channel is not null) throw new UsageException($"--channel: {info.Location} holds {info.DataType.Name()} labels; --channel picks a probability channel");
        if (info.Channels != 1) throw new UsageException($"{info.Location}: a label image has one channel; this one has {info.Channels}");
        if (perLabel && (smooths || isovalue is not null))
            throw new UsageException("--per-label meshes each label's voxels as they are; --smooth-sigma and --isovalue apply to a probability map or the foreground (smooth labels with --taubin)");
        if (!smooths && isovalue is not null)
            throw new UsageException("--isovalue: the surface of a mask lies halfway between voxels; give --smooth-sigma to mesh the smoothed mask at an isovalue");
        return CheckSmoothing(info, new SurfaceSpec(perLabel ? SurfaceKind.PerLabel : SurfaceKind.Foreground, 0, isovalue ?? 0.5f, sigma, t));
    }

    private static SurfaceSpec CheckSmoothing(VolumeInfo info, SurfaceSpec spec)
    {
        var shape = info.SpatialShape;
        if (shape.Z < 2 || shape.Y < 2 || shape.X < 2)
            throw new UsageException($"{info.Location}: marching cubes needs at least 2 voxels along each axis; the volume is {shape}");
        OptionValues.CheckSmoothingFits(spec.Smoothing.ToString(), BlockSmoothing.Kernels(spec.Smoothing), info);
        return spec;
    }

}
