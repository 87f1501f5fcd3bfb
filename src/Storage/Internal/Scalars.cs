using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Internal;

/// <summary>Encodes one scalar (a fill value) as the element bytes of a <see cref="DataType"/>.</summary>
internal static class Scalars
{
    public static byte[] Encode(double value, DataType type)
    {
        var bytes = new byte[type.SizeInBytes()];
        switch (type)
        {
            case DataType.UInt8: bytes[0] = (byte)value; break;
            case DataType.Int8: bytes[0] = (byte)(sbyte)value; break;
            case DataType.UInt16: MemoryMarshal.Write(bytes, (ushort)value); break;
            case DataType.Int16: MemoryMarshal.Write(bytes, (short)value); break;
            case DataType.UInt32: MemoryMarshal.Write(bytes, (uint)value); break;
            case DataType.Int32: MemoryMarshal.Write(bytes, (int)value); break;
            case DataType.UInt64: MemoryMarshal.Write(bytes, (ulong)value); break;
            case DataType.Int64: MemoryMarshal.Write(bytes, (long)value); break;
            case DataType.Float32: MemoryMarshal.Write(bytes, (float)value); break;
            case DataType.Float64: MemoryMarshal.Write(bytes, value); break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
        return bytes;
    }

    /// <summary>Fills <paramref name="destination"/> with repeated copies of <paramref name="element"/>.</summary>
    public static void Fill(Span<byte> destination, ReadOnlySpan<byte> element)
    {
        if (element.Length == 1) { destination.Fill(element[0]); return; }
        bool allZero = !element.ContainsAnyExcept((byte)0);
        if (allZero) { destination.Clear(); return; }
        for (int i = 0; i + element.Length <= destination.Length; i += element.Length)
            element.CopyTo(destination[i..]);
    }
}
