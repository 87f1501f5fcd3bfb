using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Hdf5.Native;

namespace ChunkSeg.Storage.Hdf5;

/// <summary>
/// The attributes ilastik, vigra and Fiji put on image datasets, read and written through <see cref="H5"/>.
/// Callers hold <see cref="H5.Gate"/>.
/// <list type="bullet">
/// <item><c>axistags</c>: vigra's <c>AxisTags.toJSON()</c>, a scalar string (ilastik stores it variable-length UTF-8):
/// <c>{"axes": [{"key": "z", "typeFlags": 2, "resolution": 0, "description": ""}, ...]}</c>, slowest axis first.
/// typeFlags are vigra's <c>AxisInfo::AxisType</c> bits: Channels = 1, Space = 2, Angle = 4, Time = 8.</item>
/// <item><c>element_size_um</c>: voxel size in micrometers for the spatial axes, z, y, x (or y, x).</item>
/// </list>
/// </summary>
internal static unsafe class Hdf5Attributes
{
    public const string AxisTags = "axistags";
    public const string ElementSize = "element_size_um";

    /// <summary>One axis of an <c>axistags</c> attribute.</summary>
    public readonly record struct AxisTag(string Key, int TypeFlags, double Resolution);

    /// <summary>The scalar (or first) string of attribute <paramref name="name"/>; null when absent or not a string.</summary>
    public static string? ReadString(long obj, string name)
    {
        if (H5.H5Aexists(obj, name) <= 0) return null;
        long attr = H5.Check(H5.H5Aopen(obj, name, H5.Default), $"H5Aopen({name})");
        long type = -1, space = -1, mem = -1;
        try
        {
            type = H5.Check(H5.H5Aget_type(attr), "H5Aget_type");
            if (H5.H5Tget_class(type) != H5.ClassString) return null;
            space = H5.Check(H5.H5Aget_space(attr), "H5Aget_space");
            long count = H5.H5Sget_simple_extent_npoints(space);
            if (count < 1) return null;
            if (H5.H5Tis_variable_str(type) > 0)
            {
                mem = H5.Check(H5.H5Tcopy(H5.CS1), "H5Tcopy");
                H5.Check(H5.H5Tset_size(mem, H5.Variable), "H5Tset_size");
                H5.Check(H5.H5Tset_cset(mem, H5.H5Tget_cset(type)), "H5Tset_cset");
                var pointers = new IntPtr[count];
                fixed (IntPtr* p = pointers)
                {
                    H5.Check(H5.H5Aread(attr, mem, p), $"H5Aread({name})");
                    string? text = Marshal.PtrToStringUTF8(pointers[0]);
                    H5.H5Dvlen_reclaim(mem, space, H5.Default, p);
                    return text;
                }
            }
            // Fixed length: read with the file's own type (no conversion, so NULLPAD strings keep their last byte).
            mem = H5.Check(H5.H5Tcopy(type), "H5Tcopy");
            int size = checked((int)H5.H5Tget_size(type));
            var bytes = new byte[checked(size * (int)count)];
            fixed (byte* p = bytes)
                H5.Check(H5.H5Aread(attr, mem, p), $"H5Aread({name})");
            int end = Array.IndexOf(bytes, (byte)0, 0, size);
            return Encoding.UTF8.GetString(bytes, 0, end < 0 ? size : end);
        }
        finally
        {
            if (mem >= 0) H5.H5Tclose(mem);
            if (space >= 0) H5.H5Sclose(space);
            if (type >= 0) H5.H5Tclose(type);
            H5.H5Aclose(attr);
        }
    }

    /// <summary>A numeric attribute as doubles (HDF5 converts); null when absent or not numeric.</summary>
    public static double[]? ReadDoubles(long obj, string name)
    {
        if (H5.H5Aexists(obj, name) <= 0) return null;
        long attr = H5.Check(H5.H5Aopen(obj, name, H5.Default), $"H5Aopen({name})");
        long type = -1, space = -1;
        try
        {
            type = H5.Check(H5.H5Aget_type(attr), "H5Aget_type");
            int cls = H5.H5Tget_class(type);
            if (cls != H5.ClassFloat && cls != H5.ClassInteger) return null;
            space = H5.Check(H5.H5Aget_space(attr), "H5Aget_space");
            long count = H5.H5Sget_simple_extent_npoints(space);
            if (count < 1 || count > 16) return null;
            var values = new double[count];
            fixed (double* p = values)
                H5.Check(H5.H5Aread(attr, H5.NativeDouble, p), $"H5Aread({name})");
            return values;
        }
        finally
        {
            if (space >= 0) H5.H5Sclose(space);
            if (type >= 0) H5.H5Tclose(type);
            H5.H5Aclose(attr);
        }
    }

    /// <summary>Writes a scalar variable-length UTF-8 string attribute, as h5py and ilastik do.</summary>
    public static void WriteString(long obj, string name, string value)
    {
        long type = -1, space = -1, attr = -1;
        var utf8 = Encoding.UTF8.GetBytes(value + "\0");
        try
        {
            type = H5.Check(H5.H5Tcopy(H5.CS1), "H5Tcopy");
            H5.Check(H5.H5Tset_size(type, H5.Variable), "H5Tset_size");
            H5.Check(H5.H5Tset_cset(type, H5.CsetUtf8), "H5Tset_cset");
            space = H5.Check(H5.H5Screate(H5.ScalarSpace), "H5Screate");
            attr = H5.Check(H5.H5Acreate2(obj, name, type, space, H5.Default, H5.Default), $"H5Acreate2({name})");
            fixed (byte* p = utf8)
            {
                IntPtr pointer = (IntPtr)p;
                H5.Check(H5.H5Awrite(attr, type, &pointer), $"H5Awrite({name})");
            }
        }
        finally
        {
            if (attr >= 0) H5.H5Aclose(attr);
            if (space >= 0) H5.H5Sclose(space);
            if (type >= 0) H5.H5Tclose(type);
        }
    }

    /// <summary>Writes a 1-D float64 (little-endian) attribute.</summary>
    public static void WriteDoubles(long obj, string name, double[] values)
    {
        long space = -1, attr = -1;
        try
        {
            ulong n = (ulong)values.Length;
            space = H5.Check(H5.H5Screate_simple(1, &n, null), "H5Screate_simple");
            attr = H5.Check(H5.H5Acreate2(obj, name, H5.IeeeF64Le, space, H5.Default, H5.Default), $"H5Acreate2({name})");
            fixed (double* p = values)
                H5.Check(H5.H5Awrite(attr, H5.NativeDouble, p), $"H5Awrite({name})");
        }
        finally
        {
            if (attr >= 0) H5.H5Aclose(attr);
            if (space >= 0) H5.H5Sclose(space);
        }
    }

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
