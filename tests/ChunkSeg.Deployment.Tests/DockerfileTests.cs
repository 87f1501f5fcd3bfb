using System.Text.RegularExpressions;

namespace ChunkSeg.Deployment.Tests;

/// <summary>
/// docker/*.Dockerfile read statically (no Docker engine runs on the development machines or in CI), and checked
/// against the manifests that run the images they build.
/// </summary>
public sealed partial class DockerfileTests
{
    public static TheoryData<string> Images => ["coordinator", "gpu-node"];

    private static Dockerfile Load(string image) => new(Repo.PathOf("docker", image + ".Dockerfile"));

    [Theory]
    [MemberData(nameof(Images))]
    public void Is_multi_stage_building_the_CLI_in_an_SDK_stage(string image)
    {
        var file = Load(image);
        Assert.True(file.Stages.Count >= 2, $"{image}: {file.Stages.Count} FROM, expected a build stage and a runtime stage");
        Assert.Contains(file.Stages, s => s.Alias is not null);
        Assert.Equal(file.Instructions.Count(i => i.Keyword == "FROM"), file.Stages.Count);

        var build = file.Stages[0];
        Assert.Equal("mcr.microsoft.com/dotnet/sdk", Manifests.ImageName(build.Image));
        string publish = build.Runs.FirstOrDefault(r => r.Contains("dotnet publish", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"{image}: the build stage runs no dotnet publish");
        Assert.Contains("src/Cli/ChunkSeg.Cli.csproj", publish, StringComparison.Ordinal);
        Assert.Matches(@"-c\s+Release\b", publish);
        string output = PublishOutput().Match(publish) is { Success: true } m ? m.Groups[1].Value.TrimEnd('/')
            : throw new Xunit.Sdk.XunitException($"{image}: dotnet publish has no -o");

        // The final stage copies the published output from the build stage, and runs the CLI's dll from it.
        var copy = file.Final.All("COPY").FirstOrDefault(c => c.Arguments.Contains($"--from={build.Alias}", StringComparison.Ordinal));
        Assert.True(copy is not null, $"{image}: the final stage does not COPY --from={build.Alias}");
        var copyArgs = Dockerfile.Tokenize(copy!.Arguments).Where(t => !t.StartsWith("--", StringComparison.Ordinal)).ToList();
        Assert.Equal(output, copyArgs[0].TrimEnd('/'));
        string appDir = copyArgs[^1].TrimEnd('/');

        var entrypoint = file.Final.All("ENTRYPOINT").LastOrDefault()?.ExecForm();
        Assert.True(entrypoint is not null, $"{image}: the final stage needs an exec-form ENTRYPOINT");
        Assert.Equal(["dotnet", $"{appDir}/{Repo.CliAssemblyName()}.dll"], entrypoint);
        Assert.Equal(appDir, file.Final.All("WORKDIR").LastOrDefault()?.Arguments);
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Every_base_image_is_pinned(string image)
    {
        var file = Load(image);
        var aliases = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stage in file.Stages)
        {
            if (!aliases.Contains(stage.Image))
            {
                Assert.DoesNotContain("$", stage.Image, StringComparison.Ordinal);
                Assert.True(Manifests.IsPinned(stage.Image), $"{image}: {stage.From} is not pinned to a tag (or is :latest)");
            }
            if (stage.Alias is not null) aliases.Add(stage.Alias);
        }
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dotnet_base_images_exist_for_the_target_framework(string image)
    {
        // Microsoft publishes .NET 10 images on Ubuntu (noble), Alpine and Azure Linux, not Debian (no bookworm or trixie).
        string framework = Regex.Match(Repo.Read("Directory.Build.props"), @"<TargetFramework>net(\d+\.\d+)</TargetFramework>").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(framework));
        foreach (var stage in Load(image).Stages.Where(s => s.Image.StartsWith("mcr.microsoft.com/dotnet/", StringComparison.Ordinal)))
        {
            string tag = Manifests.ImageTag(stage.Image)!;
            Assert.StartsWith(framework, tag, StringComparison.Ordinal);
            if (framework == "10.0")
                Assert.DoesNotMatch("bookworm|trixie|bullseye", tag);
        }
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Runs_as_the_non_root_user_the_manifests_expect(string image)
    {
        var file = Load(image);
        string? user = file.Final.All("USER").LastOrDefault()?.Arguments.Split(':')[0];
        Assert.True(user is not null, $"{image}: the final stage sets no USER, so it runs as root");
        Assert.DoesNotContain(user, new[] { "root", "0" });
        Assert.Matches(@"^\d+$", user);   // numeric, so that Kubernetes can verify runAsNonRoot
        Assert.Contains(file.Final.Runs, r => Regex.IsMatch(r, $@"useradd\b.*--uid\s+{user}\b|adduser\b.*(-u|--uid)\s+{user}\b"));

        var container = Manifests.Load().ChunkSegContainer(image);
        Assert.Equal(user, container.Security("runAsUser"));
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Default_command_and_exposed_port_match_the_manifests(string image)
    {
        var file = Load(image);
        var container = Manifests.Load().ChunkSegContainer(image);
        Assert.Equal(container.Args.FirstOrDefault(), file.Final.All("CMD").LastOrDefault()?.ExecForm()?.FirstOrDefault());

        var exposed = file.Final.All("EXPOSE").SelectMany(e => Dockerfile.Tokenize(e.Arguments)).Select(p => p.Split('/')[0]).ToHashSet();
        Assert.Contains("8080", exposed);
        foreach (string probe in new[] { "livenessProbe", "readinessProbe" })
        {
            int? port = container.ResolvePort(container.Spec.StringAt($"{probe}.httpGet.port"));
            Assert.True(port is not null && exposed.Contains(port.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                $"{image}: the {probe} port {port} is not EXPOSEd (EXPOSE {string.Join(' ', exposed)})");
        }
        Assert.Contains(container.Option("--http-port") ?? "", exposed);
        Assert.True(container.Option("--port") is { } remoting && exposed.Contains(remoting),
            $"{image}: the Akka remoting port --port {container.Option("--port")} is not EXPOSEd (EXPOSE {string.Join(' ', exposed)})");
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Apt_installs_are_minimal_and_clean_up(string image)
    {
        var file = Load(image);
        var installs = file.Stages.SelectMany(Dockerfile.AptInstalls).ToList();
        Assert.NotEmpty(installs);
        foreach (var (options, packages, run) in installs)
        {
            Assert.Contains("--no-install-recommends", options);
            Assert.True(options.Contains("-y") || options.Contains("--yes") || options.Contains("-qy") || options.Contains("-yq"), $"{image}: apt-get install without -y: {run}");
            Assert.NotEmpty(packages);
            Assert.Contains("apt-get update", run, StringComparison.Ordinal);            // never install from a cached, stale index
            Assert.Contains("rm -rf /var/lib/apt/lists", run, StringComparison.Ordinal);  // and leave no index in the layer
        }
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void The_runtime_stage_installs_Blosc_and_Zstandard_and_no_native_HDF5(string image)
    {
        var file = Load(image);
        var packages = Dockerfile.AptInstalls(file.Final).SelectMany(i => i.Packages).ToHashSet();
        foreach (string package in new[] { "libblosc1", "libzstd1" })
            Assert.True(packages.Contains(package), $"{image}: the final stage ({file.Final.Image}) does not install {package}; it installs {string.Join(' ', packages)}");
        // HDF5 is PureHDF (managed): no libhdf5 in the image.
        Assert.DoesNotContain(packages, p => p.StartsWith("libhdf5", StringComparison.Ordinal));
    }

    [Fact]
    public void The_gpu_node_needs_only_the_driver_and_asks_for_compute()
    {
        var file = Load("gpu-node");
        // ILGPU writes PTX itself and loads it through the driver's libcuda: no CUDA toolkit, NVRTC or OpenCL ICD in the image.
        Assert.Equal("mcr.microsoft.com/dotnet/runtime", Manifests.ImageName(file.Final.Image));
        var packages = Dockerfile.AptInstalls(file.Final).SelectMany(i => i.Packages).ToList();
        Assert.DoesNotContain(packages, p => Regex.IsMatch(p, @"^(cuda|libcuda|nvidia-|libnvrtc|libnvidia|ocl-icd|opencl|pocl)", RegexOptions.IgnoreCase));
        Assert.DoesNotContain(file.Final.Runs, r => r.Contains("/etc/OpenCL", StringComparison.Ordinal));

        // NVIDIA's container toolkit mounts libcuda.so.1 only when the compute capability is asked for.
        var env = file.Env(file.Final).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        Assert.True(env.TryGetValue("NVIDIA_DRIVER_CAPABILITIES", out string? caps), "NVIDIA_DRIVER_CAPABILITIES is not set");
        Assert.True(caps == "all" || caps!.Split(',').Contains("compute"), $"NVIDIA_DRIVER_CAPABILITIES={caps} lacks compute (which mounts libcuda.so.1)");
        Assert.True(env.ContainsKey("NVIDIA_VISIBLE_DEVICES"));
        Assert.Equal("cuda", env.GetValueOrDefault("CHUNKSEG_GPU"));
    }

    /// <summary>The GPU node's check (run by hand on a machine with an NVIDIA GPU): the parity tests on CUDA, then the bench the goal is measured by.</summary>
    [Fact]
    public void The_gpu_check_runs_the_parity_tests_on_cuda_and_the_bench_at_256()
    {
        string script = File.ReadAllText(Repo.PathOf("scripts", "gpu-check.sh"));
        Assert.StartsWith("#!/usr/bin/env bash", script);
        Assert.Matches(@"export CHUNKSEG_GPU=cuda\b", script);
        Assert.Contains("tests/ChunkSeg.IlgpuKernels.Tests", script);
        Assert.Contains("BackendTests", script);
        Assert.Matches(@"bench backend --size 256\b", script);
        Assert.Contains("report.md", script);
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void No_credentials_are_baked_into_the_image(string image)
    {
        var file = Load(image);
        var names = file.Env().Select(e => (e.Key, e.At)).Concat(file.Args.Select(a => (Key: a.Name, a.At)));
        Assert.Empty(names.Where(n => SecretName().IsMatch(n.Key)).Select(n => n.At.ToString()));
    }

    [Fact]
    public void Dockerignore_excludes_build_outputs_and_keeps_the_build_inputs()
    {
        var rules = File.ReadAllLines(Repo.PathOf(".dockerignore"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .ToList();
        // Nested bin/obj (src/Cli/bin) need a ** pattern: a bare "bin" only matches the context root.
        foreach (string path in new[] { "src/Cli/bin/Release/chunkseg.dll", "src/Cli/obj/project.assets.json", "tests/ChunkSeg.Deployment.Tests/bin/x", "bin/x", "obj/x", ".git/HEAD" })
            Assert.True(Excluded(rules, path), $".dockerignore does not exclude {path}");
        foreach (string path in new[] { "src/Cli/ChunkSeg.Cli.csproj", "src/Cli/Program.cs", "Directory.Build.props", "Directory.Packages.props", "global.json", "tools/reference/io_reference.py" })
            Assert.False(Excluded(rules, path), $".dockerignore excludes {path}, which the build stage needs");
    }

    /// <summary>Docker's rule: the last matching pattern wins; a pattern matching a directory excludes what is under it.</summary>
    private static bool Excluded(List<string> rules, string path)
    {
        bool excluded = false;
        foreach (string rule in rules)
        {
            bool negate = rule.StartsWith('!');
            string pattern = (negate ? rule[1..] : rule).Trim('/');
            if (pattern.StartsWith("./", StringComparison.Ordinal)) pattern = pattern[2..];
            var regex = new Regex("^" + GlobToRegex(pattern) + "(/.*)?$");
            if (regex.IsMatch(path)) excluded = !negate;
        }
        return excluded;
    }

    private static string GlobToRegex(string pattern)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                bool slash = i + 2 < pattern.Length && pattern[i + 2] == '/';
                sb.Append(slash ? "(.*/)?" : ".*");
                i += slash ? 2 : 1;
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return sb.ToString();
    }

    [GeneratedRegex(@"\s-o\s+(\S+)")]
    private static partial Regex PublishOutput();

    [GeneratedRegex(@"PASSWORD|PASSWD|_PASS$|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();
}
