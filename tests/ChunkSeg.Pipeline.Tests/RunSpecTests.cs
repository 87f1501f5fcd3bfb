using System.Text.Json;
using System.Text.Json.Nodes;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Pipelines;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>A run as data: the RunSpec survives JSON (what a job carries to workers), and the CLI's arguments make one.</summary>
public sealed class RunSpecTests
{
    private static readonly RunSpec Full = new("/data/raw.h5/data", "/data/runs/r1", Ilp: "/data/p.ilp", Model: null, VigraStructureTensor: true,
        Threshold: 0.7f, Channel: 0, Argmax: false, Foreground: null, SmoothSigma: "1.0,2,2", Connectivity: 26, MinSize: 20, MaxSize: 5000,
        ExcludeBorder: true, Mesh: "ply", ExportProbabilities: true, Chunk: "16,24,32", Chunks: "64", Axes: "zyxc", Workers: 3, Backend: "cpu",
        Overwrite: true, Erode: "1.5");

    [Fact]
    public void Round_trips_through_System_Text_Json_with_web_defaults()
    {
        Assert.Equal(Full, RunSpec.FromJson(Full.ToJson(), "test"));
        var web = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        Assert.Equal(Full, JsonSerializer.Deserialize<RunSpec>(JsonSerializer.Serialize(Full, web), web));

        var json = JsonNode.Parse(Full.ToJson())!.AsObject();
        Assert.Equal("/data/runs/r1", json["outDir"]!.GetValue<string>());
        Assert.True(json["exportProbabilities"]!.GetValue<bool>());
        Assert.Equal(5000, json["maxSize"]!.GetValue<long>());
    }

    [Fact]
    public void Fields_left_out_take_their_defaults_but_input_and_out_dir_are_required()
    {
        var spec = RunSpec.FromJson("""{"input": "/d/raw.zarr", "outDir": "/d/out", "model": "/d/m.csforest"}""", "test");
        Assert.Equal(new RunSpec("/d/raw.zarr", "/d/out", Model: "/d/m.csforest"), spec);
        Assert.Equal("obj", spec.Mesh);
        Assert.Null(spec.Workers);

        Assert.Contains("job j1: not a run spec", Assert.Throws<UsageException>(() => RunSpec.FromJson("""{"input": "/d/raw.zarr"}""", "job j1")).Message);
        Assert.Contains("not a run spec", Assert.Throws<UsageException>(() => RunSpec.FromJson("""{"input": null, "outDir": "/d"}""", "job j1")).Message);
        Assert.Contains("not a run spec", Assert.Throws<UsageException>(() => RunSpec.FromJson("[]", "job j1")).Message);
    }

    [Fact]
    public void The_run_arguments_make_a_spec_with_absolute_paths()
    {
        var spec = RunArguments.SpecOf(["raw.h5/data", "--out", "runs/r1", "--model", "m.csforest", "--argmax", "--foreground", "2", "--min-size", "5",
            "--mesh", "none", "--chunk", "32", "--overwrite", "--dilate", "2.5"]);
        Assert.Equal(new RunSpec(Path.GetFullPath("raw.h5") + "/data", Path.GetFullPath("runs/r1"), Model: Path.GetFullPath("m.csforest"), Argmax: true,
            Foreground: 2, MinSize: 5, Mesh: "none", Chunk: "32", Overwrite: true, Dilate: "2.5"), spec);
        Assert.Equal(spec, RunSpec.FromJson(spec.ToJson(), "test"));
        Assert.Equal(4, RunArguments.SpecOf(["/d/raw.zarr", "--out", "/d/out", "--ilp", "/d/p.ilp", "--workers", "4"]).Workers);
    }
}
