using System.Globalization;
using System.Text;
using System.Text.Json;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// The attributes ilastik, vigra and Fiji put on image datasets: their names, and vigra's axistags JSON parsed and
/// written (the attributes themselves go through PureHDF in <see cref="Hdf5Volume"/> and <see cref="Hdf5Writer"/>).
/// <list type="bullet">
/// <item><c>axistags</c>: vigra's <c>AxisTags.toJSON()</c>, a scalar string (ilastik stores it variable-length UTF-8):
/// <c>{"axes": [{"key": "z", "typeFlags": 2, "resolution": 0, "description": ""}, ...]}</c>, slowest axis first.
/// typeFlags are vigra's <c>AxisInfo::AxisType</c> bits: Channels = 1, Space = 2, Angle = 4, Time = 8.</item>
/// <item><c>element_size_um</c>: voxel size in micrometers for the spatial axes, z, y, x (or y, x).</item>
/// </list>
/// </summary>
internal static class Hdf5Attributes
{
    public const string AxisTags = "axistags";
    public const string ElementSize = "element_size_um";

    /// <summary>One axis of an <c>axistags</c> attribute.</summary>
    public readonly record struct AxisTag(string Key, int TypeFlags, double Resolution);

    /// <summary>Parses vigra's axistags JSON; throws <see cref="FormatException"/> describing what is wrong.</summary>
    public static AxisTag[] ParseAxisTags(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (!doc.RootElement.TryGetProperty("axes", out var axes) || axes.ValueKind != JsonValueKind.Array)
                throw new FormatException("axistags has no \"axes\" array");
            var tags = new List<AxisTag>();
            foreach (var axis in axes.EnumerateArray())
            {
                string key = axis.TryGetProperty("key", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString()! : "?";
                int flags = axis.TryGetProperty("typeFlags", out var f) && f.TryGetInt32(out int fi) ? fi : 0;
                double resolution = axis.TryGetProperty("resolution", out var r) && r.TryGetDouble(out double rd) ? rd : 0;
                tags.Add(new AxisTag(key, flags, resolution));
            }
            return tags.ToArray();
        }
        catch (JsonException e)
        {
            throw new FormatException($"axistags is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>vigra's typeFlags for an axis letter.</summary>
    public static int TypeFlags(char axis) => axis switch
    {
        'c' => 1,   // Channels
        't' => 8,   // Time
        _ => 2,     // Space
    };

    /// <summary>
    /// The JSON laid out as vigra's <c>AxisTags::toJSON()</c> does (two-space indents; resolution in the shortest
    /// round-trip form where vigra prints 17 digits, the same double), with resolution set to the voxel size on
    /// z, y, x and 0 on c and t.
    /// </summary>
    public static string FormatAxisTags(AxisOrder axes, VoxelSize voxelSize)
    {
        var s = new StringBuilder("{\n  \"axes\": [");
        for (int i = 0; i < axes.Rank; i++)
        {
            char key = axes[i];
            double resolution = AxisOrder.KindOf(key) == AxisKind.Space ? voxelSize[key] : 0;
            if (i > 0) s.Append(',');
            s.Append("\n    {\n");
            s.Append(CultureInfo.InvariantCulture, $"      \"key\": \"{key}\",\n");
            s.Append(CultureInfo.InvariantCulture, $"      \"typeFlags\": {TypeFlags(key)},\n");
            s.Append(CultureInfo.InvariantCulture, $"      \"resolution\": {resolution.ToString("R", CultureInfo.InvariantCulture)},\n");
            s.Append("      \"description\": \"\"\n");
            s.Append("    }");
        }
        s.Append("\n  ]\n}");
        return s.ToString();
    }
}
