using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ChunkSeg.Pipelines;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg run` over several inputs: each into --out DIR/{nickname} exactly as its single run, a broken input reported
/// without stopping the others, batch.csv, and a rerun that runs only what is missing.
/// </summary>
public sealed class RunBatchCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3DFile => SharedData.Require("ilastik/Data_3D.h5");
    private static string Data3D => Data3DFile + "/data";

    private static readonly string[] Options = ["--chunk", "32,32,32", "--mesh", "none", "--workers", "2"];

    [Fact]
    public async Task A_batch_equals_single_runs_reports_a_broken_input_and_a_rerun_finishes_only_what_is_missing()
    {
        // Two good inputs of the same nickname (ilastik's Data_3D and a copy in another folder, named by a glob) and a broken file.
        string copies = _dir["copies"], copy = Path.Combine(copies, "Data_3D.h5");
        Directory.CreateDirectory(copies);
        File.Copy(Data3DFile, copy);
        string broken = _dir["broken.h5"];
        File.WriteAllText(broken, "not an HDF5 file");
        string outDir = _dir["batch"], single = _dir["single"];

        var (code, output, err) = await Cli.Run(["run", Data3D, copies + "/*.h5/data", broken + "/data", "--out", outDir, "--ilp", Ilp3D, .. Options]);
        Assert.True(code == 1, $"exit {code}: {err}");
        Assert.Contains($"error: {broken}/data: ", err);
        Assert.Contains("1 of 3 inputs failed", err);
        Assert.Contains("2 of 3 inputs done", output);

        var (singleCode, _, singleErr) = await Cli.Run(["run", Data3D, "--out", single, "--ilp", Ilp3D, .. Options]);
        Assert.True(singleCode == 0, singleErr);
        foreach (string nickname in new[] { "Data_3D", "Data_3D_2" }) AssertSameRun(single, Path.Combine(outDir, nickname), sameInput: nickname == "Data_3D");
        Assert.False(File.Exists(Path.Combine(outDir, "broken", RunJob.Manifest)));

        var csv = File.ReadAllLines(Path.Combine(outDir, RunBatch.Csv));
        Assert.Equal("input,nickname,objects,voxels,seconds,status,error", csv[0]);
        Assert.Equal(4, csv.Length);
        long objects = Manifest(single)["objects"]!.GetValue<long>();
        Assert.Matches($"^{Regex.Escape(Data3D)},Data_3D,{objects},\\d+,[0-9.]+,done,$", csv[1]);
        Assert.Matches($"^{Regex.Escape(copy)}/data,Data_3D_2,{objects},\\d+,[0-9.]+,done,$", csv[2]);
        Assert.StartsWith($"{broken}/data,broken,,,", csv[3]);
        Assert.Contains(",failed,", csv[3]);

        // Fixed, and rerun from a list: the good ones are left as they are, the broken one is run.
        string[] finished = ["Data_3D", "Data_3D_2"];
        var before = finished.Select(n => File.ReadAllText(Path.Combine(outDir, n, RunJob.Manifest))).ToList();
        File.Copy(Data3DFile, broken, overwrite: true);
        string list = _dir["inputs.txt"];
        File.WriteAllText(list, $"# the dataset, twice, and the one that was broken\n{Data3D}\n\n  {copy}/data\n{broken}/data\n");
        (code, output, err) = await Cli.Run(["run", "--inputs", list, "--out", outDir, "--ilp", Ilp3D, .. Options]);
        Assert.True(code == 0, err);
        Assert.Equal(before, finished.Select(n => File.ReadAllText(Path.Combine(outDir, n, RunJob.Manifest))));
        Assert.Contains("already holds this run", output);
        AssertSameRun(single, Path.Combine(outDir, "broken"), sameInput: false);
        csv = File.ReadAllLines(Path.Combine(outDir, RunBatch.Csv));
        Assert.Equal(["already done", "already done", "done"], csv.Skip(1).Select(l => l.Split(',')[5]));
    }

    [Fact]
    public void Inputs_expand_globs_and_lists_and_nicknames_are_ilastiks_made_unique_in_order()
    {
        foreach (string name in new[] { "b.h5", "a.h5", "c.zarr" }) File.WriteAllText(_dir[name], "");
        string list = _dir["list.txt"];
        File.WriteAllText(list, $"# comment\n\n{_dir["c.zarr"]}/0\n");
        var inputs = RunBatch.Expand([_dir["*.h5"] + "/raw/data"], list);
        Assert.Equal([_dir["a.h5"] + "/raw/data", _dir["b.h5"] + "/raw/data", _dir["c.zarr"] + "/0"], inputs);

        Assert.Equal("cells", RunBatch.Nickname("/d/cells.h5/raw"));
        Assert.Equal("img.ome", RunBatch.Nickname("/d/img.ome.zarr/0"));    // ilastik strips the last extension only
        var named = RunBatch.Name(["/x/a.h5/raw", "/y/a.h5/raw", "/z/a_2.zarr", "/x/a.h5/other"]);
        Assert.Equal(["a", "a_2", "a_2_2", "a_3"], named.Select(n => n.Nickname));

        Assert.Throws<Contracts.Errors.UsageException>(() => RunBatch.Expand([_dir["*.tif.h5"] + "/raw"], null));
        // A TIFF glob is one volume (z-slices or time points), as every command reads it, not a batch.
        Assert.False(RunBatch.IsGlob(_dir["slices"] + "/*.tif"));
        Assert.Equal([_dir["slices"] + "/*.tif"], RunBatch.Expand([_dir["slices"] + "/*.tif"], null));
        Assert.True(RunBatch.IsGlob(_dir["*.h5"] + "/raw"));
        Assert.Throws<Contracts.Errors.UsageException>(() => RunBatch.Expand([_dir["a.h5"] + "/r*"], null));
        Assert.Throws<Contracts.Errors.UsageException>(() => RunBatch.Expand([], null));

        // A folder that is not itself a volume is a batch of the volumes in it, in ordinal order; a Zarr store, a folder
        // of TIFF slices are one volume each.
        string folder = _dir["folder"];
        Directory.CreateDirectory(Path.Combine(folder, "b.zarr"));
        File.WriteAllText(Path.Combine(folder, "b.zarr", ".zarray"), "{}");
        foreach (string name in new[] { "c.hdf5", "a.h5", "notes.txt" }) File.WriteAllText(Path.Combine(folder, name), "");
        Assert.True(RunBatch.IsFolderOfVolumes(folder));
        Assert.Equal([Path.Combine(folder, "a.h5"), Path.Combine(folder, "b.zarr"), Path.Combine(folder, "c.hdf5")], RunBatch.Expand([folder], null));
        Assert.False(RunBatch.IsFolderOfVolumes(Path.Combine(folder, "b.zarr")));
        string slices = _dir["slices-folder"];
        Directory.CreateDirectory(slices);
        File.WriteAllText(Path.Combine(slices, "z0.tif"), "");
        Assert.False(RunBatch.IsFolderOfVolumes(slices));          // a folder holding TIFF files is one volume (slices or time points)
        string empty = _dir["empty-folder"];
        Directory.CreateDirectory(empty);
        Assert.Contains("no volumes", Assert.Throws<Contracts.Errors.UsageException>(() => RunBatch.Expand([empty], null)).Message);
    }

    [Fact]
    public void A_batch_spec_travels_as_json_and_is_told_from_a_single_runs()
    {
        var batch = new BatchSpec("/out", [new BatchRun(new BatchInput("/d/a.h5/raw", "a"), new RunSpec("/d/a.h5/raw", "/out/a", Ilp: "/p.ilp", Split: "distance"))]);
        string json = batch.ToJson();
        Assert.True(BatchSpec.IsBatchJson(json));
        Assert.False(BatchSpec.IsBatchJson(batch.Runs[0].Spec.ToJson()));
        Assert.False(BatchSpec.IsBatchJson("not json"));
        var back = BatchSpec.FromJson(json, "job x");
        Assert.Equal(batch.OutDir, back.OutDir);
        Assert.Equal(batch.Runs, back.Runs);
        Assert.Contains("job x", Assert.Throws<Contracts.Errors.UsageException>(() => BatchSpec.FromJson("{\"outDir\": \"/o\", \"runs\": []}", "job x")).Message);
        Assert.Contains("job y", Assert.Throws<Contracts.Errors.UsageException>(() => BatchSpec.FromJson("{\"runs\": 3}", "job y")).Message);
    }

    /// <summary>
    /// The loop a cluster batch runs: inputs side by side (each of the first two waits until the other started), a failed
    /// one recorded with its message while the others finish, results and batch.csv in the inputs' order.
    /// </summary>
    [Fact]
    public async Task RunAsync_runs_inputs_side_by_side_records_a_failure_and_keeps_the_inputs_order()
    {
        var named = RunBatch.Name(["/d/a.h5/raw", "/d/b.h5/raw", "/d/c.h5/raw"]);
        var bothStarted = new CountdownEvent(2);
        var results = await RunBatch.RunAsync(_dir["side"], named.Select(n => (n, "/out/" + n.Nickname)).ToList(), RunBatch.RunColumns, atOnce: 2,
            async (input, _, ct) =>
            {
                if (input.Nickname is "a" or "b")
                {
                    bothStarted.Signal();
                    Assert.True(await Task.Run(() => bothStarted.Wait(TimeSpan.FromMinutes(2), ct)), "the inputs did not run side by side");
                }
                if (input.Nickname == "b") throw new InvalidOperationException("b is broken");
                return new BatchDone(input.Nickname == "a" ? 3 : 4, 10, AlreadyDone: input.Nickname == "c");
            },
            (input, e) => $"{input.Nickname}: {e.Message}", CancellationToken.None);
        Assert.Equal(["a", "b", "c"], results.Select(r => r.Input.Nickname));
        Assert.Equal(["done", "failed", "already done"], results.Select(r => r.Status));
        Assert.Equal("b: b is broken", results[1].Error);
        Assert.Equal([3L, null, 4L], results.Select(r => r.Objects));
        var csv = File.ReadAllLines(Path.Combine(_dir["side"], RunBatch.Csv));
        Assert.Equal(["/d/a.h5/raw", "/d/b.h5/raw", "/d/c.h5/raw"], csv.Skip(1).Select(l => l.Split(',')[0]));
    }

    [Fact]
    public async Task Submit_of_a_batch_none_of_whose_inputs_can_run_is_refused_with_the_error()
    {
        // Every input fails the same check (no such file): nothing to queue; the error is the single run's.
        await Cli.Expect(1, "missing-1.h5", "submit", _dir["missing-1.h5"] + "/data", _dir["missing-2.h5"] + "/data", "--out", _dir["x"], "--ilp", Ilp3D,
            "--seed", "127.0.0.1:1");
    }

    /// <summary>The same files, labels, objects.csv and manifest (its parameters; all of them for the same input) as the single run.</summary>
    private static void AssertSameRun(string single, string batch, bool sameInput)
    {
        Assert.Equal(Files(single), Files(batch));
        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(single, RunJob.Labels)), TestVolumes.ReadUInt32(Path.Combine(batch, RunJob.Labels)));
        Assert.Equal(File.ReadAllText(Path.Combine(single, RunJob.Objects)), File.ReadAllText(Path.Combine(batch, RunJob.Objects)));
        Assert.Equal(Parameters(single, sameInput), Parameters(batch, sameInput));
    }

    private static IEnumerable<string> Parameters(string dir, bool withInput) => Manifest(dir)["parameters"]!.AsObject()
        .Where(p => withInput || p.Key.Split('.')[0] != "input").Select(p => p.ToString());

    private static JsonNode Manifest(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunJob.Manifest)))!;

    private static List<string> Files(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal).ToList();
}
