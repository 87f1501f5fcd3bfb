using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.GpuNode.Internal;

/// <summary>The plain cast to float32 ilastik applies to its input (source.astype(numpy.float32)), for every dtype.</summary>
internal static class ToFloat
{
    /// <summary>
    /// Channel <paramref name="channel"/> of a planar block (channels one after another, each of
    /// <c>destination.Length</c> values) as float32.
    /// </summary>
    public static void Channel(ReadOnlySpan<byte> planar, int channel, DataType type, Span<float> destination)
    {
        int channelBytes = checked(destination.Length * type.SizeInBytes());
        Convert(planar.Slice(channel * channelBytes, channelBytes), type, destination);
    }

    public static void Convert(ReadOnlySpan<byte> source, DataType type, Span<float> destination)
    {
        switch (type)
        {
            case DataType.UInt8: Cast(MemoryMarshal.Cast<byte, byte>(source), destination, v => v); break;
            case DataType.Int8: Cast(MemoryMarshal.Cast<byte, sbyte>(source), destination, v => v); break;
            case DataType.UInt16: Cast(MemoryMarshal.Cast<byte, ushort>(source), destination, v => v); break;
            case DataType.Int16: Cast(MemoryMarshal.Cast<byte, short>(source), destination, v => v); break;
            case DataType.UInt32: Cast(MemoryMarshal.Cast<byte, uint>(source), destination, v => v); break;
            case DataType.Int32: Cast(MemoryMarshal.Cast<byte, int>(source), destination, v => v); break;
            case DataType.UInt64: Cast(MemoryMarshal.Cast<byte, ulong>(source), destination, v => v); break;
            case DataType.Int64: Cast(MemoryMarshal.Cast<byte, long>(source), destination, v => v); break;
            case DataType.Float32: MemoryMarshal.Cast<byte, float>(source)[..destination.Length].CopyTo(destination); break;
            case DataType.Float64: Cast(MemoryMarshal.Cast<byte, double>(source), destination, v => (float)v); break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    private static void Cast<T>(ReadOnlySpan<T> source, Span<float> destination, Func<T, float> cast)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = cast(source[i]);
    }
}
