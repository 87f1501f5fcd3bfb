namespace ChunkSeg.Deployment.Tests;

/// <summary>
/// Akka remoting trusts whoever connects: the NetworkPolicies must keep its port closed to everything but the cluster's
/// own pods, and still let the members probe, resolve names and export telemetry.
/// </summary>
public sealed class NetworkPolicyTests
{
    private readonly Manifests _k8s = Manifests.Load();
    private readonly NetworkPolicies _policies = new(Manifests.Load());

    public static TheoryData<string> Members => ["coordinator", "worker"];

    private Pod PodRunning(string command) => _policies.PodOf(_k8s.Command(command).Owner);

    private Pod Collector => _policies.PodOf(_k8s.Workloads.Single(w => w.Containers.Any(c => Manifests.ImageName(c.Image) == "otel/opentelemetry-collector-contrib")));

    private static int RemotingPort(Container c) => c.PortOption("--port");

    [Theory]
    [MemberData(nameof(Members))]
    public void Members_are_selected_by_an_ingress_policy(string command)
    {
        var pod = PodRunning(command);
        Assert.True(_policies.Selecting(pod, "Ingress").Count > 0, $"no NetworkPolicy selects {pod}: its remoting port is open to every pod of the cluster");
    }

    [Theory]
    [MemberData(nameof(Members))]
    public void The_cluster_s_own_pods_reach_the_remoting_port(string command)
    {
        var target = PodRunning(command);
        int port = RemotingPort(_k8s.Command(command));
        foreach (string from in new[] { "coordinator", "worker", "submit" })
        {
            var source = PodRunning(from);
            Assert.True(_policies.Allows(source, target, port), $"{source} cannot reach port {port} of {target}");
        }
    }

    [Theory]
    [MemberData(nameof(Members))]
    public void Nothing_else_reaches_the_remoting_port(string command)
    {
        var target = PodRunning(command);
        int port = RemotingPort(_k8s.Command(command));
        var worker = PodRunning("worker");
        var strangers = new[]
        {
            Collector,
            _policies.Stranger("an unlabelled pod in chunkseg", Manifests.Namespace, new Map()),
            _policies.Stranger("a pod of the chunkseg app that is not a cluster pod", Manifests.Namespace, new Map { ["app.kubernetes.io/part-of"] = "chunkseg" }),
            _policies.Stranger("a pod labelled like a GPU node in another namespace", "elsewhere", worker.Labels),
        };
        foreach (var stranger in strangers)
            Assert.False(_policies.AllowsIngress(stranger, target, port), $"{stranger} can reach the remoting port {port} of {target}");
    }

    [Theory]
    [MemberData(nameof(Members))]
    public void The_http_port_is_open_to_the_namespace(string command)
    {
        var c = _k8s.Command(command);
        int port = c.PortOption("--http-port");
        var prober = _policies.Stranger("an unlabelled pod in chunkseg", Manifests.Namespace, new Map());
        Assert.True(_policies.AllowsIngress(prober, PodRunning(command), port), $"the http port {port} (probes, metrics, job page) of {c} is closed to the namespace");
    }

    [Theory]
    [MemberData(nameof(Members))]
    public void Members_export_telemetry_resolve_names_and_answer_clients(string command)
    {
        var c = _k8s.Command(command);
        var pod = PodRunning(command);
        var otlp = new Uri(c.EnvValue("OTEL_EXPORTER_OTLP_ENDPOINT") ?? throw new Xunit.Sdk.XunitException($"{c}: no OTEL_EXPORTER_OTLP_ENDPOINT"));
        Assert.True(_policies.Allows(pod, Collector, otlp.Port), $"{pod} cannot reach the collector on {otlp.Port}");

        var dns = _policies.Stranger("the cluster DNS", "kube-system", new Map { ["k8s-app"] = "kube-dns" });
        Assert.True(_policies.Allows(pod, dns, 53, "UDP"), $"{pod} cannot resolve names (UDP 53)");
        Assert.True(_policies.Allows(pod, dns, 53, "TCP"), $"{pod} cannot resolve names (TCP 53)");

        // A client's own remoting port is not fixed: the cluster must be able to connect back to it on any port.
        Assert.True(_policies.Allows(pod, PodRunning("submit"), 40123), $"{pod} cannot connect back to the client Job's pod");
    }
}
