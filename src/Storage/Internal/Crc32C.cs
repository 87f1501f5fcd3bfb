using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;

namespace ChunkSeg.Storage.Internal;

/// <summary>
/// CRC-32C (Castagnoli, as iSCSI, ext4 and Snappy use): the checksum of the Zarr v3 "crc32c" codec (shard
/// indexes) and the one a finished chunk's core bytes are recorded with in the manifest. On x86 with SSE4.2 the crc32 instruction eats 8 bytes per step; the
/// table-driven scalar loop is the reference and gives the same value everywhere.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78;   // reflected 0x1EDC6F41
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        int i = 0;
        if (Sse42.X64.IsSupported)
        {
            ulong wide = crc;
            for (; i + 8 <= data.Length; i += 8)      // 8 bytes per instruction, little-endian as the CRC is reflected
                wide = Sse42.X64.Crc32(wide, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
            crc = (uint)wide;
        }
        for (; i < data.Length; i++)                   // scalar tail = reference semantics
            crc = Table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? Polynomial ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
