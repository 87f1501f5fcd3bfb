// Downsampling one pyramid level from the one before it, block by block: every output voxel is a function of the
// fz × fy × fx block of input voxels it covers and of nothing else (no filter, no halo), images by the block's mean
// (MeanDownsample.cs) and labels by its mode (ModeDownsample.cs).
//
//      input x ─────────────────────────────▶             output x ──────────▶
//      ┌───┬───┬───┬───┬───┬───┬───┐                       ┌───┬───┬───┬───┐
//      │ a   b │ c   d │ e   f │ g │   factor 2 on x:      │ab │cd │ef │ g │   the last block on an axis is ragged
//      └───┴───┴───┴───┴───┴───┴───┘   output = ⌈7 / 2⌉    └───┴───┴───┴───┘   when the extent is odd: it holds the
//                                                                              voxels present (here g alone)
//
// Chunk invariance. Output voxel o reads input voxels [o·f, min((o + 1)·f, extent)) on each axis. A box of output
// voxels [s, e) therefore needs exactly the input box [s·f, min(e·f, extent)) (InputBox), and given that box the
// kernel computes the same blocks, in the same order, with the same arithmetic as on the whole volume: ragged blocks
// occur only where the input box ends at the volume's end, where the whole volume's are ragged too. Any tiling of
// the output level, run on any worker, thus reproduces the whole-volume level bit for bit; the condition is that the
// input box starts at a multiple of the factor, which InputBox guarantees. A box cut short inside the volume (an
// input chunk whose extent is not a multiple of the factor) would make ragged blocks of its own: don't.
//
// The factor may be 1 to MaxFactor on each axis (the plan uses 1 and 2); 1 copies that axis.
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Pyramids;

/// <summary>
/// Block downsampling of (z, y, x, x fastest) volumes: <c>Mean</c> for images (rounded half to even for integers),
/// <c>Mode</c> for labels (ties to the smallest value). Output shape is the input shape over the factor, rounded up.
/// </summary>
public static partial class Downsample
{
    /// <summary>The largest factor on one axis (the block of 16³ voxels keeps every accumulator exact).</summary>
    public const int MaxFactor = 16;

    /// <summary>⌈shape / factor⌉ per axis.</summary>
    public static Long3 OutputShape(Long3 inputShape, Long3 factor)
    {
        ValidateFactor(factor);
        if (inputShape.Z < 0 || inputShape.Y < 0 || inputShape.X < 0)
            throw new ArgumentException($"input shape {inputShape} must not be negative", nameof(inputShape));
        return new Long3(CeilDiv(inputShape.Z, factor.Z), CeilDiv(inputShape.Y, factor.Y), CeilDiv(inputShape.X, factor.X));
    }

    /// <summary>
    /// The input box (of a level of <paramref name="inputShape"/>) that <paramref name="outputBox"/> of the next level
    /// is computed from: [start × factor, min(end × factor, inputShape)). Downsampling exactly that box gives the
    /// whole-volume result on <paramref name="outputBox"/>.
    /// </summary>
    public static Box3 InputBox(Box3 outputBox, Long3 factor, Long3 inputShape)
    {
        var outputShape = OutputShape(inputShape, factor);
        if (outputBox.Size.Z < 0 || outputBox.Size.Y < 0 || outputBox.Size.X < 0 || !new Box3(Long3.Zero, outputShape).Contains(outputBox))
            throw new ArgumentException($"output box {outputBox} is not inside the downsampled volume [0, {outputShape}) of a {inputShape} input at factor {factor}", nameof(outputBox));
        var start = new Long3(outputBox.Start.Z * factor.Z, outputBox.Start.Y * factor.Y, outputBox.Start.X * factor.X);
        var end = Long3.Min(new Long3(outputBox.End.Z * factor.Z, outputBox.End.Y * factor.Y, outputBox.End.X * factor.X), inputShape);
        return Box3.FromBounds(start, end);
    }

    private static void ValidateFactor(Long3 factor)
    {
        if (factor.Z is < 1 or > MaxFactor || factor.Y is < 1 or > MaxFactor || factor.X is < 1 or > MaxFactor)
            throw new ArgumentException($"downsampling factor {factor} must be 1..{MaxFactor} on every axis (a pyramid level uses 1 or 2)", nameof(factor));
    }

    /// <summary>Checks the spans against the shapes before any work; returns the output shape.</summary>
    private static Long3 Validate(int sourceLength, Long3 shape, Long3 factor, int destinationLength)
    {
        var output = OutputShape(shape, factor);
        if (shape.Volume != sourceLength)
            throw new ArgumentException($"the source holds {sourceLength} voxels; shape {shape} needs {shape.Volume}", "source");
        if (destinationLength < output.Volume)
            throw new ArgumentException($"the destination holds {destinationLength} voxels; downsampling {shape} by {factor} gives {output} = {output.Volume}", "destination");
        return output;
    }

    private static long CeilDiv(long a, long b) => (a + b - 1) / b;
}
