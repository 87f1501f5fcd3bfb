using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg predict` and `label` over several inputs (--out DIR): each into DIR/{nickname}.zarr exactly as the single
/// command writes it, a broken input reported by name without stopping the others, batch.csv, and a rerun that does only
/// what is missing.
/// </summary>
public sealed class PredictLabelBatchCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3DFile => SharedData.Require("ilastik/Data_3D.h5");
    private static string Data3D => Data3DFile + "/data";

    private static readonly string[] Options = ["--chunk", "32,32,32", "--workers", "2"];

    [Fact]
    public async Task A_predict_batch_equals_single_predictions_reports_a_broken_input_and_a_rerun_finishes_only_it()
    {
        string copies = _dir["copies"], copy = Path.Combine(copies, "Data_3D.h5"), broken = _dir["broken.h5"];
        Directory.CreateDirectory(copies);
        File.Copy(Data3DFile, copy);
        File.WriteAllText(broken, "not an HDF5 file");
        string outDir = _dir["predicted"], single = _dir["single.zarr"];
        string[] predict = ["predict", "--ilp", Ilp3D, .. Options];

        var (code, output, err) = await Cli.Run([.. predict, Data3D, copies + "/*.h5/data", broken + "/data", "--out", outDir]);
        Assert.True(code == 1, $"exit {code}: {err}");
        Assert.Contains($"error: {broken}/data: ", err);
        Assert.Contains("1 of 3 inputs failed", err);
        Assert.Contains("2 of 3 inputs done", output);

        var (singleCode, _, singleErr) = await Cli.Run([.. predict, Data3D, single]);
        Assert.True(singleCode == 0, singleErr);
        foreach (string nickname in new[] { "Data_3D", "Data_3D_2" }) AssertSameVolume(single, Path.Combine(outDir, nickname + ".zarr"));
        Assert.False(Directory.Exists(Path.Combine(outDir, "broken.zarr")));

        var csv = File.ReadAllLines(Path.Combine(outDir, RunBatch.Csv));
        Assert.Equal("input,output,voxels,seconds,status,error", csv[0]);
        Assert.Equal(4, csv.Length);
        Assert.Matches($"^{Esc(Data3D)},{Esc(outDir)}/Data_3D.zarr,\\d+,[0-9.]+,done,$", csv[1]);
        Assert.Matches($"^{Esc(copy)}/data,{Esc(outDir)}/Data_3D_2.zarr,\\d+,[0-9.]+,done,$", csv[2]);
        Assert.StartsWith($"{broken}/data,{outDir}/broken.zarr,,", csv[3]);
        Assert.Contains(",failed,", csv[3]);

        // Fixed, and rerun from a list: the finished ones are left as they are, the broken one is predicted.
        var before = Stamps(outDir, "Data_3D.zarr", "Data_3D_2.zarr");
        File.Copy(Data3DFile, broken, overwrite: true);
        string list = _dir["inputs.txt"];
        File.WriteAllText(list, $"{Data3D}\n{copy}/data\n# fixed\n{broken}/data\n");
        (code, output, err) = await Cli.Run([.. predict, "--inputs", list, "--out", outDir]);
        Assert.True(code == 0, err);
        Assert.Equal(before, Stamps(outDir, "Data_3D.zarr", "Data_3D_2.zarr"));
        AssertSameVolume(single, Path.Combine(outDir, "broken.zarr"));
        csv = File.ReadAllLines(Path.Combine(outDir, RunBatch.Csv));
        Assert.Equal(["already done", "already done", "done"], csv.Skip(1).Select(l => l.Split(',')[4]));
    }

    [Fact]
    public async Task A_label_batch_equals_single_labellings_reports_a_broken_input_and_a_rerun_finishes_only_it()
    {
        string probabilities = _dir["p"], copies = _dir["copies"], broken = _dir["broken.h5"];
        Directory.CreateDirectory(probabilities);
        Directory.CreateDirectory(copies);
        string first = Path.Combine(probabilities, "cells.zarr");
        var (code, output, err) = await Cli.Run(["predict", Data3D, first, "--ilp", Ilp3D, .. Options]);
        Assert.True(code == 0, err);
        CopyDirectory(first, Path.Combine(copies, "cells.zarr"));
        File.WriteAllText(broken, "not an HDF5 file");
        string outDir = _dir["labelled"], single = _dir["single.zarr"];
        string[] label = ["label", .. Options];

        (code, output, err) = await Cli.Run([.. label, probabilities + "/*.zarr", Path.Combine(copies, "cells.zarr"), broken + "/data", "--out", outDir]);
        Assert.True(code == 1, $"exit {code}: {err}");
        Assert.Contains($"error: {broken}/data: ", err);
        Assert.Contains("1 of 3 inputs failed", err);

        var (singleCode, singleOut, singleErr) = await Cli.Run([.. label, first, single]);
        Assert.True(singleCode == 0, singleErr);
        var want = TestVolumes.ReadUInt32(single);
        foreach (string nickname in new[] { "cells", "cells_2" }) Assert.Equal(want, TestVolumes.ReadUInt32(Path.Combine(outDir, nickname + ".zarr")));
        long objects = want.Distinct().Count(v => v != 0);

        var csv = File.ReadAllLines(Path.Combine(outDir, RunBatch.Csv));
        Assert.Equal("input,output,objects,voxels,seconds,status,error", csv[0]);
        Assert.Matches($"^{Esc(first)},{Esc(outDir)}/cells.zarr,{objects},\\d+,[0-9.]+,done,$", csv[1]);
        Assert.Matches($"^{Esc(copies)}/cells.zarr,{Esc(outDir)}/cells_2.zarr,{objects},\\d+,[0-9.]+,done,$", csv[2]);
        Assert.StartsWith($"{broken}/data,{outDir}/broken.zarr,,,", csv[3]);
        Assert.Contains(",failed,", csv[3]);

        // The single command refuses an existing output; a batch rerun skips the finished ones and labels the fixed one.
        await Cli.Expect(2, "already exists", [.. label, first, single]);
        var before = Stamps(outDir, "cells.zarr", "cells_2.zarr");
        File.Delete(broken);   // fixed: the same probabilities, as HDF5
        (code, _, err) = await Cli.Run(["convert", first, broken + "/data"]);
        Assert.True(code == 0, err);
        (code, output, err) = await Cli.Run([.. label, probabilities + "/*.zarr", Path.Combine(copies, "cells.zarr"), broken + "/data", "--out", outDir]);
        Assert.True(code == 0, err);
        Assert.Contains("already exists; skipped", output);
        Assert.Equal(before, Stamps(outDir, "cells.zarr", "cells_2.zarr"));
        Assert.Equal(want, TestVolumes.ReadUInt32(Path.Combine(outDir, "broken.zarr")));
        csv = File.ReadAllLines(Path.Combine(outDir, RunBatch.Csv));
        Assert.Equal(["already done", "already done", "done"], csv.Skip(1).Select(l => l.Split(',')[5]));
    }

    [Fact]
    public async Task The_two_forms_are_not_mixed()
    {
        string list = _dir["list.txt"];
        File.WriteAllText(list, Data3D + "\n");
        await Cli.Expect(2, "give IN OUT", "predict", Data3D, Data3D, _dir["x.zarr"], "--ilp", Ilp3D);
        await Cli.Expect(2, "give IN OUT", "label", Data3D);
        await Cli.Expect(2, "is a batch (a glob): give --out DIR", "label", _dir["*.h5"] + "/data", _dir["x.zarr"]);
        await Cli.Expect(2, "--inputs makes a batch; give --out DIR", "predict", "--inputs", list, "--ilp", Ilp3D);
        await Cli.Expect(2, "a batch does not take it", "label", Data3D, "--out", _dir["l"], "--objects", _dir["o.csv"]);
    }

    private static string Esc(string text) => System.Text.RegularExpressions.Regex.Escape(text);

    /// <summary>The same shape, type and bytes.</summary>
    private static void AssertSameVolume(string want, string got)
    {
        using var a = VolumeStore.Open(want);
        using var b = VolumeStore.Open(got);
        Assert.Equal(a.Info.Shape, b.Info.Shape);
        Assert.Equal(a.Info.DataType, b.Info.DataType);
        Assert.Equal(Bytes(a), Bytes(b));
    }

    private static byte[] Bytes(IVolume volume)
    {
        var bytes = new byte[volume.Info.ElementCount * volume.Info.DataType.SizeInBytes()];
        volume.Read(Contracts.Geometry.NdBox.Whole(volume.Info.Shape), bytes);
        return bytes;
    }

    /// <summary>Each file's path and last write time under the named outputs.</summary>
    private static List<string> Stamps(string dir, params string[] names) => names
        .SelectMany(n => Directory.EnumerateFiles(Path.Combine(dir, n), "*", SearchOption.AllDirectories))
        .Select(f => $"{f} {File.GetLastWriteTimeUtc(f):O}").Order(StringComparer.Ordinal).ToList();

    private static void CopyDirectory(string from, string to)
    {
        foreach (string f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
    }
}
