using System.Text;
using System.Text.Json;

namespace ChunkSeg.Deployment.Tests;

/// <summary>One instruction of a Dockerfile, its continuation lines joined.</summary>
internal sealed record Instruction(int Line, string Keyword, string Arguments)
{
    /// <summary>The exec (JSON array) form of CMD/ENTRYPOINT/RUN, or null for the shell form.</summary>
    public string[]? ExecForm()
    {
        if (!Arguments.TrimStart().StartsWith('[')) return null;
        try { return JsonSerializer.Deserialize<string[]>(Arguments); }
        catch (JsonException) { return null; }
    }

    public override string ToString() => $"line {Line}: {Keyword} {Arguments}";
}

/// <summary>A build stage: FROM image [AS alias] and the instructions up to the next FROM.</summary>
internal sealed record Stage(int Index, string Image, string? Alias, Instruction From)
{
    public List<Instruction> Instructions { get; } = [];

    public IEnumerable<Instruction> All(string keyword) => Instructions.Where(i => i.Keyword == keyword);

    public IEnumerable<string> Runs => All("RUN").Select(i => i.Arguments);
}

/// <summary>
/// A small Dockerfile reader: comment lines dropped (also inside continuations, as BuildKit does), lines ending in a
/// backslash joined to the next, instructions split into stages at each FROM. Parser directives and heredocs are not
/// supported; the Dockerfiles here use neither.
/// </summary>
internal sealed class Dockerfile
{
    public Dockerfile(string path)
    {
        Path = path;
        var current = new StringBuilder();
        int start = 0, lineNo = 0;
        foreach (string raw in File.ReadLines(path))
        {
            lineNo++;
            string line = raw.TrimEnd();
            if (line.TrimStart().StartsWith('#')) continue;
            if (current.Length == 0)
            {
                if (line.Length == 0) continue;
                start = lineNo;
            }
            if (line.EndsWith('\\'))
            {
                current.Append(line.AsSpan(0, line.Length - 1)).Append(' ');
                continue;
            }
            current.Append(line);
            Add(start, current.ToString());
            current.Clear();
        }
        if (current.Length > 0) Add(start, current.ToString());
    }

    public string Path { get; }

    public List<Instruction> Instructions { get; } = [];

    public List<Stage> Stages { get; } = [];

    public Stage Final => Stages[^1];

    /// <summary>Every ENV key with its value, across stages (ENV a=b c=d, or the legacy ENV a b).</summary>
    public IEnumerable<(string Key, string Value, Instruction At)> Env(Stage? stage = null)
    {
        foreach (var i in (stage?.Instructions ?? Instructions).Where(i => i.Keyword == "ENV"))
        {
            var tokens = Tokenize(i.Arguments);
            if (tokens.Count > 0 && !tokens[0].Contains('=', StringComparison.Ordinal))
            {
                yield return (tokens[0], string.Join(' ', tokens.Skip(1)), i);
                continue;
            }
            foreach (string t in tokens)
            {
                int eq = t.IndexOf('=', StringComparison.Ordinal);
                yield return eq < 0 ? (t, "", i) : (t[..eq], t[(eq + 1)..], i);
            }
        }
    }

    /// <summary>ARG names (ARG name[=default]).</summary>
    public IEnumerable<(string Name, Instruction At)> Args =>
        Instructions.Where(i => i.Keyword == "ARG").Select(i => (Tokenize(i.Arguments).FirstOrDefault()?.Split('=')[0] ?? "", i));

    /// <summary>
    /// Each `apt-get install` (or `apt install`) command in a RUN of <paramref name="stage"/>: its options and packages.
    /// </summary>
    public static IEnumerable<(List<string> Options, List<string> Packages, string Run)> AptInstalls(Stage stage)
    {
        foreach (string run in stage.Runs)
        {
            foreach (string command in run.Split(["&&", "||", ";"], StringSplitOptions.TrimEntries))
            {
                var tokens = Tokenize(command);
                int apt = tokens.FindIndex(t => t is "apt-get" or "apt");
                if (apt < 0) continue;
                int install = tokens.IndexOf("install", apt);
                if (install < 0) continue;
                var rest = tokens.Skip(install + 1).ToList();
                yield return ([.. tokens.Skip(apt + 1).Where(t => t.StartsWith('-'))], [.. rest.Where(t => !t.StartsWith('-'))], run);
            }
        }
    }

    /// <summary>Whitespace-separated words, with single or double quotes grouping (and removed).</summary>
    public static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        var word = new StringBuilder();
        char quote = '\0';
        bool inWord = false;
        foreach (char ch in text)
        {
            if (quote != '\0')
            {
                if (ch == quote) quote = '\0';
                else word.Append(ch);
            }
            else if (ch is '"' or '\'') { quote = ch; inWord = true; }
            else if (char.IsWhiteSpace(ch))
            {
                if (inWord) { tokens.Add(word.ToString()); word.Clear(); inWord = false; }
            }
            else { word.Append(ch); inWord = true; }
        }
        if (inWord) tokens.Add(word.ToString());
        return tokens;
    }

    private void Add(int line, string text)
    {
        text = text.Trim();
        int space = text.IndexOfAny([' ', '\t']);
        string keyword = (space < 0 ? text : text[..space]).ToUpperInvariant();
        string arguments = space < 0 ? "" : text[(space + 1)..].Trim();
        var instruction = new Instruction(line, keyword, arguments);
        Instructions.Add(instruction);
        if (keyword == "FROM")
        {
            var tokens = Tokenize(arguments).Where(t => !t.StartsWith("--", StringComparison.Ordinal)).ToList();
            string image = tokens.FirstOrDefault() ?? "";
            string? alias = tokens.Count >= 3 && tokens[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? tokens[2] : null;
            Stages.Add(new Stage(Stages.Count, image, alias, instruction));
        }
        else if (Stages.Count > 0)
        {
            Stages[^1].Instructions.Add(instruction);
        }
    }
}
