using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace ChunkSeg.Deployment.Tests;

/// <summary>Paths in the checkout the tests run from: the first directory above the test binaries that holds ChunkSeg.sln.</summary>
internal static partial class Repo
{
    public static readonly string Root = FindRoot();

    public static string K8s => Path.Combine(Root, "k8s");
    public static string Docker => Path.Combine(Root, "docker");

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public static string Read(params string[] parts) => File.ReadAllText(PathOf(parts));

    /// <summary>Path relative to <paramref name="baseDir"/>, with forward slashes (as kustomization.yaml and error messages write it).</summary>
    public static string Relative(string baseDir, string path) => Path.GetRelativePath(baseDir, path).Replace('\\', '/');

    /// <summary>The <c>&lt;Version&gt;</c> of Directory.Build.props: the version every chunkseg image is tagged with.</summary>
    public static string Version()
    {
        var doc = XDocument.Load(PathOf("Directory.Build.props"));
        string? version = doc.Descendants("Version").Select(e => e.Value.Trim()).FirstOrDefault();
        Assert.False(string.IsNullOrEmpty(version), "Directory.Build.props has no <Version>");
        Assert.Matches(SemVer(), version);
        return version!;
    }

    /// <summary>The CLI's AssemblyName (the .dll the images run).</summary>
    public static string CliAssemblyName()
    {
        var doc = XDocument.Load(PathOf("src", "Cli", "ChunkSeg.Cli.csproj"));
        return doc.Descendants("AssemblyName").Select(e => e.Value.Trim()).FirstOrDefault() ?? "ChunkSeg.Cli";
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ChunkSeg.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"no ChunkSeg.sln in {AppContext.BaseDirectory} or any directory above it");
    }

    [GeneratedRegex(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")]
    private static partial Regex SemVer();
}
