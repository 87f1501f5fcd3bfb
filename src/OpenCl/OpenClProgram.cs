using System.Diagnostics;
using System.Text;
using ChunkSeg.OpenCl.Native;

namespace ChunkSeg.OpenCl;

/// <summary>Where a program's executable came from.</summary>
public enum ProgramOrigin
{
    /// <summary>Compiled from source (no cache, or the cache had no entry).</summary>
    Source,

    /// <summary>Loaded from a cached binary.</summary>
    Cache,

    /// <summary>The cached binary was unreadable or the driver rejected it; compiled from source and re-cached.</summary>
    SourceAfterRejectedBinary,
}

/// <summary>
/// A program built for one device (<c>cl_program</c>); create kernels from it with <see cref="CreateKernel"/>.
/// Build with <see cref="OpenClContext.BuildProgram"/>.
/// </summary>
public sealed unsafe class OpenClProgram : IDisposable
{
    private OpenClProgram(OpenClContext context, ProgramHandle handle, string name, string options, ProgramOrigin origin, TimeSpan buildTime)
    {
        Context = context;
        Handle = handle;
        Name = name;
        Options = options;
        Origin = origin;
        BuildTime = buildTime;
    }

    /// <summary>The context the program belongs to.</summary>
    public OpenClContext Context { get; }

    /// <summary>The name given at build time (e.g. the .cl file), used in messages.</summary>
    public string Name { get; }

    /// <summary>The build options.</summary>
    public string Options { get; }

    /// <summary>Whether the executable came from source or from the binary cache.</summary>
    public ProgramOrigin Origin { get; }

    /// <summary>Wall time of the build, including reading or writing the cache.</summary>
    public TimeSpan BuildTime { get; }

    internal ProgramHandle Handle { get; }

    /// <summary>The compiler's log for this device (warnings; empty for a clean build).</summary>
    public string BuildLog => ReadBuildLog(Handle, Context.Device);

    /// <summary>The kernel <paramref name="kernelName"/>; throws CL_INVALID_KERNEL_NAME when the program has none of that name.</summary>
    public OpenClKernel CreateKernel(string kernelName)
    {
        ArgumentException.ThrowIfNullOrEmpty(kernelName);
        byte[] utf8 = Utf8Z(kernelName);
        int status;
        IntPtr raw;
        fixed (byte* n = utf8)
            raw = Cl.clCreateKernel(Handle, n, &status);
        Cl.Check(status, "clCreateKernel", $"kernel \"{kernelName}\" in {Name}");
        return new OpenClKernel(this, ClHandle.Own<KernelHandle>(raw), kernelName);
    }

    /// <summary>The device binary (CL_PROGRAM_BINARIES) of this single-device program.</summary>
    internal byte[] GetBinary() => GetBinary(Handle);

    private static byte[] GetBinary(ProgramHandle handle)
    {
        nuint size;
        Cl.Check(Cl.clGetProgramInfo(handle, Cl.ProgramBinarySizes, (nuint)sizeof(nuint), &size, null), "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)");
        var binary = new byte[(int)size];
        if (size == 0) return binary;
        fixed (byte* b = binary)
        {
            byte* pointer = b;                                   // CL_PROGRAM_BINARIES is an array of one pointer per device
            Cl.Check(Cl.clGetProgramInfo(handle, Cl.ProgramBinaries, (nuint)sizeof(byte*), &pointer, null), "clGetProgramInfo(CL_PROGRAM_BINARIES)");
        }
        return binary;
    }

    /// <inheritdoc/>
    public void Dispose() => Handle.Dispose();

    internal static OpenClProgram Build(OpenClContext context, string source, string options, ProgramCache? cache, string name)
    {
        var clock = Stopwatch.StartNew();
        var device = context.Device;
        string? key = cache?.KeyOf(device, source, options);
        var origin = ProgramOrigin.Source;
        if (cache is not null && key is not null)
        {
            switch (cache.TryLoad(key, out byte[]? binary))
            {
                case CacheLookup.Hit:
                    if (TryBuildFromBinary(context, binary!, options) is { } cached)
                        return new OpenClProgram(context, cached, name, options, ProgramOrigin.Cache, clock.Elapsed);
                    cache.Remove(key);                            // the driver refused it: stale or damaged
                    origin = ProgramOrigin.SourceAfterRejectedBinary;
                    break;
                case CacheLookup.Corrupt:                         // the file failed its checksum and was removed
                    origin = ProgramOrigin.SourceAfterRejectedBinary;
                    break;
            }
        }

        ProgramHandle handle = BuildFromSource(context, source, options, name);
        if (cache is not null && key is not null)
        {
            byte[] built = GetBinary(handle);
            if (built.Length > 0) cache.Store(key, built);
        }
        return new OpenClProgram(context, handle, name, options, origin, clock.Elapsed);
    }

    private static ProgramHandle BuildFromSource(OpenClContext context, string source, string options, string name)
    {
        byte[] text = Encoding.UTF8.GetBytes(source);
        int status;
        IntPtr raw;
        fixed (byte* t = text)
        {
            byte* strings = t;
            nuint length = (nuint)text.Length;
            raw = Cl.clCreateProgramWithSource(context.Handle, 1, &strings, &length, &status);
        }
        Cl.Check(status, "clCreateProgramWithSource", name);
        var handle = ClHandle.Own<ProgramHandle>(raw);
        status = BuildFor(handle, context.Device, options);
        if (status != Cl.Success)
        {
            string log = ReadBuildLog(handle, context.Device);
            handle.Dispose();
            throw new OpenClException("clBuildProgram", status,
                $"{name} did not build for {context.Device.Name} with options \"{options}\"", string.IsNullOrWhiteSpace(log) ? "(the driver gave no log)" : log);
        }
        return handle;
    }

    private static ProgramHandle? TryBuildFromBinary(OpenClContext context, byte[] binary, string options)
    {
        int status, binaryStatus;
        IntPtr raw, device = context.Device.Id;
        fixed (byte* b = binary)
        {
            byte* pointer = b;
            nuint length = (nuint)binary.Length;
            raw = Cl.clCreateProgramWithBinary(context.Handle, 1, &device, &length, &pointer, &binaryStatus, &status);
        }
        if (status != Cl.Success || binaryStatus != Cl.Success)
        {
            if (raw != IntPtr.Zero) Cl.clReleaseProgram(raw);
            return null;
        }
        var handle = ClHandle.Own<ProgramHandle>(raw);
        if (BuildFor(handle, context.Device, options) == Cl.Success) return handle;
        handle.Dispose();
        return null;
    }

    private static int BuildFor(ProgramHandle handle, OpenClDevice device, string options)
    {
        IntPtr id = device.Id;
        byte[] opts = Utf8Z(options);
        fixed (byte* o = opts)
            return Cl.clBuildProgram(handle, 1, &id, o, IntPtr.Zero, IntPtr.Zero);
    }

    private static string ReadBuildLog(ProgramHandle handle, OpenClDevice device)
    {
        try
        {
            return Cl.InfoString((s, v, r) => Cl.clGetProgramBuildInfo(handle, device.Id, Cl.ProgramBuildLog, s, v, r), "clGetProgramBuildInfo");
        }
        catch (OpenClException e)
        {
            return $"(could not read the build log: {e.Message})";
        }
    }

    private static byte[] Utf8Z(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }
}
