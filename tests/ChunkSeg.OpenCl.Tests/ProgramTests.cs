using ChunkSeg.OpenCl;

namespace ChunkSeg.OpenCl.Tests;

public class ProgramTests(ITestOutputHelper output)
{
    /// <summary>Exercises every argument kind: buffers, int, long, float, and a __local scratch.</summary>
    internal const string Axpy = """
        __kernel void axpy(__global const float* x, __global float* y, float a, int n, long offset, __local float* scratch)
        {
            int i = get_global_id(0);
            scratch[get_local_id(0)] = x[i];
            barrier(CLK_LOCAL_MEM_FENCE);
            if (i < n) y[i] = fma(a, scratch[get_local_id(0)], y[i]) + (float)offset;
        }
        """;

    [Fact]
    public void A_program_builds_and_its_kernel_runs_with_every_argument_kind()
    {
        var context = TestDevice.Context;
        using var program = context.BuildProgram(Axpy, KernelSources.StrictOptions, cache: null, name: "axpy");
        output.WriteLine($"built in {program.BuildTime.TotalMilliseconds:F0} ms, origin {program.Origin}, log \"{program.BuildLog}\"");
        Assert.Equal(ProgramOrigin.Source, program.Origin);
        using var kernel = program.CreateKernel("axpy");
        Assert.True(kernel.MaxWorkGroupSize >= 1);
        Assert.True(kernel.PreferredWorkGroupSizeMultiple >= 1);

        const int n = 1000, local = 8;
        float[] x = Enumerable.Range(0, n).Select(i => i * 0.5f).ToArray();
        float[] y = Enumerable.Range(0, n).Select(i => 1f - i).ToArray();
        using var queue = context.CreateQueue();
        using var bx = context.CreateBuffer<float>(x, OpenClAccess.ReadOnly);
        using var by = context.CreateBuffer<float>(y);
        kernel.SetArg(0, bx).SetArg(1, by).SetArg(2, 3f).SetArg(3, n).SetArg(4, 7L).SetLocal(5, local * sizeof(float));
        using (queue.EnqueueKernel(kernel, new NDRange(n), new NDRange(local))) { }
        var result = new float[n];
        queue.Read(by, result.AsSpan());
        for (int i = 0; i < n; i++) Assert.Equal(MathF.FusedMultiplyAdd(3f, x[i], y[i]) + 7f, result[i]);
    }

    [Fact]
    public void A_program_that_does_not_compile_throws_with_the_build_log()
    {
        var context = TestDevice.Context;
        const string bad = """
            __kernel void broken(__global float* y)
            {
                y[get_global_id(0)] = undeclared_thing_42 * 2.0f;
            }
            """;
        var e = Assert.Throws<OpenClException>(() => context.BuildProgram(bad, KernelSources.StrictOptions, name: "broken.cl"));
        output.WriteLine(e.Message);
        Assert.Equal("clBuildProgram", e.Call);
        Assert.Equal("CL_BUILD_PROGRAM_FAILURE", e.StatusName);
        Assert.NotNull(e.BuildLog);
        Assert.Contains("undeclared_thing_42", e.BuildLog);
        Assert.Contains("undeclared_thing_42", e.Message);
        Assert.Contains("broken.cl", e.Message);
        Assert.Contains("clBuildProgram failed: CL_BUILD_PROGRAM_FAILURE (-11)", e.Message);
    }

    [Fact]
    public void Bad_build_options_and_kernel_names_and_argument_indices_name_the_call_and_status()
    {
        var context = TestDevice.Context;
        var options = Assert.Throws<OpenClException>(() => context.BuildProgram(Axpy, "-cl-no-such-option-xyz", name: "axpy"));
        output.WriteLine(options.Message);
        Assert.Equal("clBuildProgram", options.Call);
        Assert.Contains(options.StatusName, new[] { "CL_INVALID_BUILD_OPTIONS", "CL_BUILD_PROGRAM_FAILURE", "CL_INVALID_COMPILER_OPTIONS" });

        using var program = context.BuildProgram(Axpy, KernelSources.StrictOptions, name: "axpy");
        var name = Assert.Throws<OpenClException>(() => program.CreateKernel("nope"));
        output.WriteLine(name.Message);
        Assert.Equal("CL_INVALID_KERNEL_NAME", name.StatusName);
        Assert.Contains("clCreateKernel failed", name.Message);
        Assert.Contains("\"nope\"", name.Message);

        using var kernel = program.CreateKernel("axpy");
        var index = Assert.Throws<OpenClException>(() => kernel.SetArg(17, 1));
        output.WriteLine(index.Message);
        Assert.Equal("CL_INVALID_ARG_INDEX", index.StatusName);
        Assert.Contains("argument 17", index.Message);
    }

    [Fact]
    public void The_embedded_kernel_sources_load_and_an_unknown_one_lists_them()
    {
        Assert.Contains("__kernel void convolve_lines_even", KernelSources.Load(OpenClConvolution.SourceFile));
        var e = Assert.Throws<ArgumentException>(() => KernelSources.Load("missing.cl"));
        Assert.Contains(OpenClConvolution.SourceFile, e.Message);
    }
}
