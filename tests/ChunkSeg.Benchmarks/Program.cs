using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// In-process toolchain: BenchmarkDotNet 0.14 cannot generate a project for net10.0, and the
// in-process job measures the same code on the host runtime. `--job short` style flags still apply.
var config = DefaultConfig.Instance.AddJob(
    Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(8));
BenchmarkSwitcher.FromAssembly(typeof(ChunkSeg.Benchmarks.VolumeBenchmark).Assembly).Run(args, config);
