using System.Text.RegularExpressions;

namespace ChunkSeg.Deployment.Tests;

/// <summary>The k8s/ manifests on their own: well-formed, complete, and wired to themselves.</summary>
public sealed partial class ManifestTests
{
    private readonly Manifests _k8s = Manifests.Load();

    [Fact]
    public void Every_document_has_apiVersion_kind_name_and_the_chunkseg_namespace()
    {
        Assert.NotEmpty(_k8s.Docs);
        var problems = new List<string>();
        foreach (var doc in _k8s.Docs)
        {
            if (string.IsNullOrEmpty(doc.Root.StringAt("apiVersion"))) problems.Add($"{doc}: no apiVersion");
            if (string.IsNullOrEmpty(doc.Kind)) problems.Add($"{doc}: no kind");
            if (string.IsNullOrEmpty(doc.Name)) problems.Add($"{doc}: no metadata.name");
            if (doc.Kind == "Namespace")
            {
                if (doc.Name != Manifests.Namespace) problems.Add($"{doc}: the namespace must be {Manifests.Namespace}");
            }
            else if (doc.Namespace != Manifests.Namespace)
            {
                problems.Add($"{doc}: metadata.namespace is {doc.Namespace ?? "(none)"}, expected {Manifests.Namespace}");
            }
        }
        Assert.Empty(problems);
        Assert.Single(_k8s.OfKind("Namespace"));
    }

    [Fact]
    public void Kustomization_lists_exactly_the_manifest_files_present()
    {
        var kustomization = _k8s.Kustomization;
        Assert.True(kustomization is not null, $"k8s/{Manifests.KustomizationFile} is missing");
        Assert.Equal(Manifests.Namespace, kustomization!.StringAt("namespace"));

        var listed = kustomization.StringsAt("resources").ToList();
        Assert.Equal(listed.Count, listed.Distinct(StringComparer.Ordinal).Count());
        // examples/ (the Secret template, the client Job) are applied by hand, never with the rest.
        var present = _k8s.Files.Where(f => f != Manifests.KustomizationFile && !Manifests.IsExample(f)).ToList();
        Assert.Equal(present.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.Contains(_k8s.Files, Manifests.IsExample);

        foreach (var generator in kustomization.MapsAt("configMapGenerator"))
        {
            foreach (string file in generator.StringsAt("files"))
            {
                string path = file.Contains('=', StringComparison.Ordinal) ? file[(file.IndexOf('=', StringComparison.Ordinal) + 1)..] : file;
                Assert.True(File.Exists(Path.Combine(Repo.K8s, path)), $"configMapGenerator {generator.StringAt("name")} names k8s/{path}, which does not exist");
            }
        }
    }

    [Fact]
    public void Secrets_are_value_less_templates_of_the_documented_ones_and_not_applied()
    {
        var documented = DocumentedSecrets();
        var secrets = _k8s.OfKind("Secret").ToList();
        Assert.NotEmpty(secrets);
        foreach (var secret in secrets)
        {
            Assert.True(secret.Root.At("data") is null && secret.Root.At("stringData") is null,
                $"{secret} carries secret values; create it with kubectl instead (see k8s/README.md)");
            // Applied with the rest, an empty Secret would stand where `kubectl create secret` should create the real one.
            Assert.True(secret.File.StartsWith("k8s/" + Manifests.ExamplesDir, StringComparison.Ordinal), $"{secret}: a Secret template belongs in k8s/{Manifests.ExamplesDir}");
            Assert.True(documented.ContainsKey(secret.Name), $"{secret}: k8s/README.md does not create it (`kubectl create secret generic {secret.Name} ...`)");
        }
        // Every Secret a pod mounts or reads is one of the templates.
        var referenced = _k8s.Workloads.SelectMany(w => w.PodSpec.MapsAt("volumes").Select(v => v.StringAt("secret.secretName")))
            .Concat(_k8s.Containers.SelectMany(c => c.Env.Select(e => e.StringAt("valueFrom.secretKeyRef.name"))))
            .OfType<string>().Distinct();
        Assert.All(referenced, name => Assert.Contains(name, secrets.Select(s => s.Name)));
    }

    [Fact]
    public void Every_container_image_is_pinned()
    {
        Assert.NotEmpty(_k8s.Containers);
        var unpinned = _k8s.Containers.Where(c => !Manifests.IsPinned(c.Image)).Select(c => $"{c}: image \"{c.Image}\"");
        Assert.Empty(unpinned);
    }

    [Fact]
    public void Every_container_requests_and_limits_cpu_and_memory()
    {
        var problems = new List<string>();
        foreach (var c in _k8s.Containers)
        {
            foreach (string field in new[] { "requests.cpu", "requests.memory", "limits.cpu", "limits.memory" })
            {
                if (string.IsNullOrEmpty(c.Spec.StringAt("resources." + field))) problems.Add($"{c}: no resources.{field}");
            }
        }
        Assert.Empty(problems);
    }

    [Fact]
    public void Every_long_running_container_has_liveness_and_readiness_probes()
    {
        var problems = new List<string>();
        foreach (var c in _k8s.Workloads.Where(w => w.IsLongRunning).SelectMany(w => w.PodSpec.MapsAt("containers").Select(s => new Container(w, s))))
        {
            foreach (string probe in new[] { "livenessProbe", "readinessProbe" })
            {
                var p = c.Spec.MapAt(probe);
                if (p is null || !(p.ContainsKey("httpGet") || p.ContainsKey("tcpSocket") || p.ContainsKey("exec") || p.ContainsKey("grpc")))
                    problems.Add($"{c}: no {probe} with a handler");
            }
        }
        Assert.Empty(problems);
    }

    [Fact]
    public void Probe_ports_are_declared_container_ports()
    {
        var problems = new List<string>();
        int checkedPorts = 0;
        foreach (var c in _k8s.Containers)
        {
            foreach (string probe in new[] { "livenessProbe", "readinessProbe", "startupProbe" })
            {
                foreach (string handler in new[] { "httpGet", "tcpSocket", "grpc" })
                {
                    if (c.Spec.StringAt($"{probe}.{handler}.port") is not { } port) continue;
                    checkedPorts++;
                    if (c.ResolvePort(port) is null) problems.Add($"{c}: {probe} port {port} is not a declared containerPort");
                }
            }
        }
        Assert.Empty(problems);
        Assert.True(checkedPorts >= 4, $"expected HTTP probes on the coordinator and the GPU nodes, found {checkedPorts} probe ports");
    }

    [Fact]
    public void ChunkSeg_containers_run_as_non_root_on_a_read_only_root_filesystem()
    {
        var chunkseg = _k8s.ChunkSegContainers.ToList();
        Assert.True(chunkseg.Count >= 2, "expected the coordinator and the GPU-node containers");
        var problems = new List<string>();
        foreach (var c in chunkseg)
        {
            if (c.Security("runAsNonRoot") != "true") problems.Add($"{c}: runAsNonRoot is not true");
            if (c.Security("runAsUser") is { } uid && uid == "0") problems.Add($"{c}: runAsUser 0");
            if (c.Spec.StringAt("securityContext.readOnlyRootFilesystem") != "true") problems.Add($"{c}: readOnlyRootFilesystem is not true");
            if (c.Spec.StringAt("securityContext.allowPrivilegeEscalation") != "false") problems.Add($"{c}: allowPrivilegeEscalation is not false");
            // A read-only root needs somewhere to write temporary files (.NET's diagnostics socket among them).
            var tmp = c.Spec.MapsAt("volumeMounts").FirstOrDefault(m => m.StringAt("mountPath") == "/tmp");
            if (tmp is null || c.Owner.Volume(tmp.StringAt("name") ?? "")?.At("emptyDir") is null)
                problems.Add($"{c}: no emptyDir mounted at /tmp");
        }
        Assert.Empty(problems);
    }

    [Fact]
    public void The_gpu_node_asks_for_one_GPU_tolerates_GPU_nodes_and_has_time_to_drain()
    {
        var gpu = _k8s.ChunkSegContainer("gpu-node");
        Assert.Equal("1", LimitsGpu(gpu));
        Assert.Contains(gpu.Owner.PodSpec.MapsAt("tolerations"), t => t.StringAt("key") == "nvidia.com/gpu");
        Assert.True(int.TryParse(gpu.Owner.PodSpec.StringAt("terminationGracePeriodSeconds"), out int grace) && grace >= 300,
            "the GPU node finishes its in-flight chunks on SIGTERM: terminationGracePeriodSeconds must be at least 300");
        Assert.Equal("gpu", gpu.Option("--backend"));

        // The coordinator gets no GPU.
        var coordinator = _k8s.ChunkSegContainer("coordinator");
        Assert.Null(LimitsGpu(coordinator));
    }

    // "nvidia.com/gpu" holds dots, so it cannot go through a dotted path.
    private static string? LimitsGpu(Container c) => c.Spec.MapAt("resources.limits") is { } limits && limits.TryGetValue("nvidia.com/gpu", out var v) ? v as string : null;

    [Fact]
    public void Service_selectors_match_pod_labels_and_target_ports_match_container_ports()
    {
        var services = _k8s.OfKind("Service").ToList();
        Assert.NotEmpty(services);
        var problems = new List<string>();
        foreach (var service in services)
        {
            var selected = _k8s.SelectedBy(service);
            if (selected.Count != 1)
            {
                problems.Add($"{service}: its selector matches {selected.Count} workloads' pod labels, expected exactly one");
                continue;
            }
            foreach (var port in service.Root.MapsAt("spec.ports"))
            {
                string target = port.StringAt("targetPort") ?? port.StringAt("port") ?? "";
                if (!selected[0].Containers.Any(c => c.ResolvePort(target) is not null))
                    problems.Add($"{service}: targetPort {target} is not a containerPort of {selected[0].Kind} {selected[0].Name}");
            }
        }
        Assert.Empty(problems);
    }

    [Fact]
    public void Credentials_come_only_from_the_documented_Secret()
    {
        var secrets = DocumentedSecrets();
        Assert.NotEmpty(secrets);
        var problems = new List<string>();
        int credentialVars = 0;
        foreach (var c in _k8s.Containers)
        {
            foreach (var env in c.Env)
            {
                string name = env.StringAt("name") ?? "";
                if (!CredentialName().IsMatch(name)) continue;
                credentialVars++;
                if (env.MapAt("valueFrom.secretKeyRef") is { } keyRef)
                {
                    string secret = keyRef.StringAt("name") ?? "", key = keyRef.StringAt("key") ?? "";
                    if (!secrets.TryGetValue(secret, out var keys) || !keys.Contains(key))
                        problems.Add($"{c}: {name} reads key {key} of Secret {secret}, which the README does not create");
                }
                else if (name.EndsWith("_FILE", StringComparison.Ordinal) && env.StringAt("value") is { } file)
                {
                    if (SecretFile(c, file, secrets) is { } why) problems.Add($"{c}: {name}={file}: {why}");
                }
                else
                {
                    problems.Add($"{c}: {name} is neither a secretKeyRef nor a *_FILE path into a mounted Secret");
                }
            }
        }
        Assert.Empty(problems);
        Assert.True(credentialVars >= 2, $"expected the cluster secret in the coordinators and the client Job, found {credentialVars} credential variables");
    }

    [Fact]
    public void Every_env_reference_names_a_variable_the_container_defines_first()
    {
        // Kubernetes leaves an unresolved $(VAR) as literal text: "--hostname $(POD_NAME)..." would advertise that text.
        var problems = new List<string>();
        int references = 0;
        foreach (var c in _k8s.Containers)
        {
            var env = c.Env.Select(e => e.StringAt("name") ?? "").ToList();
            foreach (string arg in c.Spec.StringsAt("command").Concat(c.Args))
            {
                foreach (string name in Container.References(arg))
                {
                    references++;
                    if (!env.Contains(name)) problems.Add($"{c}: argument \"{arg}\" refers to $({name}), which is not in env");
                }
            }
            // In env values only the variables defined above count.
            for (int i = 0; i < env.Count; i++)
            {
                foreach (string name in Container.References(c.Env.ElementAt(i).StringAt("value") ?? ""))
                {
                    references++;
                    if (!env.Take(i).Contains(name)) problems.Add($"{c}: env {env[i]} refers to $({name}), which is not defined before it");
                }
            }
        }
        Assert.Empty(problems);
        Assert.True(references >= 4, $"expected the downward-API references of the hostnames and telemetry attributes, found {references}");
    }

    /// <summary>Null when <paramref name="file"/> is a key of a Secret volume mounted (read-only) in the container; else why not.</summary>
    internal static string? SecretFile(Container c, string file, Dictionary<string, HashSet<string>> secrets)
    {
        foreach (var mount in c.Spec.MapsAt("volumeMounts"))
        {
            string dir = (mount.StringAt("mountPath") ?? "").TrimEnd('/') + "/";
            if (!file.StartsWith(dir, StringComparison.Ordinal)) continue;
            var volume = c.Owner.Volume(mount.StringAt("name") ?? "");
            if (volume?.MapAt("secret") is not { } secret) return $"{dir} is not a Secret volume";
            if (mount.StringAt("readOnly") != "true") return $"the Secret volume at {dir} is not mounted readOnly";
            string secretName = secret.StringAt("secretName") ?? "";
            if (!secrets.TryGetValue(secretName, out var keys)) return $"Secret {secretName} is not one the README creates";
            string relative = file[dir.Length..];
            var items = secret.MapsAt("items").ToList();
            string? key = items.Count == 0 ? relative : items.FirstOrDefault(i => i.StringAt("path") == relative)?.StringAt("key");
            if (key is null) return $"the Secret volume at {dir} projects no file {relative}";
            return keys.Contains(key) ? null : $"Secret {secretName} has no key {key} (the README creates {string.Join(", ", keys)})";
        }
        return "no volume is mounted there";
    }

    /// <summary>Secrets and their keys as k8s/README.md creates them: `kubectl ... create secret generic NAME --from-file=KEY=...` (or --from-literal).</summary>
    internal static Dictionary<string, HashSet<string>> DocumentedSecrets()
    {
        string readme = Regex.Replace(Repo.Read("k8s", "README.md"), @"\\\r?\n\s*", " ");
        var secrets = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (Match m in CreateSecret().Matches(readme))
        {
            var keys = FromLiteral().Matches(m.Groups["rest"].Value).Select(k => k.Groups[1].Value);
            secrets[m.Groups["name"].Value] = [.. keys];
        }
        return secrets;
    }

    [GeneratedRegex(@"USER|PASS|SECRET|TOKEN|CREDENTIAL|API_?KEY", RegexOptions.IgnoreCase)]
    private static partial Regex CredentialName();

    [GeneratedRegex(@"kubectl\s+(?:-n\s+\S+\s+)?create\s+secret\s+generic\s+(?<name>[a-z0-9-]+)(?<rest>[^\n]*)")]
    private static partial Regex CreateSecret();

    [GeneratedRegex(@"--from-(?:literal|file)=([A-Za-z0-9_.-]+)=")]
    private static partial Regex FromLiteral();
}
