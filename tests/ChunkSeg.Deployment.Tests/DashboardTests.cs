using System.Text.Json;

namespace ChunkSeg.Deployment.Tests;

/// <summary>k8s/grafana/chunkseg-dashboard.json: valid, bound to a Prometheus data-source variable, and querying every metric the code exports.</summary>
public sealed class DashboardTests
{
    private const string DataSourceVariable = "DS_PROMETHEUS";

    /// <summary>
    /// The OpenTelemetry instruments (name, kind, unit) and the series the collector's Prometheus exporter makes of them:
    /// dots → underscores, then the unit's suffix (s → _seconds, By → _bytes, annotations like {voxel} dropped) and _total for counters.
    /// </summary>
    private static readonly (string Instrument, string Series)[] MetricList =
    [
        ("chunkseg.chunks.completed", "chunkseg_chunks_completed_total"),
        ("chunkseg.chunks.failed", "chunkseg_chunks_failed_total"),
        ("chunkseg.voxels.processed", "chunkseg_voxels_processed_total"),
        ("chunkseg.stage.duration", "chunkseg_stage_duration_seconds_bucket"),
        ("chunkseg.chunks.in_flight", "chunkseg_chunks_in_flight"),
        ("chunkseg.worker.memory", "chunkseg_worker_memory_bytes"),
        ("chunkseg.gpu.memory", "chunkseg_gpu_memory_bytes"),
        ("chunkseg.cluster.members", "chunkseg_cluster_members"),
        ("chunkseg.cluster.nodes", "chunkseg_cluster_nodes"),
        ("chunkseg.cluster.shards", "chunkseg_cluster_shards"),
        ("chunkseg.jobs", "chunkseg_jobs"),
        ("chunkseg.job.chunks", "chunkseg_job_chunks"),
        ("chunkseg.job.time_left", "chunkseg_job_time_left_seconds"),
    ];

    public static TheoryData<string, string> Metrics
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var (instrument, series) in MetricList) data.Add(instrument, series);
            return data;
        }
    }

    private static readonly Lazy<JsonDocument> Dashboard = new(() =>
        JsonDocument.Parse(File.ReadAllText(Repo.PathOf("k8s", "grafana", "chunkseg-dashboard.json"))));

    private static IEnumerable<JsonElement> Panels(JsonElement parent) =>
        parent.TryGetProperty("panels", out var panels)
            ? panels.EnumerateArray().SelectMany(p => Panels(p).Prepend(p))   // rows may nest panels
            : [];

    private static IEnumerable<JsonElement> QueryPanels => Panels(Dashboard.Value.RootElement).Where(p => p.TryGetProperty("targets", out _));

    private static IEnumerable<string> Queries =>
        QueryPanels.SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .Select(t => t.TryGetProperty("expr", out var e) ? e.GetString() ?? "" : "");

    [Fact]
    public void Dashboard_is_valid_json_with_a_title_uid_and_modern_schema()
    {
        var root = Dashboard.Value.RootElement;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        Assert.False(string.IsNullOrEmpty(root.GetProperty("title").GetString()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("uid").GetString()));
        Assert.InRange(root.GetProperty("schemaVersion").GetInt32(), 36, 100);

        var ids = Panels(root).Select(p => p.GetProperty("id").GetInt32()).ToList();
        Assert.NotEmpty(ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(Queries, q => Assert.False(string.IsNullOrWhiteSpace(q), "a panel target has no PromQL expr"));
    }

    [Fact]
    public void Every_query_uses_the_Prometheus_data_source_variable()
    {
        var variables = Dashboard.Value.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray();
        Assert.Contains(variables, v =>
            v.GetProperty("name").GetString() == DataSourceVariable &&
            v.GetProperty("type").GetString() == "datasource" &&
            v.GetProperty("query").GetString() == "prometheus");

        Assert.NotEmpty(QueryPanels);
        foreach (var panel in QueryPanels)
        {
            Assert.Equal("${" + DataSourceVariable + "}", panel.GetProperty("datasource").GetProperty("uid").GetString());
            foreach (var target in panel.GetProperty("targets").EnumerateArray())
            {
                if (target.TryGetProperty("datasource", out var ds))
                    Assert.Equal("${" + DataSourceVariable + "}", ds.GetProperty("uid").GetString());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Metrics))]
    public void A_panel_queries_each_exported_metric(string instrument, string series)
    {
        Assert.True(Queries.Any(q => q.Contains(series, StringComparison.Ordinal)),
            $"no dashboard query reads {series} (the Prometheus form of {instrument})");
    }

    [Fact]
    public void Counters_are_read_as_rates_and_stage_latency_as_p50_and_p95()
    {
        foreach (string counter in new[] { "chunkseg_chunks_completed_total", "chunkseg_chunks_failed_total", "chunkseg_voxels_processed_total" })
            Assert.Contains(Queries, q => q.Contains($"rate({counter}[", StringComparison.Ordinal));

        foreach (string quantile in new[] { "0.5", "0.95" })
        {
            Assert.Contains(Queries, q => q.Contains($"histogram_quantile({quantile},", StringComparison.Ordinal) &&
                                          q.Contains("chunkseg_stage_duration_seconds_bucket", StringComparison.Ordinal) &&
                                          q.Contains("le", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void The_README_table_names_the_same_series()
    {
        string readme = Repo.Read("k8s", "README.md");
        foreach (var (instrument, series) in MetricList)
        {
            Assert.Contains($"`{instrument}`", readme, StringComparison.Ordinal);
            Assert.Contains(series.Replace("_bucket", "", StringComparison.Ordinal), readme, StringComparison.Ordinal);
        }
    }
}
