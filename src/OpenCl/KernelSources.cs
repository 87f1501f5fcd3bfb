using System.Reflection;

namespace ChunkSeg.OpenCl;

/// <summary>
/// The OpenCL C sources in <c>src/OpenCl/Kernels/</c>, embedded in this assembly, and the build options every
/// ChunkSeg program uses.
/// </summary>
public static class KernelSources
{
    /// <summary>
    /// OpenCL C 1.2 (NVIDIA, PoCL and every other 3.0 driver accept it) with strict IEEE float semantics: no
    /// <c>-cl-fast-relaxed-math</c>, <c>-cl-mad-enable</c> or <c>-cl-denorms-are-zero</c>, which would change results
    /// bit for bit against the CPU backend. Sources also say <c>#pragma OPENCL FP_CONTRACT OFF</c>.
    /// </summary>
    public const string StrictOptions = "-cl-std=CL1.2";

    /// <summary>The text of <paramref name="fileName"/> (e.g. "separable_convolution.cl").</summary>
    public static string Load(string fileName)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        var assembly = typeof(KernelSources).Assembly;
        using Stream? stream = assembly.GetManifestResourceStream($"ChunkSeg.OpenCl.Kernels.{fileName}");
        if (stream is null)
            throw new ArgumentException(
                $"no embedded kernel source \"{fileName}\"; embedded are {string.Join(", ", Names(assembly))}", nameof(fileName));
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static IEnumerable<string> Names(Assembly assembly) =>
        assembly.GetManifestResourceNames().Where(n => n.StartsWith("ChunkSeg.OpenCl.Kernels.", StringComparison.Ordinal))
            .Select(n => n["ChunkSeg.OpenCl.Kernels.".Length..]);
}
