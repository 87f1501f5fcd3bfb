using System.Text.RegularExpressions;

namespace ChunkSeg.Deployment.Tests;

/// <summary>A container of a workload's pod template, with the pod spec it runs in.</summary>
internal sealed partial record Container(Workload Owner, Map Spec)
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

    /// <summary>The env var <paramref name="name"/> (its mapping), or null.</summary>
    public Map? EnvVar(string name) => Env.FirstOrDefault(e => e.StringAt("name") == name);

    /// <summary>The value following the first <paramref name="option"/> in args (["--store-root", "/data"]).</summary>
    public string? Option(string option) => Options(option).FirstOrDefault();

    /// <summary>The port number following <paramref name="option"/> ("--port", "--http-port"); fails when it is absent or not a number.</summary>
    public int PortOption(string option)
    {
        string? value = Option(option);
        Assert.True(int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port),
            $"{this}: {option} {value ?? "(none)"} is not a port number");
        return port;
    }

    /// <summary>The value following each <paramref name="option"/> in args, in order (["--seed", "a", "--seed", "b"] gives a, b).</summary>
    public IEnumerable<string> Options(string option)
    {
        var args = Args;
        for (int i = 0; i + 1 < args.Count; i++)
        {
            if (args[i] == option) yield return args[i + 1];
        }
    }

    /// <summary>
    /// <paramref name="text"/> with each $(VAR) replaced as Kubernetes does for args and env values: by the container's
    /// env var VAR, a literal value (itself expanded) or a fieldRef looked up in <paramref name="fields"/>
    /// ("metadata.name" → "coordinator-0"). Fails on a reference that does not resolve (Kubernetes would leave it as
    /// literal text) and on a fieldRef missing from <paramref name="fields"/>.
    /// </summary>
    public string Expand(string text, IReadOnlyDictionary<string, string> fields) =>
        EnvReference().Replace(text, m =>
        {
            string name = m.Groups["name"].Value;
            var env = EnvVar(name) ?? throw new Xunit.Sdk.XunitException($"{this}: $({name}) in \"{text}\" names no env var of the container");
            if (env.StringAt("value") is { } value) return Expand(value, fields);
            string? field = env.StringAt("valueFrom.fieldRef.fieldPath");
            if (field is not null && fields.TryGetValue(field, out string? resolved)) return resolved;
            throw new Xunit.Sdk.XunitException($"{this}: $({name}) is {(field is null ? "not a literal or a fieldRef" : $"the fieldRef {field}, which this check does not know")}");
        });

    /// <summary>The names of the $(VAR) references in <paramref name="text"/> ($$(VAR) is an escaped, literal one).</summary>
    public static IEnumerable<string> References(string text) => EnvReference().Matches(text).Select(m => m.Groups["name"].Value);

    [GeneratedRegex(@"(?<!\$)\$\((?<name>[A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex EnvReference();

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

    /// <summary>A server (Deployment, StatefulSet, ...) rather than a run-to-completion Job or CronJob.</summary>
    public bool IsLongRunning => Kind is not ("Job" or "CronJob");

    public int Replicas => int.TryParse(Doc.Root.StringAt("spec.replicas") ?? "1", out int n) ? n : 0;
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

    /// <summary>YAML files under k8s/, relative to it ("coordinator-statefulset.yaml", "examples/submit-job.yaml").</summary>
    public List<string> Files { get; }

    /// <summary>The folder of manifests that are not applied with the rest: a Secret template, a client Job to edit.</summary>
    public const string ExamplesDir = "examples/";

    public static bool IsExample(string file) => file.StartsWith(ExamplesDir, StringComparison.Ordinal);

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

    /// <summary>The one long-running container (not a Job's) that runs <see cref="ImagePrefix"/><paramref name="imageName"/>.</summary>
    public Container ChunkSegContainer(string imageName)
    {
        var matches = ChunkSegContainers.Where(c => c.Owner.IsLongRunning && ImageName(c.Image) == ImagePrefix + imageName).ToList();
        Assert.True(matches.Count == 1, $"expected one long-running container running {ImagePrefix}{imageName}, found {matches.Count}");
        return matches[0];
    }

    /// <summary>The one ChunkSeg container that runs the CLI command <paramref name="command"/> ("coordinator", "worker", "submit").</summary>
    public Container Command(string command)
    {
        var matches = ChunkSegContainers.Where(c => c.Args.FirstOrDefault() == command).ToList();
        Assert.True(matches.Count == 1, $"expected one container running `chunkseg {command}`, found {matches.Count}");
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
