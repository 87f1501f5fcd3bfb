using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Storage.Labeling;

/// <summary>
/// The scratch directory of a split (Voronoi-Otsu, seeded Voronoi or distance) inside a labelling job's workspace, removed with it:
/// <code>
///   split/
///     job.txt              the split's parameters
///     outline.zarr/        pass 1: the outline blur (float32), read by passes 2 and the first flood round
///     seeds.zarr/          pass 2: each maximum's global key (uint64, 0 elsewhere)
///     distance.zarr/       the distance split's pass 2: the squared distance map (float64, µm²); its seeds follow
///     round-R.zarr/        flood round R: the packed flood state (uint64, see FloodState); the distance split's
///                          filling flood numbers its rounds on from the downhill flood's
///     extremes/N.bin       pass 1: chunk N's outline minimum and maximum
///     rows/N.bin           pass 2: chunk N's histogram counts per row (rows × 256)
///     rounds/R/N.bin       round R: in which of its iterations chunk N's core changed
/// </code>
/// </summary>
public sealed class SplitWorkspace(string root) : JobWorkspace(root, "splitting")
{
    public string Outline => Path.Combine(Root, "outline.zarr");
    public string Seeds => Path.Combine(Root, "seeds.zarr");
    public string Distance => Path.Combine(Root, "distance.zarr");
    public string Round(int round) => Path.Combine(Root, $"round-{round}.zarr");

    private string Extremes => Path.Combine(Root, "extremes");
    private string Rows => Path.Combine(Root, "rows");
    private string Rounds => Path.Combine(Root, "rounds");

    protected override IEnumerable<string> Folders => [Extremes, Rows, Rounds];

    public void WriteExtremes(long chunk, float min, float max) =>
        WriteAtomically(Path.Combine(Extremes, $"{chunk}.bin"), s =>
        {
            using var w = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(min);
            w.Write(max);
        });

    public (float Min, float Max) ReadExtremes(long chunk) =>
        Read(Path.Combine(Extremes, $"{chunk}.bin"), r => (r.ReadSingle(), r.ReadSingle()));

    public void WriteRowCounts(long chunk, long[] counts) =>
        WriteAtomically(Path.Combine(Rows, $"{chunk}.bin"), s =>
        {
            using var w = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(counts.Length);
            foreach (long c in counts) w.Write(c);
        });

    public long[] ReadRowCounts(long chunk) =>
        Read(Path.Combine(Rows, $"{chunk}.bin"), r =>
        {
            var counts = new long[r.ReadInt32()];
            for (int i = 0; i < counts.Length; i++) counts[i] = r.ReadInt64();
            return counts;
        });

    /// <summary>Records in which iterations of flood round <paramref name="round"/> chunk <paramref name="chunk"/>'s core changed.</summary>
    public void WriteRound(int round, long chunk, bool[] changed)
    {
        Directory.CreateDirectory(Path.Combine(Rounds, $"{round}"));
        WriteAtomically(Path.Combine(Rounds, $"{round}", $"{chunk}.bin"), s =>
        {
            using var w = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(changed.Length);
            foreach (bool c in changed) w.Write(c);
        });
    }

    public bool[] ReadRound(int round, long chunk) =>
        Read(Path.Combine(Rounds, $"{round}", $"{chunk}.bin"), r =>
        {
            var changed = new bool[r.ReadInt32()];
            for (int i = 0; i < changed.Length; i++) changed[i] = r.ReadBoolean();
            return changed;
        });

    private static T Read<T>(string path, Func<BinaryReader, T> read)
    {
        try
        {
            using var r = new BinaryReader(File.OpenRead(path));
            return read(r);
        }
        catch (Exception e) when (e is FileNotFoundException or EndOfStreamException or IOException)
        {
            throw new VolumeException(path, $"the record of a finished chunk is missing or unreadable ({e.Message}); pass --overwrite to start again", e);
        }
    }
}
