using System.Diagnostics;
using ChunkSeg.OpenCl;

namespace ChunkSeg.OpenCl.Tests;

public class ProgramCacheTests(ITestOutputHelper output)
{
    private const string Source = """
        __kernel void twice(__global float* y) { y[get_global_id(0)] *= 2.0f; }
        """;

    /// <summary>Runs "twice" from <paramref name="program"/>: the cached executable must work, not merely load.</summary>
    private static void AssertRuns(OpenClProgram program)
    {
        var context = program.Context;
        using var kernel = program.CreateKernel("twice");
        using var queue = context.CreateQueue();
        using var buffer = context.CreateBuffer<float>([1f, -2.5f, 3f]);
        kernel.SetArg(0, buffer);
        using (queue.EnqueueKernel(kernel, new NDRange(3))) { }
        var result = new float[3];
        queue.Read(buffer, result.AsSpan());
        Assert.Equal([2f, -5f, 6f], result);
    }

    [Fact]
    public void A_second_build_loads_the_cached_binary()
    {
        var device = TestDevice.Require();
        using var dir = TestDevice.NewCacheDirectory();
        var cache = new ProgramCache(dir.Path);
        string file = cache.PathOf(device, Source, KernelSources.StrictOptions);
        Assert.False(File.Exists(file));

        using (var first = new OpenClContext(device))
        using (var program = first.BuildProgram(Source, KernelSources.StrictOptions, cache, "twice"))
        {
            output.WriteLine($"source build {program.BuildTime.TotalMilliseconds:F1} ms");
            Assert.Equal(ProgramOrigin.Source, program.Origin);
            AssertRuns(program);
        }
        Assert.True(File.Exists(file), $"{file} was not written");
        output.WriteLine($"cache file {new FileInfo(file).Length} bytes: {file}");
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));

        using (var second = new OpenClContext(device))
        using (var program = second.BuildProgram(Source, KernelSources.StrictOptions, cache, "twice"))
        {
            output.WriteLine($"cached build {program.BuildTime.TotalMilliseconds:F1} ms");
            Assert.Equal(ProgramOrigin.Cache, program.Origin);
            AssertRuns(program);
        }
    }

    [Fact]
    public void The_key_covers_source_options_and_device()
    {
        var device = TestDevice.Require();
        var cache = new ProgramCache(Path.GetTempPath());
        string key = cache.PathOf(device, Source, "-cl-std=CL1.2");
        Assert.Equal(key, cache.PathOf(device, Source, "-cl-std=CL1.2"));
        Assert.NotEqual(key, cache.PathOf(device, Source + " ", "-cl-std=CL1.2"));
        Assert.NotEqual(key, cache.PathOf(device, Source, "-cl-std=CL1.2 -DX=1"));
        Assert.Matches("^[0-9a-f]{64}\\.bin$", Path.GetFileName(key));
    }

    [Fact]
    public void A_damaged_cache_file_is_removed_and_the_program_built_from_source()
    {
        var device = TestDevice.Require();
        using var dir = TestDevice.NewCacheDirectory();
        var cache = new ProgramCache(dir.Path);
        string file = cache.PathOf(device, Source, KernelSources.StrictOptions);
        using var context = new OpenClContext(device);
        using (context.BuildProgram(Source, KernelSources.StrictOptions, cache)) { }

        byte[] bytes = File.ReadAllBytes(file);
        bytes[^1] ^= 0x5a;                                        // the checksum no longer matches
        File.WriteAllBytes(file, bytes);
        using (var program = context.BuildProgram(Source, KernelSources.StrictOptions, cache))
        {
            Assert.Equal(ProgramOrigin.SourceAfterRejectedBinary, program.Origin);
            AssertRuns(program);
        }
        using (var program = context.BuildProgram(Source, KernelSources.StrictOptions, cache))
            Assert.Equal(ProgramOrigin.Cache, program.Origin);    // re-cached by the rebuild

        File.WriteAllBytes(file, bytes[..20]);                    // truncated
        using (var program = context.BuildProgram(Source, KernelSources.StrictOptions, cache))
            Assert.Equal(ProgramOrigin.SourceAfterRejectedBinary, program.Origin);
    }

    [Fact]
    public void A_binary_the_driver_refuses_falls_back_to_a_source_build()
    {
        var device = TestDevice.Require();
        using var dir = TestDevice.NewCacheDirectory();
        var cache = new ProgramCache(dir.Path);
        var context = TestDevice.Context;
        string key = cache.KeyOf(device, Source, KernelSources.StrictOptions);
        // A well-formed cache file (magic, checksum) around a payload no driver can load: what a driver change
        // that keeps its version string would leave behind.
        cache.Store(key, "this is not a device binary, whatever the driver"u8.ToArray());
        using var program = context.BuildProgram(Source, KernelSources.StrictOptions, cache);
        Assert.Equal(ProgramOrigin.SourceAfterRejectedBinary, program.Origin);
        AssertRuns(program);
        Assert.Equal(CacheLookup.Hit, cache.TryLoad(key, out byte[]? stored));
        Assert.NotEqual("this is not a device binary, whatever the driver"u8.ToArray(), stored);
    }

    [Fact]
    public void A_cache_that_cannot_be_written_only_costs_the_compile()
    {
        using var dir = TestDevice.NewCacheDirectory();
        string blocker = Path.Combine(dir.Path, "a-file");
        File.WriteAllText(blocker, "not a directory");
        var cache = new ProgramCache(Path.Combine(blocker, "opencl"));
        var context = TestDevice.Context;
        using var program = context.BuildProgram(Source, KernelSources.StrictOptions, cache);
        Assert.Equal(ProgramOrigin.Source, program.Origin);
        AssertRuns(program);
    }

    [Fact]
    public void The_default_directory_follows_the_override_then_xdg_then_home()
    {
        // Read-only checks of the rule; the environment is not changed (tests run in parallel).
        string dir = ProgramCache.DefaultDirectory();
        string? explicitDir = Environment.GetEnvironmentVariable(ProgramCache.DirectoryVariable);
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        output.WriteLine($"default cache directory here: {dir}");
        if (!string.IsNullOrWhiteSpace(explicitDir)) Assert.Equal(explicitDir, dir);
        else if (!string.IsNullOrWhiteSpace(xdg)) Assert.Equal(Path.Combine(xdg, "chunkseg", "opencl"), dir);
        else Assert.EndsWith(Path.Combine(".cache", "chunkseg", "opencl"), dir);
    }

    [Fact]
    public void The_convolution_program_is_cached_too()
    {
        var device = TestDevice.Require();
        using var dir = TestDevice.NewCacheDirectory();
        var cache = new ProgramCache(dir.Path);
        using var context = new OpenClContext(device);
        var clock = Stopwatch.StartNew();
        using (var first = new OpenClConvolution(context, cache))
        {
            output.WriteLine($"separable_convolution.cl from {first.Program.Origin}: {first.Program.BuildTime.TotalMilliseconds:F0} ms");
            Assert.Equal(ProgramOrigin.Source, first.Program.Origin);
        }
        using var second = new OpenClConvolution(context, cache);
        output.WriteLine($"separable_convolution.cl from {second.Program.Origin}: {second.Program.BuildTime.TotalMilliseconds:F0} ms (total {clock.ElapsedMilliseconds} ms)");
        Assert.Equal(ProgramOrigin.Cache, second.Program.Origin);
    }
}
