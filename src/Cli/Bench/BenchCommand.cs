using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Tiff;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench io`: reading and writing throughput of ChunkSeg and of the reference libraries
/// (zarr-python, h5py, tifffile) on the same files, on this machine, side by side; TIFF: reads of files tifffile wrote,
/// and writes of ImageJ hyperstacks as `convert OUT.tif` writes them. Whole-volume reads (opening the
/// file each time, so chunk caches start cold) and writes, single-threaded on both sides, best of N.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(CommandContext context)
    {
        var shape = new Option<string>("--shape") { Description = "Volume shape z,y,x (uint16)", DefaultValueFactory = _ => "128,256,256" };
        var chunks = new Option<string>("--chunks") { Description = "Storage chunks z,y,x", DefaultValueFactory = _ => "64,64,64" };
        var zarrCodec = new Option<string>("--zarr-codec") { Description = "Zarr codec", DefaultValueFactory = _ => "blosc-lz4:5" };
        var h5Codec = new Option<string>("--h5-codec") { Description = "HDF5 codec (none or gzip)", DefaultValueFactory = _ => "gzip:4" };
        var repeats = Repeats(3);
        var python = Python("h5py, zarr and tifffile");
        var io = new Command("io", "Read/write MB/s of ChunkSeg vs zarr-python, h5py and tifffile on the same files") { shape, chunks, zarrCodec, h5Codec, repeats, python };
        io.SetAction(parse =>
        {
            var size = OptionValues.ParseLong3("--shape", parse.GetValue(shape))!.Value;
            var chunk = OptionValues.ParseLong3("--chunks", parse.GetValue(chunks))!.Value;
            int n = Math.Max(1, parse.GetValue(repeats));
            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
            try
            {
                var rows = Run(size, chunk, OptionValues.ParseCodec(parse.GetValue(zarrCodec))!, OptionValues.ParseCodec(parse.GetValue(h5Codec))!, n,
                    parse.GetValue(python)!, dir);
                var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"{size} uint16, chunks {chunk}, best of {n}"))
                    .AddColumns("operation", "ChunkSeg MB/s", "reference MB/s", "reference");
                foreach (var r in rows) table.AddRow(r.Operation, F(r.Ours), F(r.Theirs), Markup.Escape(r.Reference));
                context.Stdout.Write(table);
                return CliApp.Ok;
            }
            finally
            {
                try { Directory.Delete(dir, true); } catch (DirectoryNotFoundException) { }
            }
        });
        return new Command("bench", "Measure ChunkSeg against the reference tools on this machine") {
            io, FeaturesBench.Create(context), PredictBench.Create(context), LabelBench.CreateLabel(context), LabelBench.CreateMerge(context), SplitBench.Create(context), MeshBench.Create(context), RunBench.Create(context), ClusterBench.Create(context), BackendBench.Create(context),
        };
    }

    private sealed record Row(string Operation, double Ours, double Theirs, string Reference);

    /// <summary>A float32 cube of smooth structure plus noise (the same for every run): what the feature benches compute on.</summary>
    public static float[] SyntheticCube(int edge)
    {
        int n = edge * edge * edge;
        var volume = new float[n];
        var rng = new Random(17);
        for (int i = 0; i < n; i++)
            volume[i] = (float)(100 + 60 * Math.Sin(i % edge * 0.3) * Math.Cos(i / edge % edge * 0.2) + 40 * Math.Sin(i / (edge * edge) * 0.5) + rng.Next(0, 30));
        return volume;
    }

    private static string F(double mbps) => mbps.ToString("0.0", CultureInfo.InvariantCulture);

    private static List<Row> Run(Long3 size, Long3 chunk, CodecSpec zarrCodec, CodecSpec h5Codec, int repeats, string python, string dir)
    {
        Directory.CreateDirectory(dir);
        var axes = AxisOrder.Parse("zyx");
        long[] shape = [size.Z, size.Y, size.X];
        int[] chunkShape = [(int)Math.Min(chunk.Z, size.Z), (int)Math.Min(chunk.Y, size.Y), (int)Math.Min(chunk.X, size.X)];
        var data = new ushort[size.Volume];
        var rng = new Random(7);
        for (int i = 0; i < data.Length; i++) data[i] = (ushort)(1000 + 200 * Math.Sin(i * 0.001) + rng.Next(0, 64));   // compressible, like microscopy
        var whole = NdBox.Whole(shape);
        var buffer = new ushort[data.Length];
        double bytes = data.Length * 2.0;

        var zarrAddress = VolumeAddress.Parse(Path.Combine(dir, "bench.zarr"));
        var h5Address = VolumeAddress.Parse(Path.Combine(dir, "bench.h5") + "/data");
        var zarrOptions = new VolumeCreateOptions(axes, shape, DataType.UInt16, chunkShape, VoxelSize.Isotropic, zarrCodec);
        var h5Options = zarrOptions with { Codec = h5Codec };

        // Every timed operation runs untimed first until it compiles no method (WarmUp): a method's first calls run
        // unoptimised code until tiered compilation promotes it (the first writes of this process ran at a third of
        // the steady state's speed), and the figure is the steady state a long job runs in, as the reference's
        // compiled code is from its first call.
        void ZarrWrite()
        {
            if (Directory.Exists(zarrAddress.RootPath)) Directory.Delete(zarrAddress.RootPath, true);
            using var v = VolumeStore.Create(zarrAddress, zarrOptions);
            v.Write<ushort>(whole, data);
        }
        void H5Write()
        {
            if (File.Exists(h5Address.RootPath)) File.Delete(h5Address.RootPath);
            using var v = VolumeStore.Create(h5Address, h5Options);
            v.Write<ushort>(whole, data);
            v.Flush();
        }
        WarmUp(ZarrWrite);
        double zarrWrite = Best(repeats, ZarrWrite);
        WarmUp(H5Write);
        double h5Write = Best(repeats, H5Write);
        // Each timed read opens the volume afresh (as the reference script does), so no run is served from a
        // chunk cache warmed by the previous one: the figure is decoding throughput, not cache hits.
        void ZarrRead() { using var z = VolumeStore.Open(zarrAddress); z.Read<ushort>(whole, buffer); }
        void H5Read() { using var h = VolumeStore.Open(h5Address); h.Read<ushort>(whole, buffer); }
        WarmUp(ZarrRead);
        double zarrRead = Best(repeats, ZarrRead);
        if (!buffer.AsSpan().SequenceEqual(data)) throw new VolumeException(zarrAddress.RootPath, "benchmark read back different data");
        WarmUp(H5Read);
        double h5Read = Best(repeats, H5Read);
        if (!buffer.AsSpan().SequenceEqual(data)) throw new VolumeException(h5Address.RootPath, "benchmark read back different data");
        // Two threads reading halves of one open dataset: PureHDF reads concurrently, no process-wide lock.
        Array.Clear(buffer);
        void H5Read2()
        {
            using var h = VolumeStore.Open(h5Address);
            long half = shape[0] / 2, plane = shape[1] * shape[2];
            Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i =>
            {
                long z0 = i == 0 ? 0 : half, z1 = i == 0 ? half : shape[0];
                h.Read<ushort>(new NdBox([z0, 0, 0], [z1 - z0, shape[1], shape[2]]), buffer.AsSpan((int)(z0 * plane), (int)((z1 - z0) * plane)));
            });
        }
        WarmUp(H5Read2);
        double h5Read2 = Best(repeats, H5Read2);
        if (!buffer.AsSpan().SequenceEqual(data)) throw new VolumeException(h5Address.RootPath, "benchmark read back different data (two threads)");

        // The reference script also writes the volume as TIFF with tifffile for both sides to read: uncompressed
        // strips, deflate strips and deflate tiles (tile edge: the chunks' smallest y/x edge, a multiple of 16 as TIFF
        // requires), timing tifffile's reads of them; ChunkSeg then times its reads of the same files.
        int tile = (int)Math.Max(16, (Math.Min(chunkShape[1], chunkShape[2]) + 15) / 16 * 16);
        string script = ExtractScript("io_reference.py", dir);
        var reference = RunPython(python, script, zarrAddress.RootPath, h5Address.RootPath, "data", repeats.ToString(CultureInfo.InvariantCulture),
            dir, tile.ToString(CultureInfo.InvariantCulture));
        double Ref(string key) => bytes / 1e6 / reference.GetProperty(key).GetDouble();
        var versions = reference.GetProperty("versions");
        string zarrName = $"zarr-python {versions.GetProperty("zarr").GetString()}";
        string h5Name = $"h5py {versions.GetProperty("h5py").GetString()} (HDF5 {versions.GetProperty("hdf5").GetString()})";
        string tiffName = $"tifffile {versions.GetProperty("tifffile").GetString()} imread, 1 thread";

        var tiffRows = new List<Row>();
        foreach (var name in new[] { "none", "deflate", "deflate-tiled" })
        {
            string path = Path.Combine(dir, name + ".tif");
            var tiffAddress = VolumeAddress.Parse(path);
            Array.Clear(buffer);
            void TiffRead() { using var t = VolumeStore.Open(tiffAddress); t.Read<ushort>(whole, buffer); }
            WarmUp(TiffRead);
            double tiffRead = Best(repeats, TiffRead);
            if (!buffer.AsSpan().SequenceEqual(data)) throw new VolumeException(path, "benchmark read back different data");
            string layout = reference.GetProperty("tiff_layout_" + name).GetString()!;
            string codec = name.StartsWith("deflate", StringComparison.Ordinal) ? "deflate" : "uncompressed";
            tiffRows.Add(new($"TIFF read ({codec}, {layout})", bytes / 1e6 / tiffRead, Ref("tiff_read_" + name), tiffName));
            if (name == "none")
                tiffRows.Add(new($"TIFF read ({codec}, {layout})", bytes / 1e6 / tiffRead, Ref("tiff_memmap_none"),
                    $"tifffile {versions.GetProperty("tifffile").GetString()} memmap + copy"));
        }
        // Writes as `convert OUT.tif` writes (an ImageJ hyperstack, page after page), from the uncompressed TIFF above (its
        // read is timed in its own row); tifffile writes from memory.
        using (var source = VolumeStore.Open(VolumeAddress.Parse(Path.Combine(dir, "none.tif"))))
        {
            foreach (bool deflate in new[] { false, true })
            {
                string written = Path.Combine(dir, "chunkseg-written.tif");
                double tiffWrite = Best(repeats, () => TiffWriter.Write(source, written, deflate: deflate));
                using (var back = VolumeStore.Open(VolumeAddress.Parse(written))) back.Read<ushort>(whole, buffer);
                if (!buffer.AsSpan().SequenceEqual(data)) throw new VolumeException(written, "benchmark wrote different data");
                File.Delete(written);
                string codec = deflate ? "deflate" : "uncompressed";
                tiffRows.Add(new($"TIFF write ({codec}, ImageJ hyperstack)", bytes / 1e6 / tiffWrite, Ref(deflate ? "tiff_write_deflate" : "tiff_write_none"),
                    $"tifffile {versions.GetProperty("tifffile").GetString()} imwrite"));
            }
        }

        return
        [
            new($"Zarr read ({zarrCodec})", bytes / 1e6 / zarrRead, Ref("zarr_read"), zarrName),
            new($"Zarr write ({zarrCodec})", bytes / 1e6 / zarrWrite, Ref("zarr_write"), zarrName),
            new($"HDF5 read ({h5Codec}), 1 thread", bytes / 1e6 / h5Read, Ref("h5_read"), h5Name),
            new($"HDF5 read ({h5Codec}), 2 threads", bytes / 1e6 / h5Read2, Ref("h5_read_2"), h5Name),
            new($"HDF5 write ({h5Codec})", bytes / 1e6 / h5Write, Ref("h5_write"), h5Name),
            .. tiffRows,
        ];
    }

    /// <summary>Writes an embedded reference script (tools/reference/) into <paramref name="dir"/>.</summary>
    internal static string ExtractScript(string name, string dir)
    {
        string script = Path.Combine(dir, name);
        using var resource = typeof(BenchCommand).Assembly.GetManifestResourceStream(name)!;
        using var file = File.Create(script);
        resource.CopyTo(file);
        return script;
    }

    /// <summary>The --repeats option of a benchmark: how many runs, the best kept.</summary>
    internal static Option<int> Repeats(int defaultValue, string description = "Runs per measurement; the best is kept") =>
        new("--repeats") { Description = description, DefaultValueFactory = _ => defaultValue };

    /// <summary>The --python option: the interpreter running the reference tools (<paramref name="with"/>), Debian's by default.</summary>
    internal static Option<string> Python(string with) =>
        new("--python") { Description = $"Interpreter with {with}", DefaultValueFactory = _ => "/usr/bin/python3" };

    /// <summary>
    /// Runs <paramref name="action"/> untimed until two runs in a row compile no method (at most
    /// <paramref name="limit"/> runs): tiered compilation has then promoted its hot methods.
    /// </summary>
    internal static void WarmUp(Action action, int limit = 50)
    {
        for (int run = 0, quiet = 0; run < limit && quiet < 2; run++)
        {
            long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
            action();
            quiet = System.Runtime.JitInfo.GetCompiledMethodCount() == compiled ? quiet + 1 : 0;
        }
    }

    internal static double Best(int repeats, Action action)
    {
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            action();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return best;
    }

    internal static JsonElement RunPython(string python, params string[] args)
    {
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new UsageException($"--python {python}: could not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new UsageException($"--python {python}: {e.Message}; install Debian's python3-h5py, python3-zarr and python3-tifffile", e);
        }
        using (process)
        {
            var err = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new UsageException($"the reference benchmark ({python}) failed: {err.Result.Trim()}");
            return JsonDocument.Parse(output).RootElement.Clone();
        }
    }
}
