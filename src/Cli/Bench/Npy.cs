using System.Runtime.InteropServices;
using System.Text;

namespace ChunkSeg.Cli.Bench;

/// <summary>Writes .npy files (version 1.0, C order, little-endian) for the reference scripts to load, and reads back their uint32 labels and uint64 keys.</summary>
internal static class Npy
{
    public static void Write(string path, ReadOnlySpan<float> data, params long[] shape) => Write(path, "<f4", MemoryMarshal.AsBytes(data), shape);

    public static void Write(string path, ReadOnlySpan<int> data, params long[] shape) => Write(path, "<i4", MemoryMarshal.AsBytes(data), shape);

    public static void Write(string path, ReadOnlySpan<byte> data, params long[] shape) => Write(path, "|u1", data, shape);

    /// <summary>The <paramref name="count"/> values of a C-order little-endian uint32 array saved by numpy.save.</summary>
    public static uint[] ReadUInt32(string path, long count) => Read<uint>(path, count, "<u4");

    /// <summary>The <paramref name="count"/> values of a C-order little-endian uint64 array saved by numpy.save.</summary>
    public static ulong[] ReadUInt64(string path, long count) => Read<ulong>(path, count, "<u8");

    private static T[] Read<T>(string path, long count, string descr) where T : unmanaged
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path}: not a .npy file");
        int start = bytes[6] == 1 ? 10 + BitConverter.ToUInt16(bytes, 8) : 12 + BitConverter.ToInt32(bytes, 8);
        string header = Encoding.ASCII.GetString(bytes, 0, start);
        if (!header.Contains($"'descr': '{descr}'", StringComparison.Ordinal) || !header.Contains("'fortran_order': False", StringComparison.Ordinal))
            throw new InvalidDataException($"{path}: expected C-order {descr}, found {header[(header.IndexOf('{', StringComparison.Ordinal))..].Trim()}");
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (bytes.Length - start != count * size) throw new InvalidDataException($"{path}: holds {(bytes.Length - start) / size} values, expected {count}");
        return MemoryMarshal.Cast<byte, T>(bytes.AsSpan(start)).ToArray();
    }

    private static void Write(string path, string descr, ReadOnlySpan<byte> bytes, long[] shape)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";   // data starts 64-byte aligned
        using var file = File.Create(path);
        file.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);   // magic, version 1.0
        file.Write(BitConverter.GetBytes((ushort)header.Length));
        file.Write(Encoding.ASCII.GetBytes(header));
        file.Write(bytes);
    }
}
