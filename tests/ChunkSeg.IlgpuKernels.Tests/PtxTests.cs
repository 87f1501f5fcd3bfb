using System.Text.RegularExpressions;
using ChunkSeg.IlgpuKernels.Arithmetic;
using ChunkSeg.IlgpuKernels.Kernels;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// Every kernel compiled to PTX for sm_90 (an H100) without a GPU, as the CUDA driver would receive it, and read for
/// what would let a driver round differently from the CPU: a float add, sub or mul without <c>.rn</c> (the driver's
/// compiler may contract it into an FMA), an approximate instruction (<c>.approx</c>: sin, cos, rcp, division) or
/// flush-to-zero (<c>.ftz</c>: denormals lost).
/// </summary>
public sealed class PtxTests(ITestOutputHelper output)
{
    private static readonly Lazy<(Context Context, PTXBackend Backend)> Compiler = new(() =>
    {
        var context = Context.Create(builder => builder.Math(MathMode.Default).Optimize(OptimizationLevel.O1));
        return (context, new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null));
    });

    public static TheoryData<string> Kernels() => new(DeviceKernels.EntryPoints<CudaFloatOps>().Select(m => $"{m.DeclaringType!.Name}.{m.Name}"));

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_ptx_with_every_float_operation_rounded_to_nearest(string kernel)
    {
        var method = DeviceKernels.EntryPoints<CudaFloatOps>().Single(m => $"{m.DeclaringType!.Name}.{m.Name}" == kernel);
        string ptx = Compile(method);
        var offending = Offending(ptx);
        output.WriteLine($"{kernel}: {ptx.Split('\n').Length} PTX lines, {Regex.Matches(ptx, @"\.rn\.f(32|64)").Count} rounded float operations");
        Assert.True(offending.Count == 0, $"{kernel}: {string.Join("; ", offending)}");
    }

    [Fact]
    public void The_catalogue_holds_every_kernel_the_device_loads()
    {
        var names = DeviceKernels.EntryPoints<CudaFloatOps>().Select(m => m.Name).ToHashSet();
        var loaded = typeof(DeviceKernels).GetProperties().Select(p => p.Name == "Forest" ? "Predict" : p.Name).ToHashSet();
        Assert.Equal(loaded.Order(), names.Order());
    }

    /// <summary>The checker itself: it catches each instruction it exists to catch.</summary>
    [Theory]
    [InlineData("\tmul.f32\t%f3, %f1, %f2;")]
    [InlineData("\tadd.f32\t%f3, %f1, %f2;")]
    [InlineData("\tsub.f64\t%fd3, %fd1, %fd2;")]
    [InlineData("\tfma.f32\t%f3, %f1, %f2, %f0;")]
    [InlineData("\tsin.approx.f32\t%f2, %f1;")]
    [InlineData("\tdiv.full.f32\t%f3, %f1, %f2;")]
    [InlineData("\tadd.rn.ftz.f32\t%f3, %f1, %f2;")]
    [InlineData(".extern .func (.param .f32 retval_295) FusedMultiplyAdd(")]
    public void The_check_finds_unpinned_approximate_and_flushing_instructions(string line) => Assert.NotEmpty(Offending(line));

    [Theory]
    [InlineData("\tmul.rn.f32 \t%f3, %f1, %f2;")]
    [InlineData("\tfma.rn.f32 %f4, %f2, %f3, %f1;")]
    [InlineData("\tdiv.rn.f32\t%f3, %f1, %f2;")]
    [InlineData("\tmul.lo.s32\t%r1, %r2, %r3;")]
    [InlineData("\tadd.u64\t%rd6, %rd3, %rd7;")]
    public void The_check_passes_pinned_and_integer_instructions(string line) => Assert.Empty(Offending(line));

    internal static string Compile(System.Reflection.MethodInfo method)
    {
        var (_, backend) = Compiler.Value;
        lock (backend)
        {
            var kernel = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromImplicitlyGroupedKernel(method), new KernelSpecialization());
            return kernel.PTXAssembly;
        }
    }

    /// <summary>
    /// The lines a driver could round differently on (float arithmetic without .rn, .approx, .ftz) and the functions a
    /// kernel needs that the PTX does not define (ILGPU declares a .NET method it cannot translate, such as
    /// MathF.FusedMultiplyAdd, as an <c>.extern .func</c>: the driver would refuse to link the module).
    /// </summary>
    internal static List<string> Offending(string ptx)
    {
        var found = Regex.Matches(ptx, @"^\s*\.extern\s+\.func\b.*$", RegexOptions.Multiline).Select(m => "undefined: " + m.Value.Trim()).ToList();
        foreach (var raw in ptx.Split('\n'))
        {
            string line = raw.Trim();
            var opcode = Regex.Match(line, @"^(@!?%p\d+\s+)?([a-z][a-z0-9_.]*)");
            if (!opcode.Success) continue;
            string op = opcode.Groups[2].Value;
            var parts = op.Split('.');
            bool isFloat = parts.Any(p => p is "f32" or "f64");
            if (op.Contains(".approx") || parts.Contains("ftz") || parts.Contains("full")) found.Add(line);
            else if (isFloat && parts[0] is "add" or "sub" or "mul" or "fma" or "mad" or "div" or "sqrt" or "rcp" && !parts.Contains("rn")) found.Add(line);
        }
        return found;
    }
}
