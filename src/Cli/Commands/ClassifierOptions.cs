using System.CommandLine;

namespace ChunkSeg.Cli.Commands;

/// <summary>The classifier options of `predict` and `run`: an ilastik project or a ChunkSeg model (loaded and checked against the input by <see cref="Pipelines.OptionValues.LoadClassifier"/>).</summary>
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

}
