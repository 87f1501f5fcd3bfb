using System.Text.Json;
using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Pipelines;

/// <summary>
/// A `chunkseg run` as plain data: every option of the command, named as the option is (without the dashes), with the
/// values as given (shapes and sigmas as "z,y,x" text, null for an option not given) and the paths absolute. It is
/// what a coordinator is handed and what travels to workers (<see cref="ToJson"/>, JSON with web defaults); nothing in
/// it is checked until <see cref="RunPipeline.Open"/> binds it against the input and the classifier.
/// </summary>
/// <param name="Input">The raw volume: x.zarr, x.zarr/0 or file.h5/dataset.</param>
/// <param name="OutDir">The output folder (a rerun of the same spec resumes it).</param>
/// <param name="Ilp">An ilastik Pixel Classification project; exactly one of it and <paramref name="Model"/>, unless <paramref name="VoronoiOtsu"/>.</param>
/// <param name="Model">A model written by chunkseg train.</param>
/// <param name="VigraStructureTensor">With <paramref name="Ilp"/>: VIGRA's structure-tensor scale order.</param>
/// <param name="Threshold">Foreground where <paramref name="Channel"/>'s probability is at least this (default 0.5); null with <paramref name="OtsuThreshold"/>.</param>
/// <param name="Channel">The class to threshold (default 1).</param>
/// <param name="Argmax">Foreground where <paramref name="Foreground"/> holds the largest probability, instead of a threshold.</param>
/// <param name="Foreground">With <paramref name="Argmax"/>: the foreground class (default 1).</param>
/// <param name="SmoothSigma">Gaussian pre-smoothing of the probabilities in voxels: "s" or "z,y,x".</param>
/// <param name="Connectivity">6 or 26 in 3D (default 6), 4 or 8 in 2D (default 4).</param>
/// <param name="MinSize">Objects smaller than this many voxels are dropped.</param>
/// <param name="MaxSize">Objects larger than this many voxels are dropped (no bound when null).</param>
/// <param name="ExcludeBorder">Objects touching the volume's border are dropped.</param>
/// <param name="Mesh">The mesh format: obj, ply or none.</param>
/// <param name="ExportProbabilities">Also write the probabilities.</param>
/// <param name="Chunk">Compute chunk core shape "z,y,x" (default: sized to a 1 GiB per-chunk budget).</param>
/// <param name="Chunks">Storage chunk shape "z,y,x" of the outputs (default: <paramref name="Chunk"/>, else 64³; 2D 256²).</param>
/// <param name="Axes">The input's axis order when its file does not say (or says wrongly), e.g. zyxc.</param>
/// <param name="Workers">Worker threads of the passes run on this machine (default: one per core).</param>
/// <param name="Backend">Where an embedded run computes: cpu, gpu or auto; not part of the run's identity (a worker
/// computes on its own device, a coordinator computes none of it).</param>
/// <param name="Overwrite">Replace the outputs of an earlier, different run in <paramref name="OutDir"/>.</param>
/// <param name="Split">Split the segmentation's touching objects: voronoi (seeds from <paramref name="SpotSigma"/>'s blur maxima) or
/// distance (the watershed of the foreground's distance map, seeds its maxima within <paramref name="MinDistance"/>).</param>
/// <param name="SpotSigma">With <paramref name="Split"/> voronoi or <paramref name="VoronoiOtsu"/>: the spot sigma in voxels, "s" or "z,y,x".</param>
/// <param name="MinDistance">With <paramref name="Split"/> distance: the seeds' window in voxels, "d" or "z,y,x".</param>
/// <param name="Dilate">Grow the final labels into the background by this Euclidean distance in voxels (expand_labels), as `label --dilate`.</param>
/// <param name="Erode">Shrink the final labels by this distance in voxels, as `label --erode`; not with <paramref name="Dilate"/>.</param>
/// <param name="OtsuThreshold"><c>--threshold otsu</c>: foreground above Otsu's threshold of <paramref name="Channel"/> over the whole
/// volume, as `label --threshold otsu` finds it; the run then classifies the whole volume first (as with <paramref name="Split"/>).</param>
/// <param name="VoronoiOtsu">"SPOT,OUTLINE": no classifier; the raw image (one channel) is labelled as clEsperanto's
/// voronoi_otsu_labeling(spot_sigma, outline_sigma) labels it, as `label --voronoi-otsu` does.</param>
/// <param name="Format">The OME-Zarr outputs' Zarr version: zarr2 (OME-NGFF 0.4) or zarr3 (OME-NGFF 0.5, sharded); null: the default.</param>
/// <param name="Shard">With zarr3: the shard shape "z,y,x" (default: one shard per compute chunk).</param>
/// <param name="Levels">Multiscale pyramid levels of the OME-Zarr outputs, level 0 included: "N" or "auto"; null: one level.</param>
/// <param name="OutlineSigma">With <paramref name="VoronoiOtsu"/>: the outline sigma per axis, "s" or "z,y,x" (<paramref name="SpotSigma"/> the spot's).</param>
public sealed record RunSpec(
    string Input,
    string OutDir,
    string? Ilp = null,
    string? Model = null,
    bool VigraStructureTensor = false,
    float? Threshold = null,
    int? Channel = null,
    bool Argmax = false,
    int? Foreground = null,
    string? SmoothSigma = null,
    int? Connectivity = null,
    long MinSize = 0,
    long? MaxSize = null,
    bool ExcludeBorder = false,
    string Mesh = "obj",
    bool ExportProbabilities = false,
    string? Chunk = null,
    string? Chunks = null,
    string? Axes = null,
    int? Workers = null,
    string Backend = "auto",
    bool Overwrite = false,
    string? Split = null,
    string? SpotSigma = null,
    string? MinDistance = null,
    string? Dilate = null,
    string? Erode = null,
    bool OtsuThreshold = false,
    string? VoronoiOtsu = null,
    string? OutlineSigma = null,
    string? Format = null,
    string? Shard = null,
    string? Levels = null)
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        // Input and OutDir must be there, and not null; every other field may be left out (its default).
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    /// <summary>The spec as JSON (camelCase), as a job carries it to workers.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>A spec from <see cref="ToJson"/>'s JSON; one that is not a spec is a usage error naming <paramref name="what"/>.</summary>
    public static RunSpec FromJson(string json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<RunSpec>(json, JsonOptions) ?? throw new UsageException($"{what}: empty run spec");
        }
        catch (JsonException e)
        {
            throw new UsageException($"{what}: not a run spec ({e.Message})", e);
        }
    }
}
