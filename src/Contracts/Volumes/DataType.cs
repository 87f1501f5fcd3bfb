namespace ChunkSeg.Contracts.Volumes;

/// <summary>Voxel element types. Stored little-endian unless a format says otherwise.</summary>
public enum DataType { UInt8, UInt16, UInt32, UInt64, Int8, Int16, Int32, Int64, Float32, Float64 }

public static class DataTypes
{
    public static int SizeInBytes(this DataType type) => type switch
    {
        DataType.UInt8 or DataType.Int8 => 1,
        DataType.UInt16 or DataType.Int16 => 2,
        DataType.UInt32 or DataType.Int32 or DataType.Float32 => 4,
        DataType.UInt64 or DataType.Int64 or DataType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    public static bool IsFloat(this DataType type) => type is DataType.Float32 or DataType.Float64;
    public static bool IsSigned(this DataType type) => type is DataType.Int8 or DataType.Int16 or DataType.Int32 or DataType.Int64;

    /// <summary>Lower-case NumPy name: "uint16", "float32".</summary>
    public static string Name(this DataType type) => type.ToString().ToLowerInvariant();

    public static readonly string AllNames = string.Join(", ", Enum.GetValues<DataType>().Select(t => t.Name()));

    /// <summary>Parses a NumPy-style name ("uint8", "float32"); throws naming the allowed set.</summary>
    public static DataType Parse(string name)
    {
        string wanted = name.Trim().ToLowerInvariant();
        foreach (var type in Enum.GetValues<DataType>())
            if (type.Name() == wanted) return type;
        throw new ArgumentException($"unsupported dtype \"{name}\"; supported: {AllNames}");
    }

    /// <summary>The CLR element type with the same layout.</summary>
    public static Type ClrType(this DataType type) => type switch
    {
        DataType.UInt8 => typeof(byte), DataType.Int8 => typeof(sbyte),
        DataType.UInt16 => typeof(ushort), DataType.Int16 => typeof(short),
        DataType.UInt32 => typeof(uint), DataType.Int32 => typeof(int),
        DataType.UInt64 => typeof(ulong), DataType.Int64 => typeof(long),
        DataType.Float32 => typeof(float), DataType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>The <see cref="DataType"/> of an unmanaged CLR element type.</summary>
    public static DataType Of<T>() where T : unmanaged =>
        Enum.GetValues<DataType>().First(t => t.ClrType() == typeof(T));
}
