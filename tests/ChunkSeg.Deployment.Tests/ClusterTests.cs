using System.Globalization;
using System.Text.RegularExpressions;

namespace ChunkSeg.Deployment.Tests;

/// <summary>
/// The Akka cluster's wiring: the coordinators' StatefulSet and headless Service, the seed addresses every member and
/// client joins through, the address each member advertises, the remoting port, the shared state and the cluster secret.
/// </summary>
public sealed partial class ClusterTests
{
    private const string SecretFileVar = "CHUNKSEG_CLUSTER_SECRET_FILE";

    private readonly Manifests _k8s = Manifests.Load();

    private Container Coordinator => _k8s.Command("coordinator");
    private Container Worker => _k8s.Command("worker");
    private Container Client => _k8s.Command("submit");

    public static TheoryData<string> Members => ["coordinator", "worker"];

    public static TheoryData<string> SeedUsers => ["coordinator", "worker", "submit"];

    [Fact]
    public void Coordinators_are_a_StatefulSet_of_two_or_more_started_in_parallel()
    {
        var coordinators = Coordinator.Owner;
        Assert.Equal("StatefulSet", coordinators.Kind);
        Assert.True(coordinators.Replicas >= 2, $"{coordinators.Kind} {coordinators.Name}: {coordinators.Replicas} replica(s); the job manager's singleton needs a standby (2 or more)");
        // OrderedReady would hold coordinator-1 back while coordinator-0 is not ready, and coordinator-0 is not ready until
        // it is an Up member: a lost coordinator-0 would then stop the standby from starting.
        Assert.Equal("Parallel", coordinators.Doc.Root.StringAt("spec.podManagementPolicy"));
    }

    [Fact]
    public void The_headless_Service_names_the_coordinators_before_they_are_ready_and_carries_the_remoting_port()
    {
        var coordinators = Coordinator.Owner;
        var service = HeadlessService();
        Assert.Equal("None", service.Root.StringAt("spec.clusterIP"));
        Assert.Equal("true", service.Root.StringAt("spec.publishNotReadyAddresses"));
        Assert.Equal(new[] { coordinators }, _k8s.SelectedBy(service));
        int port = RemotingPort(Coordinator);
        var (_, containerPort, target) = _k8s.ResolveServicePort(service, port);
        Assert.Equal(port, containerPort);
        Assert.Equal(coordinators, target.Owner);
    }

    [Fact]
    public void Each_coordinator_advertises_its_DNS_name_under_the_headless_Service()
    {
        var coordinators = Coordinator.Owner;
        string service = HeadlessService().Name;
        for (int ordinal = 0; ordinal < coordinators.Replicas; ordinal++)
        {
            Assert.Equal($"{coordinators.Name}-{ordinal}.{service}.{Manifests.Namespace}.svc.cluster.local", AdvertisedHost(ordinal));
        }
    }

    [Theory]
    [MemberData(nameof(SeedUsers))]
    public void Every_member_and_client_joins_through_the_addresses_the_coordinators_advertise(string command)
    {
        // Akka compares addresses as text: a seed must be written exactly as the coordinator it names advertises itself.
        var coordinators = Coordinator.Owner;
        string port = RemotingPort(Coordinator).ToString(CultureInfo.InvariantCulture);
        var expected = Enumerable.Range(0, coordinators.Replicas).Select(i => $"{AdvertisedHost(i)}:{port}").ToList();

        var c = _k8s.Command(command);
        var seeds = Seeds(c);
        Assert.True(seeds.Count > 0, $"{c}: no --seed and no CHUNKSEG_SEEDS");
        Assert.Equal(expected, seeds);
    }

    [Theory]
    [MemberData(nameof(Members))]
    public void The_remoting_port_is_a_declared_container_port(string command)
    {
        var c = _k8s.Command(command);
        int port = RemotingPort(c);
        Assert.Equal(4053, port);
        Assert.True(c.ResolvePort(port.ToString(CultureInfo.InvariantCulture)) == port, $"{c}: --port {port} is not a declared containerPort");
        Assert.NotEqual(c.Option("--http-port"), port.ToString(CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Gpu_nodes_advertise_their_pod_IP()
    {
        var worker = Worker;
        string? hostname = worker.Option("--hostname");
        Assert.True(hostname is not null, $"{worker}: no --hostname; the other members could not reach it");
        Assert.Equal("10.1.2.3", worker.Expand(hostname!, new Dictionary<string, string> { ["status.podIP"] = "10.1.2.3" }));
    }

    [Fact]
    public void The_coordinators_keep_the_jobs_state_on_the_shared_ReadWriteMany_volume()
    {
        var coordinator = Coordinator;
        string? storeRoot = coordinator.Option("--store-root");
        Assert.True(storeRoot is not null, $"{coordinator}: no --store-root");
        string state = coordinator.Option("--state") ?? storeRoot!.TrimEnd('/') + "/.chunkseg-cluster";
        var mount = coordinator.Spec.MapsAt("volumeMounts")
            .Where(m => state.StartsWith((m.StringAt("mountPath") ?? "").TrimEnd('/') + "/", StringComparison.Ordinal))
            .MaxBy(m => m.StringAt("mountPath")!.Length);
        Assert.True(mount is not null, $"{coordinator}: --state {state} is on no mounted volume: a standby would not find the jobs");
        Assert.Equal(DataClaim(coordinator, mount!), DataClaim(Worker, storeRoot!));
        AssertReadWriteMany(DataClaim(coordinator, mount!));
    }

    [Fact]
    public void The_client_Job_submits_paths_of_the_shared_volume_mounted_where_the_cluster_has_it_and_waits()
    {
        var client = Client;
        string storeRoot = Coordinator.Option("--store-root")!;
        Assert.Equal(storeRoot, Worker.Option("--store-root"));
        Assert.Equal("Job", client.Owner.Kind);
        Assert.Equal("Never", client.Owner.PodSpec.StringAt("restartPolicy"));
        Assert.Contains("--wait", client.Args);

        // submit opens the input and the model before it sends the job: they must be where the workers will look.
        string? input = client.Args.Skip(1).FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
        var paths = new[] { ("the input", input), ("--model", client.Option("--model")), ("--out", client.Option("--out")) };
        foreach (var (what, path) in paths)
        {
            Assert.True(path is not null && path.StartsWith(storeRoot.TrimEnd('/') + "/", StringComparison.Ordinal),
                $"{client}: {what} {path} is not below the cluster's --store-root {storeRoot}");
        }
        Assert.Equal(DataClaim(Coordinator, storeRoot), DataClaim(client, storeRoot));
    }

    [Theory]
    [InlineData("coordinator")]
    [InlineData("submit")]
    public void The_cluster_secret_is_a_file_from_the_documented_Secret(string command)
    {
        var c = _k8s.Command(command);
        string? file = c.EnvValue(SecretFileVar);
        Assert.True(file is not null, $"{c}: no {SecretFileVar}");
        Assert.Null(ManifestTests.SecretFile(c, file!, ManifestTests.DocumentedSecrets()));
        Assert.Equal(ClusterSecretName(), c.Owner.Volume(MountOf(c, file!))?.StringAt("secret.secretName"));
    }

    [Fact]
    public void The_secret_is_never_a_literal_or_an_argument_and_the_GPU_nodes_do_not_get_it()
    {
        foreach (var c in _k8s.ChunkSegContainers)
        {
            Assert.True(c.EnvVar("CHUNKSEG_CLUSTER_SECRET") is null, $"{c}: CHUNKSEG_CLUSTER_SECRET is set; mount the Secret and set {SecretFileVar} instead");
            Assert.DoesNotContain(c.Args, a => a.Contains("secret", StringComparison.OrdinalIgnoreCase));
        }
        // Workers run no mutating command: least privilege.
        var worker = Worker;
        Assert.Null(worker.EnvVar(SecretFileVar));
        Assert.DoesNotContain(worker.Owner.PodSpec.MapsAt("volumes"), v => v.StringAt("secret.secretName") == ClusterSecretName());
    }

    [Fact]
    public void No_broker_is_left_in_the_manifests_or_the_Dockerfiles()
    {
        var files = Directory.EnumerateFiles(Repo.K8s, "*.yaml", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Repo.Docker, "*.Dockerfile"))
            .Append(Repo.PathOf(".dockerignore"));
        var hits = new List<string>();
        foreach (string file in files)
        {
            int line = 0;
            foreach (string text in File.ReadLines(file))
            {
                line++;
                if (Broker().IsMatch(text)) hits.Add($"{Repo.Relative(Repo.Root, file)}:{line}: {text.Trim()}");
            }
        }
        Assert.Empty(hits);
    }

    /// <summary>The coordinator's --hostname for the pod with this ordinal, its downward-API references filled in.</summary>
    private string AdvertisedHost(int ordinal)
    {
        var coordinator = Coordinator;
        string? hostname = coordinator.Option("--hostname");
        Assert.True(hostname is not null, $"{coordinator}: no --hostname");
        return coordinator.Expand(hostname!, new Dictionary<string, string>
        {
            ["metadata.name"] = $"{coordinator.Owner.Name}-{ordinal}",
            ["metadata.namespace"] = Manifests.Namespace,
        });
    }

    /// <summary>The seeds a container joins through: its --seed options, else CHUNKSEG_SEEDS (comma-separated), expanded.</summary>
    private static List<string> Seeds(Container c)
    {
        var fields = new Dictionary<string, string> { ["metadata.namespace"] = Manifests.Namespace };
        var seeds = c.Options("--seed").ToList();
        if (seeds.Count == 0 && c.EnvVar("CHUNKSEG_SEEDS") is not null)
            seeds = [.. c.Expand("$(CHUNKSEG_SEEDS)", fields).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
        return [.. seeds.Select(s => c.Expand(s, fields))];
    }

    private YamlDoc HeadlessService()
    {
        string? name = Coordinator.Owner.Doc.Root.StringAt("spec.serviceName");
        Assert.False(string.IsNullOrEmpty(name), "the coordinators' StatefulSet names no serviceName: its pods get no DNS names");
        return _k8s.Service(name!);
    }

    private static int RemotingPort(Container c) => c.PortOption("--port");

    /// <summary>The PVC mounted at <paramref name="path"/> in <paramref name="c"/>.</summary>
    private static string DataClaim(Container c, string path) =>
        DataClaim(c, c.Spec.MapsAt("volumeMounts").FirstOrDefault(m => m.StringAt("mountPath") == path)
            ?? throw new Xunit.Sdk.XunitException($"{c}: nothing is mounted at {path}"));

    private static string DataClaim(Container c, Map mount) =>
        c.Owner.Volume(mount.StringAt("name") ?? "")?.StringAt("persistentVolumeClaim.claimName")
            ?? throw new Xunit.Sdk.XunitException($"{c}: the volume at {mount.StringAt("mountPath")} is not a PersistentVolumeClaim");

    private void AssertReadWriteMany(string claim)
    {
        var pvc = _k8s.OfKind("PersistentVolumeClaim").SingleOrDefault(p => p.Name == claim);
        Assert.True(pvc is not null, $"no PersistentVolumeClaim {claim} in k8s/");
        Assert.Contains("ReadWriteMany", pvc!.Root.StringsAt("spec.accessModes"));
    }

    private static string MountOf(Container c, string file) =>
        c.Spec.MapsAt("volumeMounts").First(m => file.StartsWith((m.StringAt("mountPath") ?? "").TrimEnd('/') + "/", StringComparison.Ordinal)).StringAt("name")!;

    /// <summary>The Secret the template in k8s/examples ships (and the README creates).</summary>
    private string ClusterSecretName()
    {
        var secret = _k8s.OfKind("Secret").SingleOrDefault();
        Assert.True(secret is not null, "expected one Secret template in k8s/");
        return secret!.Name;
    }

    [GeneratedRegex(@"rabbitmq|amqp|broker|\b5672\b|\b15672\b", RegexOptions.IgnoreCase)]
    private static partial Regex Broker();
}
