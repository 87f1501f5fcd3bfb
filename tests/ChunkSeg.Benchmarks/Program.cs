using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// BenchmarkDotNet 0.15.8 builds its out-of-process benchmark project for net10.0 (0.14 could not, and ran in-process):
// each benchmark runs in a process of its own, as the library intends. `--job short` style flags still apply.
var config = DefaultConfig.Instance.AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(8));
BenchmarkSwitcher.FromAssembly(typeof(ChunkSeg.Benchmarks.VolumeBenchmark).Assembly).Run(args, config);
