using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using ChunkSeg.Cluster;
using ChunkSeg.Cluster.Dispatch;
using ChunkSeg.Cluster.Node;
using ChunkSeg.Cli.Distributed;
using ChunkSeg.Cli.Monitoring;
using ChunkSeg.Pipelines;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// The cluster's commands: `coordinator` and `worker` (long-running members of the Akka.NET cluster), `submit`, `status`,
/// `cancel` and `cluster show|shards|leave|down` (clients, through the seeds' receptionists). Mutating requests are
/// signed with the cluster secret from the environment or a mounted file, never from the command line.
/// </summary>
internal static class ClusterCommands
{
    /// <summary>How long SIGTERM may take: a gpu-node finishes the chunks in hand, then leaves the cluster.</summary>
    public static readonly TimeSpan DrainTimeout = ClusterMember.DrainTimeout + TimeSpan.FromMinutes(1);

    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(20);

    public static readonly string[] LongRunning = ["worker", "coordinator"];

    private static Option<string[]> SeedOption() => new("--seed")
    {
        Description = $"A seed node HOST:PORT (repeatable; default: ${ClusterSettings.SeedsVariable}=HOST:PORT,HOST:PORT)",
        AllowMultipleArgumentsPerToken = false,
    };

    private static Option<int> PortOption() => new("--port")
    {
        Description = $"This member's cluster port (default {ClusterSettings.DefaultPort})",
        DefaultValueFactory = _ => ClusterSettings.DefaultPort,
    };

    private static Option<string?> HostnameOption() => new("--hostname")
    {
        Description = "The address other members reach this one at (default: this machine's host name)",
    };

    private static Option<int> HttpPortOption(string what) => new("--http-port")
    {
        Description = $"Serve /healthz and /readyz (Kubernetes' probes), /metrics (Prometheus){what} on this port (0: none)",
        DefaultValueFactory = _ => 0,
    };

    private static Option<string> HttpAddressOption() => new("--http-address")
    {
        Description = "The address --http-port listens on (default 0.0.0.0: all interfaces; 127.0.0.1: this machine only)",
        DefaultValueFactory = _ => "0.0.0.0",
    };

    private static Option<bool> JsonOption(string what) => new("--json") { Description = $"Print {what} as JSON" };

    public static IEnumerable<Command> Create(CommandContext context) =>
        [Worker(context), Coordinator(context), Submit(context), Status(context), Cancel(context), ClusterCommand(context)];

    private static ClusterSettings Member(ParseResult parse, Option<string?> hostname, Option<int> port, Option<string[]> seeds, string role)
    {
        int p = parse.GetValue(port);
        if (p is < 1 or > 65535) throw new UsageException($"--port {p}: not a port number (1-65535)");
        return new ClusterSettings([role], parse.GetValue(hostname) ?? Dns.GetHostName(), p, ClusterSettings.ParseSeeds(parse.GetValue(seeds)),
            ClusterTls.FromEnvironment());
    }

    private static Command Worker(CommandContext context)
    {
        var (seeds, port, hostname, http, httpAddress) = (SeedOption(), PortOption(), HostnameOption(), HttpPortOption(""), HttpAddressOption());
        var concurrency = new Option<int>("--concurrency") { Description = "Chunks processed at once (default: one per core)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var backend = Options.Backend("features, the forest, the segmentation and the split's blur");
        var storeRoot = new Option<string>("--store-root") { Description = "The shared store: every path a chunk names must lie below it", DefaultValueFactory = _ => "/" };
        var name = new Option<string?>("--name") { Description = "Node name in status (default: HOST-PID)" };
        var command = new Command("worker", "A gpu-node: hosts chunk actors of the cluster and processes their chunks until stopped (SIGTERM drains, then leaves)")
        {
            seeds, port, hostname, concurrency, backend, storeRoot, name, http, httpAddress,
        };
        command.SetAction(async (parse, ct) =>
        {
            var settings = Member(parse, hostname, port, seeds, ClusterSettings.GpuNodeRole);
            var endpoint = MonitoringServer.EndpointOf(parse.GetValue(http), parse.GetValue(httpAddress)!);
            int n = parse.GetValue(concurrency);
            if (n is < 1 or > 256) throw new UsageException($"--concurrency {n}: use 1 to 256");
            using var compute = Options.OpenBackend(parse.GetValue(backend));
            var guard = new StoreGuard(parse.GetValue(storeRoot)!);
            if (!Directory.Exists(guard.Root)) throw new UsageException($"--store-root {guard.Root}: no such folder");
            string nodeName = parse.GetValue(name) ?? $"{Environment.MachineName}-{Environment.ProcessId}";
            // A chunk is answered only once its output is on disk.
            VolumeStore.SyncWrites = true;
            using var logs = context.CreateLogs(LogLevel.Information);
            var drill = FaultDrill.FromEnvironment();
            var identity = new NodeIdentity(nodeName, compute.Name, compute.Name == "cpu" ? null : compute.Device, n);
            var member = ClusterMember.StartGpuNode(settings, identity,
                spec => FaultDrill.WrapAll(drill, spec, RunPasses.Open(spec, guard, nodeName, compute)), logs);
            logs.CreateLogger("worker").LogInformation("Node {Node} ({Backend}, {Concurrency} at once) joining through {Seeds} as {Host}:{Port}",
                nodeName, compute.Name, n, string.Join(",", settings.Seeds.Select(s => $"{s.Host}:{s.Port}")), settings.Hostname, settings.Port);
            await using var monitoring = await Monitor(endpoint, "chunkseg-worker", member, jobPage: false, ct).ConfigureAwait(false);
            return await member.RunUntilStoppedAsync(ct).ConfigureAwait(false) ? CliApp.Ok : CliApp.DataError;
        });
        return command;
    }

    private static Command Coordinator(CommandContext context)
    {
        var (seeds, port, hostname, http, httpAddress) = (SeedOption(), PortOption(), HostnameOption(), HttpPortOption(" and the job page at /"), HttpAddressOption());
        var storeRoot = new Option<string?>("--store-root") { Description = "The shared store; the job ledger goes to STORE/.chunkseg-cluster unless --state is given" };
        var state = new Option<string?>("--state") { Description = "Folder of the job ledger (jobs.jsonl); every coordinator of the cluster must see the same one" };
        var jobs = new Option<int>("--max-jobs") { Description = "Jobs run side by side, at most (the rest wait in order)", DefaultValueFactory = _ => 1 };
        var lease = new Option<double>("--chunk-lease") { Description = "Seconds a gpu-node may hold a chunk before it is sent elsewhere", DefaultValueFactory = _ => 600 };
        var command = new Command("coordinator", "A coordinator: hosts the job manager (a cluster singleton; run two for failover) and runs the jobs' passes over the gpu-nodes")
        {
            seeds, port, hostname, storeRoot, state, jobs, lease, http, httpAddress,
        };
        command.SetAction(async (parse, ct) =>
        {
            var settings = Member(parse, hostname, port, seeds, ClusterSettings.CoordinatorRole);
            var endpoint = MonitoringServer.EndpointOf(parse.GetValue(http), parse.GetValue(httpAddress)!);
            string stateDir = parse.GetValue(state) ?? (parse.GetValue(storeRoot) is { } root ? Path.Combine(root, ".chunkseg-cluster")
                : throw new UsageException("--state or --store-root: the job ledger must be on the store all coordinators share; give one of them"));
            int maxJobs = parse.GetValue(jobs);
            if (maxJobs is < 1 or > 64) throw new UsageException($"--max-jobs {maxJobs}: use 1 to 64");
            double leaseSeconds = parse.GetValue(lease);
            if (leaseSeconds < 1) throw new UsageException($"--chunk-lease {leaseSeconds}: at least 1 second");
            Directory.CreateDirectory(stateDir);
            var secret = ClusterSettings.Secret();
            using var logs = context.CreateLogs(LogLevel.Information);
            var logger = logs.CreateLogger("coordinator");
            if (secret is null) logger.LogWarning("No cluster secret ({Variable} or {Variable}_FILE): submit, cancel, leave and down will be refused",
                ClusterSettings.SecretVariable, ClusterSettings.SecretVariable);
            var options = new CoordinatorOptions(stateDir, secret, maxJobs, DispatchSettings.Default with { Lease = TimeSpan.FromSeconds(leaseSeconds) });
            var member = ClusterMember.StartCoordinator(settings, options, logs);
            logger.LogInformation("Coordinator joining through {Seeds} as {Host}:{Port}; ledger in {State}",
                string.Join(",", settings.Seeds.Select(s => $"{s.Host}:{s.Port}")), settings.Hostname, settings.Port, stateDir);
            await using var monitoring = await Monitor(endpoint, "chunkseg-coordinator", member, jobPage: true, ct).ConfigureAwait(false);
            return await member.RunUntilStoppedAsync(ct).ConfigureAwait(false) ? CliApp.Ok : CliApp.DataError;
        });
        return command;
    }

    /// <summary>
    /// The member's HTTP port (none when <paramref name="endpoint"/> is null). A port that cannot be bound is only found out
    /// now, after the member joined: it leaves the cluster again before the error is reported.
    /// </summary>
    private static async Task<MonitoringServer?> Monitor(IPEndPoint? endpoint, string service, ClusterMember member, bool jobPage, CancellationToken ct)
    {
        if (endpoint is null) return null;
        try
        {
            return await MonitoringServer.StartAsync(endpoint, service, member, jobPage, ct).ConfigureAwait(false);
        }
        catch (UsageException)
        {
            await member.RunUntilStoppedAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
            throw;
        }
    }

    private static Command Submit(CommandContext context)
    {
        var run = new RunArguments(outRequired: false);
        var seeds = SeedOption();
        var wait = new Option<bool>("--wait") { Description = "Wait until the job ends; exit 0 when done, 1 when it failed or was cancelled" };
        var json = JsonOption("the job (and with --wait its final status)");
        var command = new Command("submit", "Queue a run on the cluster: the arguments of `chunkseg run` (a batch of inputs too, as one job), or a job file (JOB.yaml) with the same options as keys");
        run.AddTo(command);
        command.Options.Add(seeds);
        command.Options.Add(wait);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            var (definition, output) = run.IsBatch(parse) ? CheckedBatch(context, run.ToBatch(parse)) : CheckedRun(run, parse);
            var seedList = ClusterSettings.ParseSeeds(parse.GetValue(seeds));
            var job = new SubmitJob(NewJobId(), definition, output, DateTimeOffset.UtcNow, null);
            await using var session = ClusterClientSession.Connect(seedList, ClusterTls.FromEnvironment());
            await SendSigned(session, job, "submit").ConfigureAwait(false);
            if (parse.GetValue(json)) await context.Out.WriteLineAsync(JsonSerializer.Serialize(new { id = job.Id, output = job.Output }, ClusterWire.Options)).ConfigureAwait(false);
            else await context.Out.WriteLineAsync($"submitted job {job.Id}: {job.Output}").ConfigureAwait(false);
            if (!parse.GetValue(wait)) return CliApp.Ok;
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                ClusterStatus status;
                try { status = await session.AskCoordinator<ClusterStatus>(new GetClusterStatus(job.Id), AskTimeout).ConfigureAwait(false); }
                catch (ClusterException) { continue; }   // a coordinator failing over: ask again
                if (status.Jobs.FirstOrDefault() is not { } s || s.State is not ("done" or "failed" or "cancelled")) continue;
                if (parse.GetValue(json)) await context.Out.WriteLineAsync(JsonSerializer.Serialize(s, ClusterWire.Options)).ConfigureAwait(false);
                else await context.Out.WriteLineAsync($"job {s.Id}: {s.State}{(s.Error is null ? "" : ": " + s.Error)}").ConfigureAwait(false);
                return s.State == "done" ? CliApp.Ok : CliApp.DataError;
            }
        });
        return command;
    }

    /// <summary>A single run's job (from the arguments or a job file), checked here, before anything is queued: the same binding the coordinator will do.</summary>
    private static (string Json, string Output) CheckedRun(RunArguments run, ParseResult parse)
    {
        string input = run.Input(parse);
        var spec = JobFile.IsJobFile(input) ? RunArguments.SpecOf(JobFile.Read(input)) : run.ToSpec(parse);
        using (RunPipeline.Open(spec).Raw) { }
        return (spec.ToJson(), spec.OutDir);
    }

    /// <summary>
    /// A batch's job, each input checked as a single run's is: a broken input is named now and left in (the job reports it
    /// failed and runs the others); a batch none of whose inputs can run is refused with the first one's error.
    /// </summary>
    private static (string Json, string Output) CheckedBatch(CommandContext context, BatchSpec batch)
    {
        var errors = new List<(BatchInput Input, ChunkSegException Error)>();
        foreach (var run in batch.Runs)
        {
            try
            {
                using (RunPipeline.Open(run.Spec).Raw) { }
            }
            catch (ChunkSegException e)
            {
                errors.Add((run.Input, e));
            }
        }
        if (errors.Count == batch.Runs.Count) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(errors[0].Error);
        foreach (var (input, error) in errors)
            context.Error.WriteLine($"warning: {input.Input}: {error.Message} (the job will report it failed and run the other inputs)");
        return (batch.ToJson(), batch.OutDir);
    }

    private static Command Status(CommandContext context)
    {
        var job = new Argument<string?>("job") { Description = "One job's id (default: all jobs)", Arity = ArgumentArity.ZeroOrOne };
        var seeds = SeedOption();
        var json = JsonOption("the status");
        var command = new Command("status", "Jobs, gpu-nodes (host, backend, device, chunks done, last heartbeat) and the chunks each holds") { job, seeds, json };
        command.SetAction(async (parse, ct) =>
        {
            await using var session = Connect(parse, seeds);
            var status = await session.AskCoordinator<ClusterStatus>(new GetClusterStatus(parse.GetValue(job)), AskTimeout).ConfigureAwait(false);
            if (parse.GetValue(json)) await context.Out.WriteLineAsync(JsonSerializer.Serialize(status, ClusterWire.Options)).ConfigureAwait(false);
            else Print(context, status);
            return parse.GetValue(job) is not null && status.Jobs.Count == 0 ? CliApp.DataError : CliApp.Ok;
        });
        return command;
    }

    private static Command Cancel(CommandContext context)
    {
        var job = new Argument<string>("job") { Description = "The job's id (from submit or status)" };
        var seeds = SeedOption();
        var command = new Command("cancel", "Cancel a queued or running job") { job, seeds };
        command.SetAction(async (parse, ct) =>
        {
            await using var session = Connect(parse, seeds);
            await context.Out.WriteLineAsync(await SendSigned(session, new CancelJob(parse.GetValue(job)!, null), "cancel").ConfigureAwait(false)).ConfigureAwait(false);
            return CliApp.Ok;
        });
        return command;
    }

    private static Command ClusterCommand(CommandContext context)
    {
        var command = new Command("cluster", "The cluster's members and shards, and membership changes (what Petabridge.Cmd would show)");
        var showSeeds = SeedOption();
        var showJson = JsonOption("the view");
        var show = new Command("show", "Members (address, roles, status, reachable) and the leader") { showSeeds, showJson };
        show.SetAction(async (parse, ct) => await View(context, parse, showSeeds, showJson, shards: false).ConfigureAwait(false));
        var shardSeeds = SeedOption();
        var shardJson = JsonOption("the shards");
        var shards = new Command("shards", "Shard regions: the shards and chunk actors on each gpu-node, and the chunks each holds now") { shardSeeds, shardJson };
        shards.SetAction(async (parse, ct) => await View(context, parse, shardSeeds, shardJson, shards: true).ConfigureAwait(false));
        command.Subcommands.Add(show);
        command.Subcommands.Add(shards);
        command.Subcommands.Add(ChangeMember(context, "leave", "Make a member leave the cluster gracefully (a gpu-node drains first)", down: false));
        command.Subcommands.Add(ChangeMember(context, "down", "Down a member at once (it is unreachable for good, or must go now)", down: true));
        return command;
    }

    private static Command ChangeMember(CommandContext context, string verb, string description, bool down)
    {
        var address = new Argument<string>("address") { Description = "The member: akka.tcp://chunkseg@HOST:PORT (akka.ssl.tcp with TLS) or HOST:PORT (see `cluster show`)" };
        var seeds = SeedOption();
        var command = new Command(verb, description) { address, seeds };
        command.SetAction(async (parse, ct) =>
        {
            var request = new ChunkSeg.Contracts.Messages.ChangeMember(parse.GetValue(address)!, down, null);
            await using var session = Connect(parse, seeds);
            await context.Out.WriteLineAsync(await SendSigned(session, request, $"cluster {verb}").ConfigureAwait(false)).ConfigureAwait(false);
            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>A client session with the cluster through the seeds given (or $CHUNKSEG_SEEDS), over TLS when the environment says so.</summary>
    private static ClusterClientSession Connect(ParseResult parse, Option<string[]> seeds) =>
        ClusterClientSession.Connect(ClusterSettings.ParseSeeds(parse.GetValue(seeds)), ClusterTls.FromEnvironment());

    private static async Task<int> View(CommandContext context, ParseResult parse, Option<string[]> seeds, Option<bool> json, bool shards)
    {
        await using var session = Connect(parse, seeds);
        var view = await session.View(AskTimeout).ConfigureAwait(false);
        IReadOnlyList<NodeLoad> load = [];
        if (shards)
        {
            try { load = (await session.AskCoordinator<ClusterStatus>(new GetClusterStatus(null), TimeSpan.FromSeconds(5)).ConfigureAwait(false)).Load; }
            catch (ClusterException) { }   // no coordinator: the regions are still worth showing
        }
        if (parse.GetValue(json))
        {
            object body = shards ? new { view.Self, view.Regions, load, view.ShardsError } : new { view.Self, view.Leader, view.Members };
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(body, ClusterWire.Options)).ConfigureAwait(false);
            return CliApp.Ok;
        }
        var ci = CultureInfo.InvariantCulture;
        if (!shards)
        {
            var members = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"members (seen by {view.Self}; leader {view.Leader ?? "none"})"))
                .AddColumn("address").AddColumn("roles").AddColumn("status").AddColumn("reachable");
            foreach (var m in view.Members) members.AddRow(Markup.Escape(m.Address), Markup.Escape(string.Join(",", m.Roles)), m.Status, m.Reachable ? "yes" : "[red]no[/]");
            context.Stdout.Write(members);
            return CliApp.Ok;
        }
        if (view.ShardsError is { } error) context.Out.WriteLine(error);
        var regions = new Table().Border(TableBorder.Rounded).Title("chunk shard regions").AddColumn("member").AddColumn(new TableColumn("shards").RightAligned())
            .AddColumn(new TableColumn("chunk actors").RightAligned()).AddColumn("shard ids");
        foreach (var r in view.Regions)
            regions.AddRow(Markup.Escape(r.Address), r.Shards.Count.ToString(ci), r.Shards.Values.Sum().ToString(ci),
                Markup.Escape(string.Join(",", r.Shards.Keys.Select(k => int.Parse(k, ci)).Order())));
        context.Stdout.Write(regions);
        var nodes = new Table().Border(TableBorder.Rounded).Title("chunks in flight per gpu-node").AddColumn("node")
            .AddColumn(new TableColumn("in flight").RightAligned()).AddColumn(new TableColumn("window").RightAligned()).AddColumn(new TableColumn("shards").RightAligned());
        foreach (var l in load) nodes.AddRow(Markup.Escape(l.Node), l.InFlight.ToString(ci), l.Window.ToString(ci), l.Shards.ToString(ci));
        context.Stdout.Write(nodes);
        return CliApp.Ok;
    }

    /// <summary>
    /// Signs a mutating request with the cluster secret (from the environment or a mounted file), sends it to the
    /// coordinator and returns its answer; a refusal is a usage error carrying the coordinator's reason.
    /// </summary>
    private static async Task<string> SendSigned<T>(ClusterClientSession session, T request, string what) where T : IAuthorizedRequest
    {
        var secret = ClusterSettings.Secret() ?? throw new UsageException($"{what}: no cluster secret; set {ClusterSettings.SecretVariable} or " +
            $"{ClusterSettings.SecretVariable}_FILE (a mounted secret file) to the secret the coordinators use");
        var reply = await session.AskCoordinator<ClusterReply>(ClusterWire.Signed(request, secret, DateTimeOffset.UtcNow), AskTimeout).ConfigureAwait(false);
        return reply.Ok ? reply.Message : throw new UsageException(reply.Message);
    }

    private static void Print(CommandContext context, ClusterStatus status)
    {
        var ci = CultureInfo.InvariantCulture;
        if (status.Message is { } message) context.Out.WriteLine(message);
        var jobs = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"jobs (coordinator {status.Coordinator})")).AddColumn("id").AddColumn("state")
            .AddColumn("stage").AddColumn(new TableColumn("chunks").RightAligned()).AddColumn("output").AddColumn("error");
        foreach (var j in status.Jobs)
            jobs.AddRow(j.Id, j.State, Markup.Escape(j.Stage ?? "-"), j.ChunksTotal > 0 ? $"{j.ChunksDone}/{j.ChunksTotal}" : "-",
                Markup.Escape(j.Output), Markup.Escape(j.Error ?? ""));
        var load = status.Load.ToDictionary(l => l.Node, StringComparer.Ordinal);
        var workers = new Table().Border(TableBorder.Rounded).Title("gpu-nodes").AddColumn("node").AddColumn("host").AddColumn("backend")
            .AddColumn("device").AddColumn(new TableColumn("running").RightAligned()).AddColumn(new TableColumn("in flight").RightAligned())
            .AddColumn(new TableColumn("chunks done").RightAligned()).AddColumn(new TableColumn("failed").RightAligned())
            .AddColumn(new TableColumn("memory").RightAligned()).AddColumn("last heartbeat");
        foreach (var w in status.Workers)
        {
            var l = load.GetValueOrDefault(w.Node);
            workers.AddRow(Markup.Escape(w.Node), Markup.Escape(w.Host), w.Backend, Markup.Escape(w.Gpu ?? "-"), $"{w.Running}/{w.Concurrency}" + (l?.State == "draining" ? " (draining)" : ""),
                (l?.InFlight ?? 0).ToString(ci), w.ChunksDone.ToString(ci), w.ChunksFailed.ToString(ci),
                string.Format(ci, "{0:0} MB", w.MemoryBytes / 1e6), string.Format(ci, "{0:0.0} s ago", (DateTimeOffset.UtcNow - w.Time).TotalSeconds));
        }
        foreach (var w in status.Lost ?? [])
            workers.AddRow(Markup.Escape(w.Node), Markup.Escape(w.Host), w.Backend, Markup.Escape(w.Gpu ?? "-"), "gone", "-", w.ChunksDone.ToString(ci),
                w.ChunksFailed.ToString(ci), "-", string.Format(ci, "{0:0.0} s ago", (DateTimeOffset.UtcNow - w.Time).TotalSeconds));
        context.Stdout.Write(jobs);
        // One job asked about: its passes and their latest failures (what the job page shows).
        foreach (var j in status.Jobs.Where(j => j.Passes is { Count: > 0 }))
        {
            var passes = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"passes of {j.Id}")).AddColumn("#").AddColumn("stage").AddColumn("state")
                .AddColumn(new TableColumn("chunks").RightAligned()).AddColumn(new TableColumn("failed").RightAligned())
                .AddColumn(new TableColumn("sent again").RightAligned()).AddColumn(new TableColumn("voxels/s").RightAligned()).AddColumn(new TableColumn("time left").RightAligned());
            foreach (var p in j.Passes!)
                passes.AddRow(p.Index.ToString(ci), Markup.Escape(p.Stage), p.State, $"{p.ChunksDone}/{p.ChunksTotal}", p.ChunksFailed.ToString(ci),
                    p.ChunksResent.ToString(ci), string.Format(ci, "{0:0.###e0}", p.VoxelsPerSecond),
                    p.State == "running" && p.SecondsLeft is { } left ? string.Format(ci, "{0:0} s", left) : "");
            context.Stdout.Write(passes);
            foreach (var p in j.Passes!)
                foreach (var f in p.Failures)
                    context.Out.WriteLine($"pass {p.Index} ({p.Stage}) chunk {f.Chunk} attempt {f.Attempt} on {f.Node}: {f.Reason}{(f.Retried ? " (sent again)" : "")}");
        }
        context.Stdout.Write(workers);
    }

    private static string NewJobId() => DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..6];
}
