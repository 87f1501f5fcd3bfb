namespace ChunkSeg.Storage;

/// <summary>How <see cref="VolumeExtensions.ReadPadded"/> fills voxels outside the volume.</summary>
public enum BorderMode
{
    /// <summary>The volume's fill value: "000|abcd|000".</summary>
    Constant,

    /// <summary>Mirror without repeating the edge (VIGRA's and ilastik's REFLECT): "dcb|abcd|cba".</summary>
    Reflect101,

    /// <summary>Repeat the edge voxel: "aaa|abcd|ddd".</summary>
    Nearest,
}
