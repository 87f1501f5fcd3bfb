using System.Text.Json;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage.Hdf5;

namespace ChunkSeg.Storage.Tests.Hdf5;

/// <summary>Hdf5File against h5py, the independent reader, on a file h5py wrote and on the fixture project's forests.</summary>
public sealed class Hdf5FileTests(Hdf5FileTests.Files files) : IClassFixture<Hdf5FileTests.Files>
{
    /// <summary>One h5py-written sample file per class (read-only).</summary>
    public sealed class Files : IDisposable
    {
        internal TempDir Dir { get; } = new();
        internal string Sample => Dir["sample.h5"];

        public Files() => PythonReference.Run("h5_small.py", "sample", Sample);

        public void Dispose() => Dir.Dispose();
    }

    private readonly string sample = files.Sample;

    /// <summary>h5py's view of <paramref name="paths"/> in <paramref name="file"/>.</summary>
    internal static JsonElement Dump(string file, params string[] paths) =>
        JsonDocument.Parse(PythonReference.Run("h5_small.py", ["dump", file, .. paths])).RootElement;

    private static string[] Strings(JsonElement values) => values.EnumerateArray().Select(v => v.GetString()!).ToArray();
    private static long[] Longs(JsonElement values) => values.EnumerateArray().Select(v => v.GetInt64()).ToArray();
    private static double[] Doubles(JsonElement values) => values.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    [Theory]
    [InlineData("fixed")]
    [InlineData("fixed_scalar")]
    [InlineData("vlen_ascii")]
    [InlineData("vlen_utf8")]
    [InlineData("vlen_scalar")]
    public void Strings_match_h5py(string dataset)
    {
        var expected = Dump(sample, dataset).GetProperty(dataset);
        using var file = Hdf5File.Open(sample);
        Assert.Equal(Strings(expected.GetProperty("values")), file.ReadStrings(dataset));
        Assert.Equal(Longs(expected.GetProperty("shape")), file.Shape("/" + dataset));
    }

    [Fact]
    public void Scalar_string()
    {
        using var file = Hdf5File.Open(sample);
        Assert.Equal("1.4.1b15", file.ReadString("/fixed_scalar"));
        Assert.Equal("Pixel Classification", file.ReadString("vlen_scalar"));
        var e = Assert.Throws<VolumeException>(() => file.ReadString("/fixed"));
        Assert.Contains("sample.h5: /fixed: holds 4 strings", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bools")]
    [InlineData("int8_flags")]
    public void Bools_match_h5py(string dataset)
    {
        var expected = Dump(sample, dataset).GetProperty(dataset);
        var values = expected.GetProperty("values").EnumerateArray()
            .Select(v => v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : v.GetInt64() != 0).ToArray();
        using var file = Hdf5File.Open(sample);
        Assert.Equal(values, file.ReadBools(dataset));
        Assert.Equal(Longs(expected.GetProperty("shape")), file.Shape(dataset));
    }

    [Fact]
    public void Numbers_match_h5py()
    {
        var expected = Dump(sample, "int32", "int32_be", "uint32", "int64", "uint8", "float64", "float32", "empty");
        long[] L(string name) => Longs(expected.GetProperty(name).GetProperty("values"));
        double[] D(string name) => Doubles(expected.GetProperty(name).GetProperty("values"));
        using var file = Hdf5File.Open(sample);
        Assert.Equal(L("int32").Select(v => (int)v), file.ReadInt32s("int32"));
        Assert.Equal(L("int32_be").Select(v => (int)v), file.ReadInt32s("/int32_be"));
        Assert.Equal(L("uint32").Select(v => (uint)v), file.ReadUInt32s("uint32"));
        Assert.Equal(L("int64"), file.ReadInt64s("int64"));
        Assert.Equal(L("uint8").Select(v => (int)v), file.ReadInt32s("uint8"));
        Assert.Equal(D("float64"), file.ReadDoubles("float64"));
        Assert.Equal(D("float32"), file.ReadDoubles("float32"));
        Assert.Equal(L("int32").Select(v => (double)v), file.ReadDoubles("int32"));
        Assert.Empty(file.ReadDoubles("empty"));
        Assert.Equal([2L, 3L], file.Shape("int32"));
        Assert.Equal([0L], file.Shape("empty"));
    }

    [Fact]
    public void Out_of_range_and_wrong_types_are_errors_not_conversions()
    {
        using var file = Hdf5File.Open(sample);
        var e = Assert.Throws<VolumeException>(() => file.ReadInt32s("uint32"));
        Assert.Contains("/uint32: value 4294967295 at index 2 does not fit int32", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.ReadUInt32s("int32"));
        Assert.Contains("does not fit uint32", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.ReadInt32s("float64"));
        Assert.Contains("/float64: holds 8-byte float values; expected integers", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.ReadDoubles("fixed"));
        Assert.Contains("string", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.ReadStrings("int32"));
        Assert.Contains("expected strings", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.ReadBools("float64"));
        Assert.Contains("expected booleans", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("outer")]
    [InlineData("/outer/a")]
    [InlineData("outer/a/deeper/")]
    public void Children_match_h5py_in_ordinal_order(string group)
    {
        string key = group.Trim('/').Length == 0 ? "/" : group.Trim('/');
        var expected = Dump(sample, key).GetProperty(key);
        using var file = Hdf5File.Open(sample);
        Assert.True(file.IsGroup(group));
        Assert.True(file.Exists(group));
        var children = file.Children(group);
        Assert.Equal(Strings(expected.GetProperty("children")), children);
        Assert.Equal(children.Order(StringComparer.Ordinal), children);
    }

    [Fact]
    public void Nested_datasets_and_existence()
    {
        using var file = Hdf5File.Open(sample);
        Assert.Equal([0, 1, 2, 3, 4, 5], file.ReadInt32s("/outer/a/deeper/deepest"));
        Assert.Equal([2L, 3L], file.Shape("outer/a/deeper/deepest"));
        Assert.Equal([1.5], file.ReadDoubles("outer/a/leaf"));
        Assert.True(file.Exists("outer/a/leaf"));
        Assert.False(file.IsGroup("outer/a/leaf"));
        Assert.False(file.Exists("outer/c"));
        Assert.False(file.Exists("outer/c/d/e"));
        Assert.False(file.IsGroup("nope"));
    }

    [Fact]
    public void Attributes_match_h5py()
    {
        var expected = Dump(sample, "outer", "float64");
        var attrs = expected.GetProperty("outer").GetProperty("attrs");
        using var file = Hdf5File.Open(sample);
        Assert.Equal(attrs.GetProperty("version")[0].GetDouble(), file.ReadAttributeDouble("outer", "version"));
        Assert.Equal(attrs.GetProperty("scalar_int")[0].GetDouble(), file.ReadAttributeDouble("/outer", "scalar_int"));
        Assert.Equal(attrs.GetProperty("vlen_text")[0].GetString(), file.ReadAttributeString("outer", "vlen_text"));
        Assert.Equal(attrs.GetProperty("fixed_text")[0].GetString(), file.ReadAttributeString("outer", "fixed_text"));
        Assert.Equal(expected.GetProperty("float64").GetProperty("attrs").GetProperty("unit")[0].GetString(), file.ReadAttributeString("float64", "unit"));
        Assert.True(file.HasAttribute("outer", "pair"));
        Assert.False(file.HasAttribute("outer", "nope"));
        Assert.Null(file.ReadAttributeString("outer", "nope"));
        Assert.Null(file.ReadAttributeString("outer", "version"));

        var e = Assert.Throws<VolumeException>(() => file.ReadAttributeDouble("outer", "pair"));
        Assert.Contains("/outer attribute pair: holds 2 values; expected one", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.ReadAttributeDouble("outer", "nope"));
        Assert.Contains("/outer attribute nope: no such attribute", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.ReadAttributeDouble("outer", "vlen_text"));
        Assert.Contains("expected a number", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.HasAttribute("missing/object", "x"));
        Assert.Contains("sample.h5: /missing/object: no such group or dataset", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_paths_name_file_and_path()
    {
        using var file = Hdf5File.Open(sample);
        var e = Assert.Throws<VolumeException>(() => file.ReadDoubles("/FeatureSelections/Scales"));
        Assert.Equal($"{sample}: /FeatureSelections/Scales: no such dataset", e.Message);
        e = Assert.Throws<VolumeException>(() => file.Shape("outer"));
        Assert.Contains("sample.h5: /outer: is a group, not a dataset", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.Children("float64"));
        Assert.Contains("sample.h5: /float64: is a dataset, not a group", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VolumeException>(() => file.Children("outer/zzz"));
        Assert.Contains("/outer/zzz: no such group", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_and_non_hdf5_files()
    {
        var e = Assert.Throws<VolumeException>(() => Hdf5File.Open(files.Dir["nope.ilp"]));
        Assert.Contains("nope.ilp: file not found", e.Message, StringComparison.Ordinal);
        File.WriteAllText(files.Dir["text.ilp"], "not HDF5 at all");
        e = Assert.Throws<VolumeException>(() => Hdf5File.Open(files.Dir["text.ilp"]));
        Assert.Contains("text.ilp: is not an HDF5 file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Disposed_file_refuses_reads()
    {
        var file = Hdf5File.Open(sample);
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.ReadDoubles("float64"));
    }

    /// <summary>vigra's random-forest layout (ILASTIK_RECIPE §5) in the 3D fixture, as the forest reader will read it.</summary>
    [Fact]
    public void Forest_groups_of_the_fixture_match_h5py()
    {
        string ilp = SharedData.Require("ilastik/PixelClass3D.ilp");
        const string forests = "PixelClassification/ClassifierForests";
        const string forest = forests + "/Forest0000";
        const string tree = forest + "/Tree_0";
        var expected = Dump(ilp, forests, forest, $"{tree}/topology", $"{tree}/parameters", $"{forest}/_ext_param/labels",
            $"{forest}/_options/tree_count_", $"{forests}/known_labels");

        using var file = Hdf5File.Open(ilp);
        Assert.Equal(Strings(expected.GetProperty(forests).GetProperty("children")), file.Children(forests));
        Assert.Equal(Strings(expected.GetProperty(forest).GetProperty("children")), file.Children("/" + forest));
        Assert.Equal(expected.GetProperty(forest).GetProperty("attrs").GetProperty("vigra_random_forest_version")[0].GetDouble(),
            file.ReadAttributeDouble(forest, "vigra_random_forest_version"));

        int[] topology = file.ReadInt32s($"{tree}/topology");
        Assert.Equal(Longs(expected.GetProperty($"{tree}/topology").GetProperty("values")).Select(v => (int)v), topology);
        Assert.Equal(Doubles(expected.GetProperty($"{tree}/parameters").GetProperty("values")), file.ReadDoubles($"{tree}/parameters"));
        Assert.Equal(Longs(expected.GetProperty($"{forest}/_ext_param/labels").GetProperty("values")).Select(v => (uint)v),
            file.ReadUInt32s($"{forest}/_ext_param/labels"));
        Assert.Equal(Doubles(expected.GetProperty($"{forest}/_options/tree_count_").GetProperty("values")),
            file.ReadDoubles($"{forest}/_options/tree_count_"));
        Assert.Equal(Longs(expected.GetProperty($"{forests}/known_labels").GetProperty("values")).Select(v => (uint)v),
            file.ReadUInt32s($"{forests}/known_labels"));

        // The recipe's worked example: [F, C, root split on column 3, two leaves].
        Assert.Equal([11, 2, 0, 0, 9, 7, 3, 0x40000000, 2, 0x40000000, 5], topology);
    }

    /// <summary>The "more" group: ASCII-tagged UTF-8, big-endian and unusual widths, an empty dataspace, soft links.</summary>
    [Fact]
    public void Less_common_encodings_widths_and_links_match_h5py()
    {
        string[] names = ["vlen_ascii_utf8", "fixed_ascii_utf8", "float64_be", "uint16_be", "int16", "uint64", "uint64_big", "float16", "null"];
        var expected = Dump(sample, ["more", "more/soft", .. names.Select(n => "more/" + n)]);
        JsonElement Values(string name) => expected.GetProperty("more/" + name).GetProperty("values");
        using var file = Hdf5File.Open(sample);

        Assert.Equal(Strings(Values("vlen_ascii_utf8")), file.ReadStrings("more/vlen_ascii_utf8"));
        Assert.Equal("\u03c3=0.3", file.ReadStrings("more/fixed_ascii_utf8")[0]);
        Assert.Equal(Strings(Values("fixed_ascii_utf8")), file.ReadStrings("more/fixed_ascii_utf8"));
        Assert.Equal(Doubles(Values("float64_be")), file.ReadDoubles("more/float64_be"));
        Assert.Equal(Longs(Values("uint16_be")), file.ReadInt64s("more/uint16_be"));
        Assert.Equal(Longs(Values("int16")).Select(v => (int)v), file.ReadInt32s("more/int16"));
        Assert.Equal(Longs(Values("uint64")), file.ReadInt64s("more/uint64"));
        Assert.Equal(Doubles(Values("float16")), file.ReadDoubles("more/float16"));
        Assert.Empty(file.ReadDoubles("more/null"));
        Assert.Empty(file.Shape("more/null"));

        var e = Assert.Throws<VolumeException>(() => file.ReadInt64s("more/uint64_big"));
        Assert.Contains("/more/uint64_big: value 9223372036854775813 at index 1 does not fit int64", e.Message, StringComparison.Ordinal);
        Assert.Equal([1.0, 9223372036854775813.0], file.ReadDoubles("more/uint64_big"));

        // A soft link is followed; a dangling one exists as a link (listed) but names no object.
        Assert.Equal(Strings(expected.GetProperty("more").GetProperty("children")), file.Children("more"));
        Assert.True(file.IsGroup("more/soft"));
        Assert.Equal(Strings(expected.GetProperty("more/soft").GetProperty("children")), file.Children("more/soft"));
        Assert.Equal([1.5], file.ReadDoubles("more/soft/leaf"));
        Assert.Equal([1.5], file.ReadDoubles("//more//soft/leaf"));
        Assert.False(file.Exists("more/dangling"));
        e = Assert.Throws<VolumeException>(() => file.ReadDoubles("more/dangling"));
        Assert.Contains("/more/dangling: no such dataset", e.Message, StringComparison.Ordinal);
        Assert.False(file.Exists("float64/below_a_dataset"));

        var attrs = expected.GetProperty("more").GetProperty("attrs");
        Assert.Equal(attrs.GetProperty("float32")[0].GetDouble(), file.ReadAttributeDouble("more", "float32"));
        Assert.Equal(attrs.GetProperty("ascii_utf8")[0].GetString(), file.ReadAttributeString("more", "ascii_utf8"));
        // PureHDF cannot read a big-endian attribute (datasets are swapped here, attributes cannot be read raw).
        e = Assert.Throws<VolumeException>(() => file.ReadAttributeDouble("more", "be_double"));
        Assert.Contains("/more: reading attributes failed: Byte order", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Everything under <paramref name="group"/>, read through every reader, as text (errors included).</summary>
    private static string ReadEverything(Hdf5File file, string group)
    {
        var text = new System.Text.StringBuilder();
        void Try(string what, Func<object> read)
        {
            try
            {
                object value = read();
                text.Append(what).Append(" = ").AppendJoin(",", value is System.Collections.IEnumerable items and not string
                    ? items.Cast<object>().Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)) : [value.ToString()]).Append('\n');
            }
            catch (VolumeException e)
            {
                text.Append(what).Append(" ! ").Append(e.Message).Append('\n');
            }
        }
        void Walk(string path)
        {
            foreach (string name in file.Children(path))
            {
                string child = path == "/" ? name : $"{path}/{name}";
                Try($"{child} version", () => file.HasAttribute(child, "vigra_random_forest_version") ? file.ReadAttributeDouble(child, "vigra_random_forest_version") : (object)"-");
                if (!file.Exists(child)) continue;
                if (file.IsGroup(child))
                {
                    Walk(child);
                    continue;
                }
                Try($"{child} shape", () => file.Shape(child));
                Try($"{child} doubles", () => file.ReadDoubles(child));
                Try($"{child} int64s", () => file.ReadInt64s(child));
                Try($"{child} bools", () => file.ReadBools(child));
                Try($"{child} strings", () => file.ReadStrings(child));
            }
        }
        Walk(group);
        return text.ToString();
    }

    /// <summary>
    /// <paramref name="threads"/> threads read <paramref name="group"/> through one instance, all starting at once,
    /// <paramref name="rounds"/> times each; every result must be the one a single thread gets.
    /// </summary>
    private static void AssertSameFromSeveralThreads(string path, string group, int threads, int rounds)
    {
        using var file = Hdf5File.Open(path);
        string expected = ReadEverything(file, group);
        var results = new string[threads][];
        using var start = new Barrier(threads);
        Exception? failure = null;
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                results[t] = Enumerable.Range(0, rounds).Select(_ => ReadEverything(file, group)).ToArray();
            }
            catch (Exception e)
            {
                failure = e;
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        Assert.Null(failure);
        Assert.All(results.SelectMany(r => r), text => Assert.Equal(expected, text));
    }

    [Fact]
    public void One_file_read_from_several_threads_at_once_gives_identical_results() =>
        AssertSameFromSeveralThreads(sample, "/", threads: 8, rounds: 3);

    /// <summary>The fixture's random forests (what IlastikProject.ReadForests reads), by four threads at once.</summary>
    [Fact]
    public void Fixture_forests_read_from_several_threads_at_once_give_identical_results() =>
        AssertSameFromSeveralThreads(SharedData.Require("ilastik/PixelClass3D.ilp"), IlastikForestsGroup, threads: 4, rounds: 1);

    private const string IlastikForestsGroup = "PixelClassification/ClassifierForests";
}
