using System.Globalization;
using System.Text.RegularExpressions;

namespace ChunkSeg.Deployment.Tests;

/// <summary>The manifests against each other, the docker README and Directory.Build.props: names, ports and versions that must agree.</summary>
public sealed partial class WiringTests
{
    private readonly Manifests _k8s = Manifests.Load();

    [Fact]
    public void ChunkSeg_images_are_tagged_with_the_version_in_Directory_Build_props()
    {
        string version = Repo.Version();
        var images = _k8s.ChunkSegContainers.Select(c => c.Image).Distinct().ToList();
        Assert.Equal(["coordinator", "gpu-node"], images.Select(i => Manifests.ImageName(i)[Manifests.ImagePrefix.Length..]).Order(StringComparer.Ordinal));
        Assert.All(images, image => Assert.Equal(version, Manifests.ImageTag(image)));
    }

    [Fact]
    public void ChunkSeg_images_are_the_ones_the_docker_README_builds()
    {
        var documented = DockerReadmeBuilds();
        Assert.NotEmpty(documented);
        foreach (string image in _k8s.ChunkSegContainers.Select(c => c.Image).Distinct())
        {
            Assert.True(documented.TryGetValue(image, out string? dockerfile),
                $"k8s runs {image}, but docker/README.md has no `docker build -f docker/... -t {image} .`; it builds {string.Join(", ", documented.Keys)}");
            Assert.True(File.Exists(Repo.PathOf(dockerfile!.Split('/'))), $"docker/README.md builds {image} from {dockerfile}, which does not exist");
        }
        string version = Repo.Version();
        Assert.All(documented.Keys, image => Assert.Equal(version, Manifests.ImageTag(image)));
        // Every Dockerfile in docker/ is documented and deployed.
        var dockerfiles = Directory.EnumerateFiles(Repo.Docker, "*.Dockerfile").Select(f => "docker/" + Path.GetFileName(f)).Order(StringComparer.Ordinal);
        Assert.Equal(dockerfiles, documented.Values.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Every_mention_of_a_ChunkSeg_image_or_version_label_names_the_current_version()
    {
        string version = Repo.Version();
        var problems = new List<string>();
        var files = Directory.EnumerateFiles(Repo.K8s, "*", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Repo.Docker, "*", SearchOption.AllDirectories));
        int mentions = 0;
        foreach (string file in files)
        {
            string text = File.ReadAllText(file);
            foreach (Match m in ImageMention().Matches(text).Concat(VersionLabel().Matches(text)))
            {
                mentions++;
                if (m.Groups["tag"].Value != version)
                    problems.Add($"{Repo.Relative(Repo.Root, file)}: {m.Value} (Directory.Build.props says {version})");
            }
        }
        Assert.Empty(problems);
        Assert.True(mentions >= 4, $"found only {mentions} versioned image references");
    }

    /// <summary>image:tag → Dockerfile path, from the `docker build -f X -t Y .` lines of docker/README.md.</summary>
    internal static Dictionary<string, string> DockerReadmeBuilds() =>
        DockerBuild().Matches(Repo.Read("docker", "README.md"))
            .ToDictionary(m => m.Groups["image"].Value, m => m.Groups["file"].Value, StringComparer.Ordinal);

    [Fact]
    public void Store_root_and_http_port_agree_with_the_mounts_and_probes()
    {
        foreach (string image in new[] { "coordinator", "gpu-node" })
        {
            var c = _k8s.ChunkSegContainer(image);
            string? storeRoot = c.Option("--store-root");
            var mount = c.Spec.MapsAt("volumeMounts").FirstOrDefault(m => m.StringAt("mountPath") == storeRoot);
            Assert.True(mount is not null, $"{c}: --store-root {storeRoot} is not a mountPath");
            string? claim = c.Owner.Volume(mount!.StringAt("name") ?? "")?.StringAt("persistentVolumeClaim.claimName");
            Assert.Equal("chunkseg-data", claim);
            var pvc = _k8s.OfKind("PersistentVolumeClaim").Single(p => p.Name == claim);
            Assert.Contains("ReadWriteMany", pvc.Root.StringsAt("spec.accessModes"));

            string? httpPort = c.Option("--http-port");
            Assert.Equal(httpPort, c.ResolvePort(c.Spec.StringAt("livenessProbe.httpGet.port"))?.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(httpPort, c.ResolvePort(c.Spec.StringAt("readinessProbe.httpGet.port"))?.ToString(CultureInfo.InvariantCulture));
            Assert.Equal("/healthz", c.Spec.StringAt("livenessProbe.httpGet.path"));
            Assert.Equal("/readyz", c.Spec.StringAt("readinessProbe.httpGet.path"));
        }
        Assert.Equal("coordinator", _k8s.ChunkSegContainer("coordinator").Args.FirstOrDefault());
        Assert.Equal("worker", _k8s.ChunkSegContainer("gpu-node").Args.FirstOrDefault());
    }

    [Fact]
    public void Telemetry_goes_to_the_collector_Service_on_the_receiver_port_of_the_chosen_protocol()
    {
        var receivers = CollectorConfig().MapAt("receivers.otlp.protocols");
        Assert.NotNull(receivers);
        foreach (string image in new[] { "coordinator", "gpu-node" })
        {
            var c = _k8s.ChunkSegContainer(image);
            string? endpoint = c.EnvValue("OTEL_EXPORTER_OTLP_ENDPOINT");
            Assert.True(endpoint is not null, $"{c}: no OTEL_EXPORTER_OTLP_ENDPOINT");
            var url = new Uri(endpoint!);
            var service = _k8s.Service(ServiceName(url.Host));
            var (_, containerPort, target) = _k8s.ResolveServicePort(service, url.Port);
            Assert.Equal("otel/opentelemetry-collector-contrib", Manifests.ImageName(target.Image));

            // http/protobuf must land on the OTLP/HTTP receiver, grpc on the gRPC one.
            string protocol = c.EnvValue("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "grpc";
            string receiver = protocol.StartsWith("http", StringComparison.Ordinal) ? "http" : "grpc";
            Assert.Equal(PortOf(receivers!.StringAt(receiver + ".endpoint")), containerPort);
            Assert.Equal(url.Scheme == "https" ? "https" : "http", url.Scheme);

            Assert.Equal("chunkseg-" + image, c.EnvValue("OTEL_SERVICE_NAME"));
        }
    }

    [Fact]
    public void Collector_config_receives_OTLP_on_its_exposed_ports_and_every_pipeline_is_complete()
    {
        var config = CollectorConfig();
        var collector = _k8s.Containers.Single(c => Manifests.ImageName(c.Image) == "otel/opentelemetry-collector-contrib");
        var service = _k8s.Service("otel-collector");

        // The OTLP receivers listen on all interfaces, on ports the pod declares and the Service exposes.
        foreach (string protocol in new[] { "grpc", "http" })
        {
            string? endpoint = config.StringAt($"receivers.otlp.protocols.{protocol}.endpoint");
            Assert.True(endpoint is not null, $"the collector has no OTLP {protocol} receiver");
            Assert.StartsWith("0.0.0.0:", endpoint);
            AssertExposed(service, collector, PortOf(endpoint));
        }
        Assert.Equal(4317, PortOf(config.StringAt("receivers.otlp.protocols.grpc.endpoint")));
        Assert.Equal(4318, PortOf(config.StringAt("receivers.otlp.protocols.http.endpoint")));

        // Metrics reach Prometheus through an exposed port.
        string? prometheus = config.StringAt("exporters.prometheus.endpoint");
        Assert.True(prometheus is not null, "the collector has no prometheus exporter");
        AssertExposed(service, collector, PortOf(prometheus));

        var pipelines = config.MapAt("service.pipelines");
        Assert.True(pipelines is not null && pipelines.ContainsKey("traces") && pipelines.ContainsKey("metrics"),
            "the collector needs a traces and a metrics pipeline");
        foreach (var (name, value) in pipelines!)
        {
            var pipeline = value as Map ?? throw new Xunit.Sdk.XunitException($"pipeline {name} is not a mapping");
            foreach (string part in new[] { "receivers", "processors", "exporters" })
            {
                var used = pipeline.StringsAt(part).ToList();
                if (part != "processors") Assert.True(used.Count > 0, $"pipeline {name} has no {part}");
                var defined = config.MapAt(part) ?? new Map();
                foreach (string component in used)
                    Assert.True(defined.ContainsKey(component), $"pipeline {name} uses {part[..^1]} {component}, which is not defined under {part}");
            }
            // memory_limiter must come first to protect the rest of the pipeline.
            Assert.Equal("memory_limiter", pipeline.StringsAt("processors").FirstOrDefault());
        }
        Assert.Contains("prometheus", pipelines.MapAt("metrics")!.StringsAt("exporters"));
        Assert.Contains(pipelines.MapAt("traces")!.StringsAt("exporters"), e => e == "otlp" || e.StartsWith("otlp/", StringComparison.Ordinal));

        // Extensions the service enables are defined; the health_check extension is what the probes call.
        var extensions = config.MapAt("extensions") ?? new Map();
        foreach (string extension in config.StringsAt("service.extensions"))
            Assert.True(extensions.ContainsKey(extension), $"service.extensions names {extension}, which is not defined");
        int health = PortOf(config.StringAt("extensions.health_check.endpoint"));
        Assert.Equal(health, collector.ResolvePort(collector.Spec.StringAt("livenessProbe.httpGet.port")));
        Assert.Equal(health, collector.ResolvePort(collector.Spec.StringAt("readinessProbe.httpGet.port")));
    }

    /// <summary>
    /// The collector's configuration: the ConfigMap key its --config argument points at, through the volume that mounts
    /// the ConfigMap.
    /// </summary>
    private Map CollectorConfig()
    {
        var collector = _k8s.Containers.Single(c => Manifests.ImageName(c.Image) == "otel/opentelemetry-collector-contrib");
        string? configPath = collector.Args.Select(a => a.StartsWith("--config=", StringComparison.Ordinal) ? a["--config=".Length..] : null).OfType<string>().FirstOrDefault()
            ?? collector.Option("--config");
        Assert.True(configPath is not null, $"{collector}: no --config argument");
        foreach (var mount in collector.Spec.MapsAt("volumeMounts"))
        {
            string dir = (mount.StringAt("mountPath") ?? "").TrimEnd('/');
            string? configMap = collector.Owner.Volume(mount.StringAt("name") ?? "")?.StringAt("configMap.name");
            if (configMap is null) continue;
            string? key = mount.StringAt("subPath") is { } subPath
                ? (dir == configPath ? subPath : null)
                : (configPath!.StartsWith(dir + "/", StringComparison.Ordinal) ? configPath[(dir.Length + 1)..] : null);
            if (key is null) continue;
            var doc = _k8s.OfKind("ConfigMap").SingleOrDefault(d => d.Name == configMap);
            Assert.True(doc is not null, $"{collector} mounts ConfigMap {configMap}, which is not in k8s/");
            string? text = doc!.Root.StringAt("data." + key) ?? (doc.Root.MapAt("data") is { } data && data.TryGetValue(key, out var v) ? v as string : null);
            Assert.True(text is not null, $"ConfigMap {configMap} has no key {key}");
            return Yaml.LoadText(text!, $"ConfigMap {configMap} key {key}");
        }
        Assert.Fail($"{collector}: --config {configPath} is not a file of a mounted ConfigMap");
        throw new InvalidOperationException();
    }

    private void AssertExposed(YamlDoc service, Container collector, int port)
    {
        Assert.True(collector.ResolvePort(port.ToString(CultureInfo.InvariantCulture)) is not null, $"{collector} does not declare containerPort {port}");
        var exposed = service.Root.MapsAt("spec.ports")
            .Select(p => p.StringAt("targetPort") ?? p.StringAt("port"))
            .Select(collector.ResolvePort);
        Assert.True(exposed.Contains(port), $"Service {service.Name} does not forward to port {port}");
    }

    /// <summary>"otel-collector", "otel-collector.chunkseg", "otel-collector.chunkseg.svc" and "otel-collector.chunkseg.svc.cluster.local" all name the Service otel-collector in chunkseg.</summary>
    private static string ServiceName(string host)
    {
        var m = ServiceHost().Match(host);
        Assert.True(m.Success, $"{host} is not a Service DNS name in namespace {Manifests.Namespace}");
        return m.Groups[1].Value;
    }

    private static int PortOf(string? endpoint)
    {
        Assert.False(string.IsNullOrEmpty(endpoint));
        return int.Parse(endpoint![(endpoint!.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"ghcr\.io/chunkseg/[\w.-]+:(?<tag>[\w.-]*\w)")]
    private static partial Regex ImageMention();

    [GeneratedRegex(@"app\.kubernetes\.io/version:\s*""?(?<tag>[\w.-]*\w)""?")]
    private static partial Regex VersionLabel();

    [GeneratedRegex(@"^([a-z0-9-]+)(?:\.chunkseg(?:\.svc(?:\.cluster\.local)?)?)?$")]
    private static partial Regex ServiceHost();

    [GeneratedRegex(@"docker build -f (?<file>docker/[\w.-]+\.Dockerfile) -t (?<image>\S+) \.(?:\s|$)")]
    private static partial Regex DockerBuild();
}
