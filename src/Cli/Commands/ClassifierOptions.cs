using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;

namespace ChunkSeg.Cli.Commands;

/// <summary>The classifier options of `predict` and `run`: an ilastik project or a ChunkSeg model, checked against the input.</summary>
internal static class ClassifierOptions
{
    public static (Option<string?> Ilp, Option<string?> Model, Option<bool> VigraStructureTensor) Create() =>
    (
        new Option<string?>("--ilp") { Description = "An ilastik Pixel Classification project with a trained classifier" },
        new Option<string?>("--model") { Description = "A model written by chunkseg train" },
        new Option<bool>("--vigra-structure-tensor")
        {
            Description = "For projects saved by an ilastik without fastfilters (developer builds): structure tensor with VIGRA's scale order",
        }
    );

    /// <summary>
    /// Loads the classifier and fits its features to <paramref name="input"/>. The parameters name it as a job records
    /// it (ilp or model path, inputChannels, structureTensor) so <see cref="StageCatalog"/> can load it again.
    /// </summary>
    public static (LoadedClassifier Classifier, Dictionary<string, string> Parameters) Load(string? ilpPath, string? modelPath, bool vigraStructureTensor, VolumeInfo input)
    {
        if ((ilpPath is null) == (modelPath is null))
            throw new UsageException("give exactly one of --ilp PROJECT.ilp or --model MODEL");
        if (modelPath is not null && vigraStructureTensor)
            throw new UsageException("--vigra-structure-tensor applies to ilastik projects (--ilp); a ChunkSeg model records its own");
        int inputChannels = checked((int)input.Channels);
        var parameters = new Dictionary<string, string> { ["inputChannels"] = inputChannels.ToString(CultureInfo.InvariantCulture) };
        if (ilpPath is not null)
        {
            parameters["ilp"] = Path.GetFullPath(ilpPath);
            if (vigraStructureTensor) parameters["structureTensor"] = "vigra";
        }
        else
        {
            parameters["model"] = Path.GetFullPath(modelPath!);
        }
        var loaded = StageCatalog.ClassifierOf(parameters);
        if (loaded.InputChannels is { } trained && trained != inputChannels)
            throw new UsageException($"{modelPath}: the model was trained on {trained}-channel data; {input.Location} has {inputChannels} channel(s)");
        Options.FitToVolume(loaded.Features, input, anisotropic: false);
        return (loaded, parameters);
    }
}
