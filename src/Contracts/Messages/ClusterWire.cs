using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Contracts.Messages;

/// <summary>
/// The cluster's wire format: each <see cref="IClusterMessage"/> is UTF-8 JSON (camelCase) under a fixed manifest
/// naming its kind and version. A manifest is a promise: a field may be added (optional), never renamed or
/// retyped; a change that breaks that is a new manifest (".v2") read beside the old one.
/// <code>
///   manifest               message                 between
///   chunk-work.v1          ChunkWork               coordinator → chunk actor (shard region) → node runner
///   chunk-accepted.v1      ChunkAccepted           node → coordinator (singleton proxy)
///   chunk-rejected.v1      ChunkRejected           node → coordinator
///   chunk-result.v1        ChunkResult             node → coordinator
///   node-heartbeat.v1      NodeHeartbeat           node → coordinator, every second
///   submit-job.v1 …        client requests         client → coordinator (cluster client → receptionist)
/// </code>
/// Voxel data never travels here (Akka's frame limit is 128 kB): chunks are read and written on the shared store.
/// </summary>
public static class ClusterWire
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new Long3Converter(), new HaloConverter(), new JobIdConverter(), new ChunkIdConverter() },
    };

    private static readonly FrozenDictionary<Type, string> Manifests = new Dictionary<Type, string>
    {
        [typeof(ChunkWork)] = "chunk-work.v1",
        [typeof(ChunkAccepted)] = "chunk-accepted.v1",
        [typeof(ChunkRejected)] = "chunk-rejected.v1",
        [typeof(ChunkResult)] = "chunk-result.v1",
        [typeof(NodeHeartbeat)] = "node-heartbeat.v1",
        [typeof(SubmitJob)] = "submit-job.v1",
        [typeof(CancelJob)] = "cancel-job.v1",
        [typeof(GetClusterStatus)] = "get-status.v1",
        [typeof(ChangeMember)] = "change-member.v1",
        [typeof(GetClusterView)] = "get-view.v1",
        [typeof(ClusterReply)] = "reply.v1",
        [typeof(ClusterStatus)] = "status.v1",
        [typeof(ClusterView)] = "view.v1",
        [typeof(GetChunkMap)] = "get-chunk-map.v1",
        [typeof(ChunkMap)] = "chunk-map.v1",
    }.ToFrozenDictionary();

    private static readonly FrozenDictionary<string, Type> Types = Manifests.ToFrozenDictionary(p => p.Value, p => p.Key, StringComparer.Ordinal);

    /// <summary>The manifest of a message; a type without one is a programming error.</summary>
    public static string ManifestOf(object message) => Manifests.TryGetValue(message.GetType(), out var manifest)
        ? manifest
        : throw new ArgumentException($"{message.GetType().Name} has no wire manifest; add it to {nameof(ClusterWire)}", nameof(message));

    public static byte[] Encode(object message) => JsonSerializer.SerializeToUtf8Bytes(message, message.GetType(), Options);

    /// <summary>Decodes a message; an unknown manifest or a body that is not that message is a <see cref="FormatException"/>.</summary>
    public static IClusterMessage Decode(ReadOnlySpan<byte> body, string manifest)
    {
        if (!Types.TryGetValue(manifest, out var type))
            throw new FormatException($"unknown cluster message \"{manifest}\" (from a newer ChunkSeg?); known: {string.Join(", ", Types.Keys.Order(StringComparer.Ordinal))}");
        try
        {
            return (IClusterMessage)(JsonSerializer.Deserialize(body, type, Options) ?? throw new FormatException($"empty {manifest}"));
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a {manifest}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Signs <paramref name="request"/> with the shared secret: the MAC covers the request's manifest and JSON (auth left
    /// out), a nonce and the time, so a captured request cannot be altered, and replays are limited to <see cref="AuthWindow"/>.
    /// </summary>
    public static T Signed<T>(T request, byte[] secret, DateTimeOffset now) where T : IAuthorizedRequest
    {
        string nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        long time = now.ToUnixTimeSeconds();
        return (T)WithAuth(request, new ClusterAuth(nonce, time, Mac(request, secret, nonce, time)));
    }

    /// <summary>Requests older or newer than this (clock skew included) are refused.</summary>
    public static readonly TimeSpan AuthWindow = TimeSpan.FromMinutes(5);

    /// <summary>Null when <paramref name="request"/> carries a valid proof of <paramref name="secret"/>; otherwise why not.</summary>
    public static string? Verify(IAuthorizedRequest request, byte[]? secret, DateTimeOffset now)
    {
        if (secret is null)
            return "this coordinator has no cluster secret (set CHUNKSEG_CLUSTER_SECRET or CHUNKSEG_CLUSTER_SECRET_FILE where it runs); changes are refused";
        if (request.Auth is not { } auth)
            return "the request is not signed: set CHUNKSEG_CLUSTER_SECRET or CHUNKSEG_CLUSTER_SECRET_FILE to the cluster's secret";
        if (Math.Abs(now.ToUnixTimeSeconds() - auth.UnixSeconds) > AuthWindow.TotalSeconds)
            return $"the request's time is more than {AuthWindow.TotalMinutes:0} minutes from the coordinator's clock; refused";
        byte[] expected = Encoding.ASCII.GetBytes(Mac(request, secret, auth.Nonce, auth.UnixSeconds));
        return CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(auth.Mac))
            ? null
            : "the cluster secret does not match the coordinator's (CHUNKSEG_CLUSTER_SECRET / CHUNKSEG_CLUSTER_SECRET_FILE); refused";
    }

    private static string Mac(IAuthorizedRequest request, byte[] secret, string nonce, long time)
    {
        byte[] body = Encode(WithAuth(request, null));
        byte[] header = Encoding.UTF8.GetBytes($"{ManifestOf(request)}\n{nonce}\n{time}\n");
        return Convert.ToHexStringLower(HMACSHA256.HashData(secret, (byte[])[.. header, .. body]));
    }

    private static IAuthorizedRequest WithAuth(IAuthorizedRequest request, ClusterAuth? auth) => request switch
    {
        SubmitJob s => s with { Auth = auth },
        CancelJob c => c with { Auth = auth },
        ChangeMember m => m with { Auth = auth },
        _ => throw new ArgumentException($"{request.GetType().Name} cannot be signed", nameof(request)),
    };

    private sealed class Long3Converter : JsonConverter<Long3>
    {
        public override Long3 Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var v = JsonSerializer.Deserialize<long[]>(ref reader, options);
            return v is { Length: 3 } ? new Long3(v[0], v[1], v[2]) : throw new JsonException("expected [z, y, x]");
        }

        public override void Write(Utf8JsonWriter writer, Long3 value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, new[] { value.Z, value.Y, value.X }, options);
    }

    private sealed class HaloConverter : JsonConverter<Halo>
    {
        public override Halo Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var v = JsonSerializer.Deserialize<int[]>(ref reader, options);
            return v is { Length: 3 } ? new Halo(v[0], v[1], v[2]) : throw new JsonException("expected [z, y, x]");
        }

        public override void Write(Utf8JsonWriter writer, Halo value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, new[] { value.Z, value.Y, value.X }, options);
    }

    private sealed class JobIdConverter : JsonConverter<JobId>
    {
        public override JobId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => new(reader.GetString() ?? "");
        public override void Write(Utf8JsonWriter writer, JobId value, JsonSerializerOptions options) => writer.WriteStringValue(value.Value);
    }

    private sealed class ChunkIdConverter : JsonConverter<ChunkId>
    {
        public override ChunkId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => new(reader.GetInt64());
        public override void Write(Utf8JsonWriter writer, ChunkId value, JsonSerializerOptions options) => writer.WriteNumberValue(value.Value);
    }
}
