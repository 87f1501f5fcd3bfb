using System.Globalization;
using Akka.Actor;
using ChunkSeg.Cluster;
using ChunkSeg.Contracts.Messages;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ChunkSeg.Cli.Monitoring;

/// <summary>
/// The live job page a coordinator serves: one HTML file, a script and a style sheet (embedded resources, no build step),
/// and the two JSON answers the script polls every two seconds. The script writes every string with textContent (job
/// outputs and failure reasons are the users' text, never markup), and the page's Content-Security-Policy allows its own
/// script only.
/// </summary>
internal static class JobPage
{
    private static readonly (string Path, string Resource, string Type)[] Files =
    [
        ("/", "job-page.html", "text/html; charset=utf-8"),
        ("/job-page.js", "job-page.js", "text/javascript; charset=utf-8"),
        ("/job-page.css", "job-page.css", "text/css; charset=utf-8"),
    ];

    public static void Map(WebApplication app, ClusterMember member, TimeSpan timeout)
    {
        foreach (var (path, resource, type) in Files)
        {
            byte[] content = Load(resource);
            app.MapGet(path, (HttpContext context) =>
            {
                context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
                context.Response.Headers.CacheControl = "no-cache";
                return Results.Bytes(content, type);
            });
        }
        app.MapGet("/api/status", (string? job) => Ask<ClusterStatus>(member, new GetClusterStatus(string.IsNullOrWhiteSpace(job) ? null : job), timeout));
        app.MapGet("/api/map", (string? job, string? pass, string? t, string? z) =>
        {
            if (string.IsNullOrWhiteSpace(job) || !Parse(pass, out long p) || p > int.MaxValue || !Parse(t ?? "0", out long tt) || !Parse(z, out long zz))
                return Task.FromResult(Results.Json(new { error = "expected ?job=ID&pass=N&z=Z (and t=T for a time series), N, T and Z whole numbers" }, statusCode: 400));
            return Ask<ChunkMap>(member, new GetChunkMap(job, (int)p, tt, zz), timeout);
        });
    }

    private static bool Parse(string? text, out long value) => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    /// <summary>The job manager's answer as JSON; 503 while no job manager answers (the singleton is starting or moving).</summary>
    private static async Task<IResult> Ask<T>(ClusterMember member, IClusterMessage question, TimeSpan timeout)
    {
        try
        {
            return Results.Json(await member.AskJobManager<T>(question, timeout).ConfigureAwait(false), ClusterWire.Options);
        }
        catch (AskTimeoutException)
        {
            return Results.Json(new { error = $"the job manager did not answer within {timeout.TotalSeconds:0} s (starting, or moving to another coordinator)" },
                statusCode: 503);
        }
    }

    private static byte[] Load(string resource)
    {
        using var stream = typeof(JobPage).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"the job page's {resource} is not embedded in the CLI");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
