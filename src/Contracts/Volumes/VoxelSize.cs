using System.Globalization;

namespace ChunkSeg.Contracts.Volumes;

/// <summary>
/// Physical size of one voxel along z, y and x (anisotropic light-sheet data has Z several times Y and X).
/// The unit is an OME-NGFF unit name, "micrometer" unless the data says otherwise.
/// </summary>
public sealed record VoxelSize(double Z, double Y, double X, string Unit = VoxelSize.Micrometer)
{
    public const string Micrometer = "micrometer";

    public static VoxelSize Isotropic => new(1, 1, 1);

    /// <summary>
    /// Micrometers per <paramref name="unit"/>, as OME-NGFF, OME-XML, ImageJ and N5 name units ("micrometer", "µm",
    /// "micron", "nm", "angstrom", "mm", "inch", …); null when absent or unknown (e.g. "pixel").
    /// </summary>
    public static double? MicrometersPer(string? unit)
    {
        if (unit is null) return null;
        string u = unit.Trim().Replace("\\u00B5", "µ", StringComparison.OrdinalIgnoreCase).Replace('μ', 'µ').ToLowerInvariant();
        return u switch
        {
            "micron" or "microns" or "µm" or "um" or "micrometer" or "micrometre" => 1,
            "nm" or "nanometer" or "nanometre" => 1e-3,
            "pm" or "picometer" or "picometre" => 1e-6,
            "å" or "angstrom" => 1e-4,
            "mm" or "millimeter" or "millimetre" => 1e3,
            "cm" or "centimeter" or "centimetre" => 1e4,
            "m" or "meter" or "metre" => 1e6,
            "inch" or "in" => 25400,
            _ => null,
        };
    }

    public double this[char axis] => axis switch
    {
        'z' => Z, 'y' => Y, 'x' => X,
        _ => throw new ArgumentOutOfRangeException(nameof(axis), axis, "voxel size exists for z, y, x only"),
    };

    /// <summary>Parses "z,y,x" (or "y,x" for 2D, z then defaults to 1) in micrometers.</summary>
    public static VoxelSize Parse(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !(values[i] > 0) || double.IsInfinity(values[i]))
                throw new ArgumentException($"voxel size \"{text}\": \"{parts[i]}\" is not a positive number; expected z,y,x in micrometers such as 2.0,0.4,0.4");
        }
        return values.Length switch
        {
            3 => new VoxelSize(values[0], values[1], values[2]),
            2 => new VoxelSize(1, values[0], values[1]),
            _ => throw new ArgumentException($"voxel size \"{text}\" has {values.Length} values; expected z,y,x (or y,x for 2D)"),
        };
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Z:G6} x {Y:G6} x {X:G6} {Unit} (z, y, x)");
}
