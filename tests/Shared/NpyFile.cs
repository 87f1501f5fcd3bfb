using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Tests.Shared;

/// <summary>An array read from a .npy file; <see cref="Data"/> is C-ordered and little-endian.</summary>
internal sealed record NpyArray(DataType DataType, long[] Shape, byte[] Data);

/// <summary>
/// The NumPy .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html), just
/// enough to exchange expected arrays with the Python reference scripts: versions 1 to 3, C order.
/// </summary>
internal static partial class NpyFile
{
    public static NpyArray Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path} is not a .npy file");
        int major = bytes[6];
        (int headerLength, int offset) = major == 1 ? (BitConverter.ToUInt16(bytes, 8), 10) : ((int)BitConverter.ToUInt32(bytes, 8), 12);
        string header = Encoding.Latin1.GetString(bytes, offset, headerLength);
        string descr = DescrPattern().Match(header).Groups[1].Value;
        if (FortranPattern().Match(header).Groups[1].Value != "False")
            throw new InvalidDataException($"{path}: Fortran-ordered arrays are not supported");
        long[] shape = ShapePattern().Match(header).Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var type = TypeOf(descr);
        byte[] data = bytes[(offset + headerLength)..];
        long expected = shape.Aggregate(1L, (a, b) => a * b) * type.SizeInBytes();
        if (data.Length != expected)
            throw new InvalidDataException($"{path}: {data.Length} data bytes, expected {expected}");
        if (descr[0] == '>') SwapBytes(data, type.SizeInBytes());
        return new NpyArray(type, shape, data);
    }

    public static void Write(string path, DataType type, long[] shape, ReadOnlySpan<byte> data)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string header = $"{{'descr': '{Descr(type)}', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        using var f = File.Create(path);
        f.Write([0x93, .. "NUMPY"u8, 1, 0]);
        f.Write(BitConverter.GetBytes((ushort)header.Length));
        f.Write(Encoding.Latin1.GetBytes(header));
        f.Write(data);
    }

    public static string Descr(DataType type) => type switch
    {
        DataType.UInt8 => "|u1", DataType.Int8 => "|i1",
        DataType.UInt16 => "<u2", DataType.Int16 => "<i2",
        DataType.UInt32 => "<u4", DataType.Int32 => "<i4",
        DataType.UInt64 => "<u8", DataType.Int64 => "<i8",
        DataType.Float32 => "<f4", DataType.Float64 => "<f8",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static DataType TypeOf(string descr) => descr[1..] switch
    {
        "u1" => DataType.UInt8, "i1" => DataType.Int8,
        "u2" => DataType.UInt16, "i2" => DataType.Int16,
        "u4" => DataType.UInt32, "i4" => DataType.Int32,
        "u8" => DataType.UInt64, "i8" => DataType.Int64,
        "f4" => DataType.Float32, "f8" => DataType.Float64,
        _ => throw new InvalidDataException($"unsupported .npy dtype {descr}"),
    };

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order':\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();

    /// <summary>Big-endian .npy files (NumPy writes them for '>' dtypes) are turned little-endian on read.</summary>
    private static void SwapBytes(Span<byte> data, int elementSize)
    {
        for (int i = 0; i + elementSize <= data.Length; i += elementSize)
            data.Slice(i, elementSize).Reverse();
    }
}

internal static class TestArrays
{
    /// <summary>Null when equal (every NaN equals every NaN, otherwise bit for bit), else where the first difference is.</summary>
    public static string? Difference(DataType type, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, long[] shape)
    {
        int size = type.SizeInBytes();
        if (expected.Length != actual.Length) return $"{actual.Length} bytes, expected {expected.Length}";
        for (int i = 0; i < expected.Length; i += size)
        {
            var e = expected.Slice(i, size);
            var a = actual.Slice(i, size);
            if (e.SequenceEqual(a)) continue;
            if (type == DataType.Float32 && float.IsNaN(BitConverter.ToSingle(e)) && float.IsNaN(BitConverter.ToSingle(a))) continue;
            if (type == DataType.Float64 && double.IsNaN(BitConverter.ToDouble(e)) && double.IsNaN(BitConverter.ToDouble(a))) continue;
            long linear = i / size;
            var index = new long[shape.Length];
            for (int d = shape.Length - 1; d >= 0; d--) { index[d] = linear % shape[d]; linear /= shape[d]; }
            return $"element [{string.Join(", ", index)}] is {Format(type, a)}, expected {Format(type, e)}";
        }
        return null;
    }

    public static void AssertEqual(DataType type, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, long[] shape, string context)
    {
        if (Difference(type, expected, actual, shape) is { } d) Assert.Fail($"{context}: {d}");
    }

    private static string Format(DataType type, ReadOnlySpan<byte> b) => type switch
    {
        DataType.UInt8 => b[0].ToString(CultureInfo.InvariantCulture),
        DataType.Int8 => ((sbyte)b[0]).ToString(CultureInfo.InvariantCulture),
        DataType.UInt16 => BitConverter.ToUInt16(b).ToString(CultureInfo.InvariantCulture),
        DataType.Int16 => BitConverter.ToInt16(b).ToString(CultureInfo.InvariantCulture),
        DataType.UInt32 => BitConverter.ToUInt32(b).ToString(CultureInfo.InvariantCulture),
        DataType.Int32 => BitConverter.ToInt32(b).ToString(CultureInfo.InvariantCulture),
        DataType.UInt64 => BitConverter.ToUInt64(b).ToString(CultureInfo.InvariantCulture),
        DataType.Int64 => BitConverter.ToInt64(b).ToString(CultureInfo.InvariantCulture),
        DataType.Float32 => BitConverter.ToSingle(b).ToString("R", CultureInfo.InvariantCulture),
        _ => BitConverter.ToDouble(b).ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>Deterministic values spread over the type's range (finite floats, some negative).</summary>
    public static byte[] Random(DataType type, long count, int seed)
    {
        var rng = new Random(seed);
        int size = type.SizeInBytes();
        var data = new byte[count * size];
        if (!type.IsFloat())
        {
            rng.NextBytes(data);
            return data;
        }
        for (long i = 0; i < count; i++)
        {
            double v = (rng.NextDouble() - 0.5) * 2000;
            if (type == DataType.Float32) BitConverter.TryWriteBytes(data.AsSpan((int)(i * 4)), (float)v);
            else BitConverter.TryWriteBytes(data.AsSpan((int)(i * 8)), v);
        }
        return data;
    }
}
