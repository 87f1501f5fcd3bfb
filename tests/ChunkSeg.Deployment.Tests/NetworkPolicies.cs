namespace ChunkSeg.Deployment.Tests;

/// <summary>A pod as NetworkPolicy sees it: its namespace (name and labels), its labels, and the workload it comes from, if any.</summary>
internal sealed record Pod(string Description, string Namespace, Map NamespaceLabels, Map Labels, Workload? Workload = null)
{
    /// <summary>Whether <paramref name="port"/> is this pod's port <paramref name="reference"/> (a number or a containerPort name).</summary>
    public bool HasPort(string reference, int port) =>
        reference == port.ToString(System.Globalization.CultureInfo.InvariantCulture)
        || Workload?.Containers.Any(c => c.ResolvePort(reference) == port) == true;

    public override string ToString() => Description;
}

/// <summary>
/// The NetworkPolicies of k8s/ evaluated as Kubernetes does: a pod selected by no policy of a type is open in that
/// direction; a selected pod admits what at least one rule of a selecting policy admits. ipBlock peers are taken to
/// match any pod (so a rule that opens a port to an IP range counts as opening it to everyone).
/// </summary>
internal sealed class NetworkPolicies(Manifests k8s)
{
    private readonly List<YamlDoc> _policies = [.. k8s.OfKind("NetworkPolicy")];

    public int Count => _policies.Count;

    /// <summary>A pod of <paramref name="workload"/>, in the chunkseg namespace.</summary>
    public Pod PodOf(Workload workload) =>
        new($"a pod of {workload.Kind} {workload.Name}", Manifests.Namespace, NamespaceLabels(Manifests.Namespace), workload.PodLabels, workload);

    /// <summary>A pod that k8s/ does not describe (someone else's, or one in another namespace).</summary>
    public Pod Stranger(string description, string ns, Map labels) => new(description, ns, NamespaceLabels(ns), labels);

    /// <summary>The labels a namespace carries: those of k8s/namespace.yaml for chunkseg, and the one Kubernetes sets on every namespace.</summary>
    public Map NamespaceLabels(string ns)
    {
        var labels = new Map();
        var doc = k8s.OfKind("Namespace").FirstOrDefault(d => d.Name == ns);
        foreach (var (key, value) in doc?.Root.MapAt("metadata.labels") ?? new Map()) labels[key] = value;
        labels["kubernetes.io/metadata.name"] = ns;
        return labels;
    }

    /// <summary>The policies of type <paramref name="type"/> ("Ingress", "Egress") that select <paramref name="pod"/>.</summary>
    public List<YamlDoc> Selecting(Pod pod, string type) =>
        _policies.Where(p => p.Namespace == pod.Namespace && Types(p).Contains(type) && LabelSelector.Matches(p.Root.MapAt("spec.podSelector"), pod.Labels)).ToList();

    /// <summary>Whether <paramref name="from"/> may open a connection to <paramref name="to"/>'s <paramref name="port"/>: the egress of the one and the ingress of the other.</summary>
    public bool Allows(Pod from, Pod to, int port, string protocol = "TCP") =>
        Admits(Selecting(from, "Egress"), "egress", "to", to, to, port, protocol)
        && Admits(Selecting(to, "Ingress"), "ingress", "from", from, to, port, protocol);

    public bool AllowsIngress(Pod from, Pod to, int port, string protocol = "TCP") =>
        Admits(Selecting(to, "Ingress"), "ingress", "from", from, to, port, protocol);

    private static bool Admits(List<YamlDoc> policies, string rules, string peers, Pod peer, Pod destination, int port, string protocol) =>
        policies.Count == 0 || policies.Any(policy => policy.Root.MapsAt("spec." + rules).Any(rule =>
            PortMatches(rule, destination, port, protocol) && PeerMatches(rule.ListAt(peers), policy.Namespace!, peer)));

    // policyTypes defaults to Ingress, plus Egress when the policy has egress rules.
    private static List<string> Types(YamlDoc policy)
    {
        var types = policy.Root.StringsAt("spec.policyTypes").ToList();
        if (types.Count > 0) return types;
        return policy.Root.At("spec.egress") is null ? ["Ingress"] : ["Ingress", "Egress"];
    }

    private static bool PortMatches(Map rule, Pod destination, int port, string protocol)
    {
        var ports = rule.MapsAt("ports").ToList();
        if (rule.At("ports") is null || ports.Count == 0) return true;
        return ports.Any(p =>
        {
            if ((p.StringAt("protocol") ?? "TCP") != protocol) return false;
            if (p.StringAt("port") is not { } reference) return true;
            if (int.TryParse(reference, out int first) && int.TryParse(p.StringAt("endPort"), out int last)) return port >= first && port <= last;
            return destination.HasPort(reference, port);
        });
    }

    private static bool PeerMatches(IReadOnlyList<object?> peers, string policyNamespace, Pod pod)
    {
        if (peers.Count == 0) return true;
        return peers.OfType<Map>().Any(peer =>
        {
            if (peer.At("ipBlock") is not null) return true;
            var namespaces = peer.MapAt("namespaceSelector");
            bool namespaceMatches = namespaces is null ? pod.Namespace == policyNamespace : LabelSelector.Matches(namespaces, pod.NamespaceLabels);
            return namespaceMatches && (peer.MapAt("podSelector") is not { } pods || LabelSelector.Matches(pods, pod.Labels));
        });
    }
}

/// <summary>A Kubernetes label selector (matchLabels and matchExpressions); an empty one selects everything.</summary>
internal static class LabelSelector
{
    public static bool Matches(Map? selector, Map labels)
    {
        if (selector is null) return false;
        foreach (var (key, value) in selector.MapAt("matchLabels") ?? new Map())
        {
            if (!labels.TryGetValue(key, out var actual) || !Equals(actual, value)) return false;
        }
        foreach (var expression in selector.MapsAt("matchExpressions"))
        {
            string key = expression.StringAt("key") ?? "";
            var values = expression.StringsAt("values").ToList();
            bool has = labels.TryGetValue(key, out var actual);
            bool ok = expression.StringAt("operator") switch
            {
                "In" => has && values.Contains(actual as string ?? ""),
                "NotIn" => !has || !values.Contains(actual as string ?? ""),
                "Exists" => has,
                "DoesNotExist" => !has,
                var op => throw new Xunit.Sdk.XunitException($"unknown label selector operator {op}"),
            };
            if (!ok) return false;
        }
        return true;
    }
}
