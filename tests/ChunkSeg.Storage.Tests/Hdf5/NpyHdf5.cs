using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Tests.Hdf5;

/// <summary>A little-endian, C-ordered NumPy array as .npy holds it: the exchange format with the h5py scripts.</summary>
internal sealed record NpyArray(DataType DataType, long[] Shape, byte[] Data);

/// <summary>Minimal .npy (format 1.0/2.0) reader and writer for the tests; little-endian C-order only.</summary>
internal static partial class Npy
{
    private static readonly Dictionary<string, DataType> Descrs = new()
    {
        ["|u1"] = DataType.UInt8, ["<u2"] = DataType.UInt16, ["<u4"] = DataType.UInt32, ["<u8"] = DataType.UInt64,
        ["|i1"] = DataType.Int8, ["<i2"] = DataType.Int16, ["<i4"] = DataType.Int32, ["<i8"] = DataType.Int64,
        ["<f4"] = DataType.Float32, ["<f8"] = DataType.Float64,
    };

    public static string Descr(DataType type) => Descrs.First(kv => kv.Value == type).Key;

    public static NpyArray Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path} is not a .npy file");
        int major = bytes[6];
        int headerLength = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int headerStart = major == 1 ? 10 : 12;
        string header = Encoding.ASCII.GetString(bytes, headerStart, headerLength);
        string descr = DescrPattern().Match(header).Groups[1].Value;
        if (header.Contains("'fortran_order': True", StringComparison.Ordinal))
            throw new InvalidDataException($"{path}: Fortran order is not supported");
        var shape = ShapePattern().Match(header).Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        if (!Descrs.TryGetValue(descr, out var type))
            throw new InvalidDataException($"{path}: unsupported descr {descr}");
        return new NpyArray(type, shape, bytes[(headerStart + headerLength)..]);
    }

    public static void Write(string path, NpyArray array)
    {
        string shape = array.Shape.Length == 1 ? $"({array.Shape[0]},)" : $"({string.Join(", ", array.Shape)})";
        string header = $"{{'descr': '{Descr(array.DataType)}', 'fortran_order': False, 'shape': {shape}, }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, .. "NUMPY"u8, 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        stream.Write(array.Data);
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
