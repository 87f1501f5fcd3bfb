using ChunkSeg.OpenCl;

namespace ChunkSeg.OpenCl.Tests;

public class DeviceTests(ITestOutputHelper output)
{
    [Fact]
    public void Lists_platforms_and_devices_with_their_properties()
    {
        TestDevice.Require();
        var platforms = OpenClPlatform.GetAll();
        Assert.NotEmpty(platforms);
        int devices = 0;
        foreach (var platform in platforms)
        {
            output.WriteLine($"platform: {platform.Name} | {platform.Vendor} | {platform.Version}");
            Assert.False(string.IsNullOrWhiteSpace(platform.Name));
            Assert.StartsWith("OpenCL ", platform.Version);
            foreach (var device in platform.GetDevices())
            {
                devices++;
                output.WriteLine($"  device: {device.Describe()}; max alloc {device.MaxAllocationBytes >> 20} MiB, " +
                                 $"denormals {device.HasDenormals}, hardware fma {device.HasHardwareFma}");
                Assert.Same(platform, device.Platform);
                Assert.False(string.IsNullOrWhiteSpace(device.Name));
                Assert.StartsWith("OpenCL ", device.Version);
                Assert.NotEqual((OpenClDeviceType)0, device.Type);
                Assert.True(device.GlobalMemoryBytes > 0);
                Assert.True(device.LocalMemoryBytes >= 16 * 1024);          // the OpenCL 1.2 minimum for full profile
                Assert.InRange(device.MaxAllocationBytes, 1, device.GlobalMemoryBytes);
                Assert.True(device.MaxWorkGroupSize >= 1);
                Assert.True(device.ComputeUnits >= 1);
            }
        }
        Assert.True(devices > 0);
        Assert.Equal(devices, OpenClDevice.GetAll().Count);
    }

    [Fact]
    public void The_default_device_is_a_gpu_when_there_is_one()
    {
        TestDevice.Require();
        Assert.True(OpenClDevice.TryGetDefault(out var device, out string whyNot), whyNot);
        Assert.Equal("", whyNot);
        output.WriteLine($"default: {device.Describe()}");
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(OpenClDevice.DeviceVariable))) return;
        bool anyGpu = OpenClDevice.GetAll().Any(d => d.Type.HasFlag(OpenClDeviceType.Gpu) && d.IsAvailable && d.HasCompiler);
        Assert.Equal(anyGpu, device.Type.HasFlag(OpenClDeviceType.Gpu));
    }

    [Fact]
    public void Select_by_name_finds_the_device_and_an_unknown_name_lists_the_devices()
    {
        var device = TestDevice.Require();
        Assert.Equal(device.Name, OpenClDevice.Select(device.Name.ToUpperInvariant()).Name);
        Assert.Equal(device.Platform.Name, OpenClDevice.Select(device.Platform.Name).Platform.Name);

        var e = Assert.Throws<OpenClException>(() => OpenClDevice.Select("no such device 8f3a"));
        output.WriteLine(e.Message);
        Assert.Contains("\"no such device 8f3a\"", e.Message);
        Assert.Contains(device.Name, e.Message);
        Assert.Equal(1, e.ExitCode);
    }

    [Theory]
    [InlineData(0, "CL_SUCCESS")]
    [InlineData(-5, "CL_OUT_OF_RESOURCES")]
    [InlineData(-11, "CL_BUILD_PROGRAM_FAILURE")]
    [InlineData(-46, "CL_INVALID_KERNEL_NAME")]
    [InlineData(-72, "CL_MAX_SIZE_RESTRICTION_EXCEEDED")]
    [InlineData(-1001, "CL_PLATFORM_NOT_FOUND_KHR")]
    [InlineData(-12345, "CL_UNKNOWN_ERROR_-12345")]
    public void Status_codes_have_their_symbolic_names(int status, string name) => Assert.Equal(name, ClStatus.Name(status));

    [Fact]
    public void A_failed_call_names_the_call_the_status_and_a_hint()
    {
        var e = new OpenClException("clEnqueueNDRangeKernel", -5, "kernel k");
        Assert.Equal("clEnqueueNDRangeKernel failed: CL_OUT_OF_RESOURCES (-5); " + ClStatus.Hint(-5) + "; kernel k", e.Message);
        Assert.Equal("CL_OUT_OF_RESOURCES", e.StatusName);
        Assert.IsAssignableFrom<ChunkSeg.Contracts.Errors.ChunkSegException>(e);
    }
}
