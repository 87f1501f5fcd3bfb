using System.Runtime.InteropServices;
using System.Text;

namespace ChunkSeg.Cli.Bench;

/// <summary>Writes .npy files (version 1.0, C order, little-endian) for the reference scripts to load.</summary>
internal static class Npy
{
    public static void Write(string path, ReadOnlySpan<float> data, params long[] shape) => Write(path, "<f4", MemoryMarshal.AsBytes(data), shape);

    public static void Write(string path, ReadOnlySpan<int> data, params long[] shape) => Write(path, "<i4", MemoryMarshal.AsBytes(data), shape);

    public static void Write(string path, ReadOnlySpan<byte> data, params long[] shape) => Write(path, "|u1", data, shape);

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
