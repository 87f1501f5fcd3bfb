using System.Text.Json.Nodes;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// The OME-Zarr outputs of convert, label and run validate against the official OME-NGFF JSON schemas (0.4 for Zarr
/// v2, 0.5 for Zarr v3; image and strict_image, plus label and strict_label for label images), checked by ajv through
/// tools/reference/ngff_validate.mjs, which also checks every level listed is an array with one dimension per axis. An
/// image of one level has no "type"/"metadata" (strict_image asks for the pyramid's downscaling method; nothing
/// downscaled it): those two missing keys are the only errors let through, and only there.
/// </summary>
public sealed class NgffSchemaTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3D => SharedData.Require("ilastik/Data_3D.h5") + "/data";
    private static string Data2D => SharedData.Require("ilastik/Data_1channel.h5") + "/data";

    [Theory]
    [InlineData("zarr2", "0.4")]
    [InlineData("zarr3", "0.5")]
    public async Task Convert_with_a_pyramid_validates_at_every_level(string format, string version)
    {
        // 64³ in 16³ chunks: --levels auto makes 64³, 32³ and 16³.
        string store = _dir["pyramid.ome.zarr"];
        await Ok("convert", Data3D, store, "--levels", "auto", "--chunks", "16,16,16", "--format", format);
        AssertValid(store, version, "image", ["0", "1", "2"]);
        Assert.Equal("mean", Multiscale(store)["type"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("zarr2", "0.4")]
    [InlineData("zarr3", "0.5")]
    public async Task Convert_of_a_2D_image_validates_at_every_level(string format, string version)
    {
        // 128² in 64² chunks: two levels.
        string store = _dir["2d.ome.zarr"];
        await Ok("convert", Data2D, store, "--levels", "auto", "--chunks", "64,64", "--format", format);
        AssertValid(store, version, "image", ["0", "1"]);
    }

    [Theory]
    [InlineData("zarr2", "0.4")]
    [InlineData("zarr3", "0.5")]
    public async Task Convert_without_a_pyramid_validates_and_is_named_after_the_final_store(string format, string version)
    {
        // --levels auto on 64³ in the default 64×128×128 chunks: one level, written by ZarrVolume.Create alone.
        string store = _dir["flat.ome.zarr"];
        await Ok("convert", Data3D, store, "--levels", "auto", "--format", format);
        AssertValid(store, version, "image", ["0"]);
    }

    [Theory]
    [InlineData("zarr2", "0.4")]
    [InlineData("zarr3", "0.5")]
    public async Task Label_output_validates_as_a_label_image(string format, string version)
    {
        string store = _dir["cells.ome.zarr"];
        await Ok("label", Data3D, store, "--threshold", "otsu", "--format", format);
        AssertValid(store, version, "label", ["0"]);
    }

    [Theory]
    [InlineData("zarr2", "0.4", "1")]
    [InlineData("zarr3", "0.5", "1")]
    [InlineData("zarr3", "0.5", "auto")]
    public async Task Run_outputs_validate_labels_as_a_label_image_and_probabilities_as_an_image(string format, string version, string levels)
    {
        string outDir = _dir["run"];
        await Ok("run", Data3D, "--ilp", Ilp3D, "--out", outDir, "--export-probabilities", "--format", format, "--levels", levels, "--chunks", "16,16,16");
        string[] all = levels == "auto" ? ["0", "1", "2"] : ["0"];
        AssertValid(Path.Combine(outDir, "labels.ome.zarr"), version, "label", all);
        AssertValid(Path.Combine(outDir, "probabilities.ome.zarr"), version, "image", all);
    }

    [Theory]
    [InlineData("zarr2")]
    [InlineData("zarr3")]
    public async Task Broken_multiscales_are_rejected(string format)
    {
        string store = _dir["broken.ome.zarr"];
        await Ok("convert", Data3D, store, "--levels", "auto", "--chunks", "16,16,16", "--format", format);
        Assert.True(Validate(store).Ok, "the unbroken store validates");

        // No axes, and a level without coordinateTransformations: image.schema names both.
        var multiscale = Multiscale(store);
        multiscale.AsObject().Remove("axes");
        multiscale["datasets"]![1]!.AsObject().Remove("coordinateTransformations");
        WriteAttributes(store, multiscale.Root);
        var report = Validate(store);
        Assert.False(report.Ok);
        var image = report.Groups.Single()!["results"]!.AsArray().Single(r => r!["schema"]!.GetValue<string>().EndsWith("/image.schema", StringComparison.Ordinal))!;
        Assert.False(image["valid"]!.GetValue<bool>());
        var missing = image["errors"]!.AsArray().Where(e => e!["keyword"]!.GetValue<string>() == "required")
            .Select(e => (e!["instancePath"]!.GetValue<string>(), e["params"]!["missingProperty"]!.GetValue<string>())).ToList();
        string at = format == "zarr3" ? "/ome/multiscales/0" : "/multiscales/0";
        Assert.Contains((at, "axes"), missing);
        Assert.Contains((at + "/datasets/1", "coordinateTransformations"), missing);
    }

    /// <summary>
    /// The store's root group validates as <paramref name="kind"/> of <paramref name="version"/> with exactly
    /// <paramref name="levels"/>, and its multiscale is named after the store (not its staging directory).
    /// </summary>
    private static void AssertValid(string store, string version, string kind, string[] levels)
    {
        var report = Validate(store);
        var group = report.Groups.Single()!;
        Assert.Equal(version, group["version"]!.GetValue<string>());
        Assert.Equal(kind, group["kind"]!.GetValue<string>());
        Assert.Equal(levels, group["levels"]!.AsArray().Select(l => l!.GetValue<string>()));
        Assert.Equal(levels.Order(), Directory.GetDirectories(store).Select(Path.GetFileName).Where(d => !d!.StartsWith('.')).Order());
        string[] schemas = kind == "label" ? ["image", "strict_image", "label", "strict_label"] : ["image", "strict_image"];
        Assert.Equal([.. schemas.Select(s => $"{version}/{s}.schema"), "levels"], group["results"]!.AsArray().Select(r => r!["schema"]!.GetValue<string>()));
        foreach (var result in group["results"]!.AsArray())
        {
            var errors = result!["errors"]!.AsArray();
            bool exempt = levels.Length == 1 && result["schema"]!.GetValue<string>() == $"{version}/strict_image.schema" &&
                errors.All(e => e!["keyword"]!.GetValue<string>() == "required" &&
                    e["params"]!["missingProperty"]!.GetValue<string>() is "type" or "metadata");
            Assert.True(result["valid"]!.GetValue<bool>() || exempt, $"{store}: {result["schema"]} rejects it: {errors.ToJsonString()}");
        }
        Assert.Equal(Path.GetFileName(store), Multiscale(store)["name"]!.GetValue<string>());
    }

    private static (bool Ok, JsonArray Groups) Validate(string store)
    {
        var (code, stdout, stderr) = NodeReference.Exec("ngff_validate.mjs", store);
        Assert.True(code is 0 or 1, $"ngff_validate.mjs {store} exited {code}:\n{stderr}");
        var report = JsonNode.Parse(stdout)!;
        bool ok = report["ok"]!.GetValue<bool>();
        Assert.Equal(ok, code == 0);
        return (ok, report["groups"]!.AsArray());
    }

    /// <summary>multiscales[0] of the store's root attributes (0.4: .zattrs; 0.5: zarr.json attributes.ome), in its parsed document.</summary>
    private static JsonNode Multiscale(string store)
    {
        string v3 = Path.Combine(store, "zarr.json");
        var attrs = File.Exists(v3)
            ? JsonNode.Parse(File.ReadAllText(v3))!["attributes"]!["ome"]!
            : JsonNode.Parse(File.ReadAllText(Path.Combine(store, ".zattrs")))!;
        return attrs["multiscales"]![0]!;
    }

    private static void WriteAttributes(string store, JsonNode document)
    {
        string v3 = Path.Combine(store, "zarr.json");
        File.WriteAllText(File.Exists(v3) ? v3 : Path.Combine(store, ".zattrs"), document.ToJsonString());
    }

    private static async Task Ok(params string[] args)
    {
        var (code, output, err) = await Cli.Run(args);
        Assert.True(code == 0, $"chunkseg {string.Join(' ', args)} exited {code}:\n{err}\n{output}");
    }
}
