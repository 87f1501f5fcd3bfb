using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// Monitoring seen working on a real cluster (coordinator and gpu-node processes on loopback, a real job):
/// Debian's <c>prometheus</c> scrapes every member's <c>/metrics</c> and every PromQL expression of the Grafana dashboard
/// returns data; Debian's chromium, driven headless by Playwright, watches the coordinator's job page while the job runs,
/// a gpu-node is killed and a chunk fails.
/// </summary>
public sealed partial class DistributedTests
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    [Fact]
    public async Task Prometheus_scrapes_the_cluster_and_every_dashboard_query_returns_data()
    {
        int coordinatorHttp = FreePort(), cpuHttp = FreePort(), gpuHttp = FreePort(), prometheusPort = FreePort();
        var cluster = StartCluster(coordinators: 1, nodes: 0, coordinatorArgs: ["--http-port", Port(coordinatorHttp), "--http-address", "127.0.0.1"]);
        // Chunk 5 fails (a failure to count); chunks take 100 ms more (the job lasts several scrapes). The second node computes on
        // the GPU backend (ILGPU's CPU accelerator here), so that it reports its device memory.
        const string drill = "label:5:error,label:*:latency:100";
        cluster.StartNode("n1", drill, args: ["--backend", "cpu", "--http-port", Port(cpuHttp), "--http-address", "127.0.0.1"]);
        cluster.StartNode("g1", drill, args: ["--backend", "gpu", "--http-port", Port(gpuHttp), "--http-address", "127.0.0.1"],
            environment: new Dictionary<string, string> { ["CHUNKSEG_GPU"] = "cpu" });
        await cluster.UntilNodes(2);

        string config = _dir["prometheus.yml"];
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: chunkseg
                static_configs:
                  - targets: ['127.0.0.1:{coordinatorHttp}', '127.0.0.1:{cpuHttp}', '127.0.0.1:{gpuHttp}']
                metric_relabel_configs:
                  # Prometheus 2.42 scrapes OpenMetrics, whose counters carry _created samples: not ours to chart.
                  - source_labels: [__name__]
                    regex: '.*_created'
                    action: drop
            """, TestContext.Current.CancellationToken);
        var prometheus = StartPrometheus(config, prometheusPort);   // stopped with the cluster (Dispose)
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{prometheusPort}/"), Timeout = TimeSpan.FromSeconds(30) };
        await Until(async () =>
        {
            var targets = await GetJson(http, "api/v1/targets");
            return targets?["data"]?["activeTargets"]?.AsArray() is { Count: 3 } active && active.All(t => t!["health"]!.GetValue<string>() == "up");
        }, "Prometheus to scrape all three members", logs: prometheus.Log);
        double start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 - 5;

        string job = await Submit(cluster, _dir["monitored"], []);
        var final = await Finished(cluster, job);
        Assert.Equal("failed", final["state"]!.GetValue<string>());   // chunk 5 failed for good
        // Scraped after the end: the last scrape shows the job failed.
        await Until(async () => (await GetJson(http, "api/v1/query?query=" + Uri.EscapeDataString("chunkseg_jobs{state=\"failed\"}")))?["data"]?["result"]?.AsArray().Count > 0,
            "a scrape after the job's end", logs: prometheus.Log);
        double end = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

        var empty = new List<string>();
        int count = 0;
        foreach (var (panel, expr) in DashboardQueries())
        {
            count++;
            // Grafana's own variable: the query's step, at least four scrape intervals.
            string query = expr.Replace("$__rate_interval", "30s", StringComparison.Ordinal);
            var answer = await GetJson(http, "api/v1/query_range?" + string.Join('&',
                $"query={Uri.EscapeDataString(query)}", $"start={start.ToString(CultureInfo.InvariantCulture)}",
                $"end={end.ToString(CultureInfo.InvariantCulture)}", "step=1"));
            Assert.True(answer?["status"]?.GetValue<string>() == "success", $"panel '{panel}': {query}: {answer?.ToJsonString()}");
            if (answer!["data"]!["result"]!.AsArray().Count == 0) empty.Add($"'{panel}': {query}");
            else output.WriteLine($"'{panel}': {answer["data"]!["result"]!.AsArray().Count} series");
        }
        Assert.True(count >= 10, $"the dashboard has only {count} queries");
        Assert.True(empty.Count == 0, "panels that show nothing:\n" + string.Join("\n", empty) + "\n" + cluster.Logs());
    }

    [Fact]
    public async Task The_job_page_shows_progress_a_killed_node_and_a_failed_chunk()
    {
        int pageHttp = FreePort();
        var cluster = StartCluster(coordinators: 1, nodes: 0, coordinatorArgs: ["--http-port", Port(pageHttp), "--http-address", "127.0.0.1"]);
        // Every chunk takes 300 ms more (time to watch), chunk 5 fails.
        foreach (string node in new[] { "n1", "n2", "n3" }) cluster.StartNode(node, "label:5:error,label:*:latency:300");
        await cluster.UntilNodes(3);
        string job = await Submit(cluster, _dir["watched"], []);

        // The page's JSON answers, and what they say to a wrong question.
        using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{pageHttp}/") })
        {
            var ct = TestContext.Current.CancellationToken;
            Assert.Equal("ok", (await http.GetStringAsync("healthz", ct)).Trim());
            Assert.Equal("ready", (await http.GetStringAsync("readyz", ct)).Trim());
            Assert.Contains("chunkseg_cluster_members", await http.GetStringAsync("metrics", ct), StringComparison.Ordinal);
            using var bad = await http.GetAsync("api/map?job=" + job, ct);
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
            StringAssert(await bad.Content.ReadAsStringAsync(ct), "expected ?job=ID&pass=N&z=Z");
            StringAssert(await http.GetStringAsync("api/map?job=nosuchjob&pass=0&z=0", ct), "job nosuchjob: not known to the coordinator");
            using var home = await http.GetAsync("", ct);
            Assert.Contains("default-src 'self'", home.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = "/usr/bin/chromium",   // Debian's chromium: never a downloaded browser
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1600 } });
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync($"http://127.0.0.1:{pageHttp}/");
        var timeout = new LocatorAssertionsToHaveAttributeOptions { Timeout = 180_000 };

        // The running job, selected, with its pass's progress rising.
        var jobRow = page.Locator($"#jobs tbody tr[data-job='{job}']");
        await Assertions.Expect(jobRow).ToHaveAttributeAsync("data-state", "running", timeout);
        var label = page.Locator("#passes tbody tr[data-stage='label']");
        long first = await Until(page, label, 1, "the label pass to record a chunk");
        long second = await Until(page, label, first + 3, "the label pass's progress to rise");
        Assert.True(second > first);

        // A node killed while it holds chunks: shown gone, its chunks sent again, and the pass goes on.
        await Until(async () => int.Parse(await page.Locator("#nodes tbody tr[data-node='n1'] td").Nth(5).TextContentAsync() ?? "0", CultureInfo.InvariantCulture) > 0,
            "n1 to hold a chunk", logs: cluster.Logs);
        long beforeKill = await DoneOf(label);
        cluster.Nodes[0].Kill();
        await Assertions.Expect(page.Locator("#nodes tbody tr[data-node='n1']")).ToHaveAttributeAsync("data-state", "gone", timeout);
        await Assertions.Expect(page.Locator("#resends tbody tr").First).ToBeVisibleAsync(new() { Timeout = 180_000 });
        StringAssert(await page.Locator("#resends tbody").TextContentAsync(), "n1");
        await Until(page, label, beforeKill + 3, "the pass to go on after the kill");

        // The failed chunk and its reason.
        var failure = page.Locator("#failures tbody tr[data-chunk='5']");
        await Assertions.Expect(failure).ToContainTextAsync("fails on purpose", new() { Timeout = 180_000 });
        // The chunk map draws the plane with done chunks in it.
        await Assertions.Expect(page.Locator("#map-summary")).ToContainTextAsync("done", new() { Timeout = 60_000 });

        string shots = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(shots);
        string shot = Path.Combine(shots, "job-page.png");
        await page.ScreenshotAsync(new() { Path = shot, FullPage = true });
        output.WriteLine($"screenshot: {shot}");
        Assert.True(new FileInfo(shot).Length > 10_000);
        Assert.Empty(errors);

        // The page ends showing the job failed (chunk 5), as `status` does.
        Assert.Equal("failed", (await Finished(cluster, job))["state"]!.GetValue<string>());
        await Assertions.Expect(jobRow).ToHaveAttributeAsync("data-state", "failed", timeout);
        // `status JOB` shows the same passes and failures in the terminal, and the killed node as gone.
        var (code, text, err) = await Cli.Run(["status", job, .. cluster.SeedArgs]);
        Assert.True(code == 0, err);
        foreach (string expected in new[] { $"passes of {job}", "chunk 5 attempt 1", "fails on purpose", "gone" }) StringAssert(text, expected);
    }

    private static void StringAssert(string? text, string expected) => Assert.Contains(expected, text ?? "", StringComparison.Ordinal);

    private static async Task<long> DoneOf(ILocator pass) =>
        long.Parse(await pass.Locator("td[data-done]").GetAttributeAsync("data-done") ?? "0", CultureInfo.InvariantCulture);

    /// <summary>Waits until the pass row shows at least <paramref name="atLeast"/> chunks done; returns what it shows then.</summary>
    private static async Task<long> Until(IPage page, ILocator pass, long atLeast, string what)
    {
        long done = 0;
        await Until(async () => await pass.CountAsync() > 0 && (done = await DoneOf(pass)) >= atLeast, what);
        return done;
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Every (panel title, PromQL expression) of the Grafana dashboard, rows' nested panels included.</summary>
    private static IEnumerable<(string Panel, string Expr)> DashboardQueries()
    {
        var dashboard = JsonNode.Parse(File.ReadAllText(Path.Combine(RepositoryRoot.Require(), "k8s", "grafana", "chunkseg-dashboard.json")))!;
        static IEnumerable<JsonNode> Panels(JsonNode parent) =>
            parent["panels"]?.AsArray().OfType<JsonNode>().SelectMany(p => Panels(p).Prepend(p)) ?? [];
        return Panels(dashboard).SelectMany(p => (p["targets"]?.AsArray() ?? []).OfType<JsonNode>()
            .Select(t => (p["title"]!.GetValue<string>(), t["expr"]!.GetValue<string>())));
    }

    private static async Task<JsonNode?> GetJson(HttpClient http, string path)
    {
        try
        {
            using var response = await http.GetAsync(path, TestContext.Current.CancellationToken);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or TaskCanceledException)
        {
            return null;   // not listening yet
        }
    }

    private BackgroundServer StartPrometheus(string config, int port)
    {
        const string binary = "/usr/bin/prometheus";
        Assert.True(File.Exists(binary), $"{binary} is missing: scripts/install-deps.sh --test installs Debian's prometheus");
        var server = new BackgroundServer(binary, _dir["prometheus.log"], "--config.file=" + config, "--storage.tsdb.path=" + _dir["prometheus-data"],
            $"--web.listen-address=127.0.0.1:{port}");
        _processes.Add(server);
        return server;
    }

    /// <summary>A server process the test starts and kills at the end, its output in a log file.</summary>
    private sealed class BackgroundServer : IDisposable
    {
        private readonly Process _process;
        private readonly string _logPath;
        private readonly StreamWriter _log;

        public BackgroundServer(string file, string logPath, params string[] args)
        {
            _logPath = logPath;
            _log = new StreamWriter(logPath) { AutoFlush = true };
            var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in args) info.ArgumentList.Add(a);
            _process = Process.Start(info)!;
            _process.OutputDataReceived += (_, e) => Write(e.Data);
            _process.ErrorDataReceived += (_, e) => Write(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        private void Write(string? line)
        {
            if (line is null) return;
            lock (_log) _log.WriteLine(line);
        }

        public string Log()
        {
            lock (_log) _log.Flush();
            using var reader = new StreamReader(new FileStream(_logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            return reader.ReadToEnd();
        }

        public void Dispose()
        {
            try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _process.WaitForExit(10_000);
            _process.Dispose();
            lock (_log) _log.Dispose();
        }
    }
}
