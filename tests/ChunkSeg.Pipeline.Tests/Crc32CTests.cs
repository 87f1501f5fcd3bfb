using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Pipeline.Tests;

public class Crc32CTests
{
    [Fact]
    public void Matches_the_standard_check_value() =>
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));   // CRC-32C catalogue check value

    [Fact]
    public void Vector_path_equals_a_bitwise_reference_at_every_length()
    {
        var rng = new Random(99);
        var data = new byte[300];
        rng.NextBytes(data);
        for (int n = 0; n <= data.Length; n++)
            Assert.Equal(Bitwise(data.AsSpan(0, n)), Crc32C.Compute(data.AsSpan(0, n)));
    }

    private static uint Bitwise(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0x82F63B78 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
