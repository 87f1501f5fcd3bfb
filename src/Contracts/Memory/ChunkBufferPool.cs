namespace ChunkSeg.Contracts.Memory;

/// <summary>
/// A pool for chunk-sized buffers (tens of megabytes, a few per worker). <see cref="System.Buffers.ArrayPool{T}.Shared"/>
/// keeps one array per size class in every thread that ever returned one and rounds lengths up to a power of two, so
/// its footprint grows with the number of threads a long job happens to touch. This pool has no thread caches, hands
/// out exact lengths (or a kept array at most twice as long), and keeps only what keeps it within a quarter above the
/// most that was ever rented at once: memory follows the chunk size and the worker count, not the job's length.
/// </summary>
public sealed class ChunkBufferPool<T>
{
    private readonly object _gate = new();
    private readonly List<T[]> _free = [];      // by length, shortest first
    private long _rented, _peakRented, _kept;   // in elements

    /// <summary>One pool per element type for the whole process (<see cref="ChunkBufferPool.TrimShared"/> empties them all).</summary>
    public static ChunkBufferPool<T> Shared { get; } = ChunkBufferPool.Register(new ChunkBufferPool<T>());

    /// <summary>Elements in arrays the pool keeps now (for tests and diagnostics).</summary>
    public long KeptElements
    {
        get { lock (_gate) return _kept; }
    }

    /// <summary>An array of at least <paramref name="length"/> elements, not cleared.</summary>
    public T[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        lock (_gate)
        {
            int i = FirstAtLeast(length);
            if (i < _free.Count && _free[i].Length <= 2L * Math.Max(length, 1))
            {
                var kept = _free[i];
                _free.RemoveAt(i);
                _kept -= kept.Length;
                Count(kept.Length);
                return kept;
            }
            Count(length);
            // Kept arrays that could not serve it go first, shortest first, while the new one would break the bound.
            while (_free.Count > 0 && _rented + _kept > Limit)
            {
                _kept -= _free[0].Length;
                _free.RemoveAt(0);
            }
        }
        return GC.AllocateUninitializedArray<T>(length);
    }

    /// <summary>
    /// For arrays whose size varies from tiny to chunk-sized (a surface piece's, a weld's): from
    /// <see cref="ChunkBufferPool.LargeFrom"/> elements on an array of the pool (not cleared), below it a fresh one (a
    /// gen-0 allocation costs less than the lock). Give it back with <see cref="ReturnLarge"/>.
    /// </summary>
    public T[] RentLarge(int length) => length >= ChunkBufferPool.LargeFrom ? Rent(length) : new T[length];

    /// <summary>Gives back an array from <see cref="RentLarge"/> (one below the pool's sizes is left to the GC).</summary>
    public void ReturnLarge(T[] array)
    {
        if (array.Length >= ChunkBufferPool.LargeFrom) Return(array);
    }

    /// <summary>Gives back an array from <see cref="Rent"/>; the pool keeps it or lets the GC have it.</summary>
    public void Return(T[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        lock (_gate)
        {
            _rented -= array.Length;
            // Shorter kept arrays go first: the longest ones serve every request a shorter one could.
            while (_free.Count > 0 && _rented + _kept + array.Length > Limit && _free[0].Length < array.Length)
            {
                _kept -= _free[0].Length;
                _free.RemoveAt(0);
            }
            if (_rented + _kept + array.Length > Limit) return;
            _free.Insert(FirstAtLeast(array.Length), array);
            _kept += array.Length;
        }
    }

    /// <summary>
    /// Lets the GC have every kept array and forgets the high-water mark, for when a pass is over and the next one
    /// needs other sizes (its own peak then sets what is kept).
    /// </summary>
    public void Trim()
    {
        lock (_gate)
        {
            _free.Clear();
            _kept = 0;
            _peakRented = _rented;
        }
    }

    private long Limit => _peakRented + _peakRented / 4;

    private void Count(long length)
    {
        _rented += length;
        _peakRented = Math.Max(_peakRented, _rented);
    }

    private int FirstAtLeast(int length)
    {
        int lo = 0, hi = _free.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_free[mid].Length < length) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}

/// <summary>The process-wide <see cref="ChunkBufferPool{T}.Shared"/> pools.</summary>
public static class ChunkBufferPool
{
    private static readonly List<Action> Trims = [];

    /// <summary>
    /// The length from which <see cref="ChunkBufferPool{T}.RentLarge"/> pools: 64 Ki elements, where fresh memory starts
    /// to cost page faults (a quarter megabyte and up) rather than a gen-0 allocation.
    /// </summary>
    public const int LargeFrom = 1 << 16;

    /// <summary>Trims every shared pool (<see cref="ChunkBufferPool{T}.Trim"/>): call it when a pass over the chunks is over.</summary>
    public static void TrimShared()
    {
        Action[] trims;
        lock (Trims) trims = [.. Trims];
        foreach (var trim in trims) trim();
    }

    internal static ChunkBufferPool<T> Register<T>(ChunkBufferPool<T> pool)
    {
        lock (Trims) Trims.Add(pool.Trim);
        return pool;
    }
}
