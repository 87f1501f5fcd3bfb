namespace ChunkSeg.Deployment.Tests;

/// <summary>A container of a workload's pod template, with the pod spec it runs in.</summary>
internal sealed record Container(Workload Owner, Map Spec)
{
    public string Name => Spec.StringAt("name") ?? "";
    public string Image => Spec.StringAt("image") ?? "";

    /// <summary>The images built from docker/ (ghcr.io/chunkseg/...), as opposed to third-party ones.</summary>
    public bool IsChunkSeg => Image.StartsWith(Manifests.ImagePrefix, StringComparison.Ordinal);

    public IEnumerable<Map> Ports => Spec.MapsAt("ports");

    public IReadOnlyList<string> Args => [.. Spec.StringsAt("args")];

    public IEnumerable<Map> Env => Spec.MapsAt("env");

    /// <summary>The literal value of env var <paramref name="name"/>, or null.</summary>
    public string? EnvValue(string name) =>
        Env.FirstOrDefault(e => e.StringAt("name") == name)?.StringAt("value");

    /// <summary>The value following <paramref name="option"/> in args (["--broker", "amqp://..."]).</summary>
    public string? Option(string option)
    {
        var args = Args;
        int i = args.ToList().IndexOf(option);
        return i >= 0 && i + 1 < args.Count ? args[i + 1] : null;
    }

    /// <summary>
    /// A port reference (a probe's or a Service's targetPort: a number or a port name) resolved to a declared
    /// containerPort number; null when this container declares no such port.
    /// </summary>
    public int? ResolvePort(string? reference)
    {
        if (reference is null) return null;
        foreach (var port in Ports)
        {
            string? number = port.StringAt("containerPort");
            if (number == reference || port.StringAt("name") == reference)
                return int.TryParse(number, out int n) ? n : null;
        }
        return null;
    }

    /// <summary>The pod-level securityContext value overridden by the container-level one (as Kubernetes applies them).</summary>
    public string? Security(string field) =>
        Spec.StringAt("securityContext." + field) ?? Owner.PodSpec.StringAt("securityContext." + field);

    public override string ToString() => $"{Owner.Kind} {Owner.Name} container {Name}";
}

/// <summary>A Deployment, StatefulSet, DaemonSet, Job or CronJob: something with a pod template.</summary>
internal sealed record Workload(YamlDoc Doc, Map Template)
{
    public string Kind => Doc.Kind;
    public string Name => Doc.Name;
    public Map PodSpec => Template.MapAt("spec") ?? new Map();
    public Map PodLabels => Template.MapAt("metadata.labels") ?? new Map();

    public IEnumerable<Container> Containers =>
        PodSpec.MapsAt("initContainers").Concat(PodSpec.MapsAt("containers")).Select(c => new Container(this, c));

    public Map? Volume(string name) => PodSpec.MapsAt("volumes").FirstOrDefault(v => v.StringAt("name") == name);
}

/// <summary>Everything under k8s/: every YAML document, and views of its workloads, Services and ConfigMaps.</summary>
internal sealed class Manifests
{
    public const string Namespace = "chunkseg";
    public const string ImagePrefix = "ghcr.io/chunkseg/";
    public const string KustomizationFile = "kustomization.yaml";

    private static readonly Lazy<Manifests> Shared = new(() => new Manifests());

    private Manifests()
    {
        Files = Directory.EnumerateFiles(Repo.K8s, "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
            .Select(f => Repo.Relative(Repo.K8s, f))
            .Order(StringComparer.Ordinal)
            .ToList();
        foreach (string file in Files)
        {
            var docs = Yaml.LoadFile(Path.Combine(Repo.K8s, file), "k8s/" + file);
            if (file == KustomizationFile) Kustomization = docs.Single().Root;
            else Docs.AddRange(docs);
        }
    }

    public static Manifests Load() => Shared.Value;

    /// <summary>YAML files under k8s/, relative to it ("coordinator-job.yaml").</summary>
    public List<string> Files { get; }

    /// <summary>Every Kubernetes document (kustomization.yaml excluded).</summary>
    public List<YamlDoc> Docs { get; } = [];

    public Map? Kustomization { get; }

    public IEnumerable<YamlDoc> OfKind(string kind) => Docs.Where(d => d.Kind == kind);

    public IEnumerable<Workload> Workloads => Docs.Select(d => d.Kind switch
    {
        "Deployment" or "StatefulSet" or "DaemonSet" or "Job" or "ReplicaSet" => d.Root.MapAt("spec.template"),
        "CronJob" => d.Root.MapAt("spec.jobTemplate.spec.template"),
        _ => null,
    } is { } template ? new Workload(d, template) : null).OfType<Workload>();

    public IEnumerable<Container> Containers => Workloads.SelectMany(w => w.Containers);

    public IEnumerable<Container> ChunkSegContainers => Containers.Where(c => c.IsChunkSeg);

    public Container ChunkSegContainer(string imageName)
    {
        var matches = ChunkSegContainers.Where(c => ImageName(c.Image) == ImagePrefix + imageName).ToList();
        Assert.True(matches.Count == 1, $"expected one container running {ImagePrefix}{imageName}, found {matches.Count}");
        return matches[0];
    }

    public YamlDoc Service(string name)
    {
        var service = OfKind("Service").SingleOrDefault(s => s.Name == name);
        Assert.True(service is not null, $"no Service named {name} in k8s/");
        return service!;
    }

    /// <summary>The workloads whose pod template labels include every label of the Service's selector.</summary>
    public List<Workload> SelectedBy(YamlDoc service)
    {
        var selector = service.Root.MapAt("spec.selector");
        if (selector is null || selector.Count == 0) return [];
        return Workloads.Where(w => selector.All(kv => w.PodLabels.TryGetValue(kv.Key, out var v) && Equals(v, kv.Value))).ToList();
    }

    /// <summary>
    /// Resolves a Service port ("port" number or name) to the container port it forwards to, in each selected workload.
    /// Returns (service port, container port, container) or fails naming what did not match.
    /// </summary>
    public (int ServicePort, int ContainerPort, Container Container) ResolveServicePort(YamlDoc service, int servicePort)
    {
        var port = service.Root.MapsAt("spec.ports").FirstOrDefault(p => p.StringAt("port") == servicePort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(port is not null, $"Service {service.Name} exposes no port {servicePort}");
        string target = port!.StringAt("targetPort") ?? port.StringAt("port")!;
        foreach (var workload in SelectedBy(service))
        {
            foreach (var container in workload.Containers)
            {
                if (container.ResolvePort(target) is int n) return (servicePort, n, container);
            }
        }
        Assert.Fail($"Service {service.Name} port {servicePort} (targetPort {target}) reaches no declared containerPort of the pods it selects");
        throw new InvalidOperationException();
    }

    /// <summary>Image reference without its tag or digest ("ghcr.io/chunkseg/coordinator").</summary>
    public static string ImageName(string image)
    {
        string noDigest = image.Split('@')[0];
        int slash = noDigest.LastIndexOf('/');
        int colon = noDigest.LastIndexOf(':');
        return colon > slash ? noDigest[..colon] : noDigest;
    }

    /// <summary>The tag of an image reference, or null when it has none (a digest alone also counts as pinned; see <see cref="IsPinned"/>).</summary>
    public static string? ImageTag(string image)
    {
        string noDigest = image.Split('@')[0];
        int slash = noDigest.LastIndexOf('/');
        int colon = noDigest.LastIndexOf(':');
        return colon > slash ? noDigest[(colon + 1)..] : null;
    }

    /// <summary>Pinned: a digest, or a tag that is not "latest" (floating tags like "10.0-noble" count as pinned to that line).</summary>
    public static bool IsPinned(string image) =>
        image.Contains("@sha256:", StringComparison.Ordinal) || ImageTag(image) is { Length: > 0 } tag && tag != "latest";
}
