using ChunkSeg.Contracts.Errors;
using RabbitMQ.Client;

namespace ChunkSeg.Broker;

/// <summary>
/// Where the broker is and who we are to it. The address comes from --broker or CHUNKSEG_BROKER; credentials only
/// from the environment or mounted secret files (CHUNKSEG_BROKER_USER / CHUNKSEG_BROKER_PASSWORD, or the same names
/// with _FILE), never from the command line, where every user of the machine could read them in the process list.
/// Without credentials RabbitMQ's default guest account is used (which the broker accepts from localhost only).
/// </summary>
public sealed record BrokerEndpoint(Uri Address, string User, string Password)
{
    public const string AddressVariable = "CHUNKSEG_BROKER", UserVariable = "CHUNKSEG_BROKER_USER", PasswordVariable = "CHUNKSEG_BROKER_PASSWORD";

    public static BrokerEndpoint Resolve(string? address, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        address ??= environment(AddressVariable);
        if (string.IsNullOrWhiteSpace(address))
            throw new UsageException($"--broker: no broker given; pass --broker amqp://HOST:5672/ or set {AddressVariable}");
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || (uri.Scheme != "amqp" && uri.Scheme != "amqps"))
            throw new UsageException($"--broker {address}: not an amqp:// or amqps:// address");
        if (!string.IsNullOrEmpty(uri.UserInfo))
            throw new UsageException($"--broker: credentials in the address are refused (they show in process lists and logs); " +
                $"set {UserVariable} and {PasswordVariable}, or {UserVariable}_FILE and {PasswordVariable}_FILE naming mounted secret files");
        string user = Secret(UserVariable, environment) ?? "guest";
        string password = Secret(PasswordVariable, environment) ?? "guest";
        return new BrokerEndpoint(uri, user, password);
    }

    /// <summary>A connection factory with automatic recovery: a broker restart is survived by reconnecting.</summary>
    public ConnectionFactory Factory(string clientName, ushort consumerConcurrency = 1) => new()
    {
        Uri = Address,
        UserName = User,
        Password = Password,
        ClientProvidedName = clientName,
        AutomaticRecoveryEnabled = true,
        TopologyRecoveryEnabled = true,
        NetworkRecoveryInterval = TimeSpan.FromSeconds(1),
        RequestedHeartbeat = TimeSpan.FromSeconds(10),
        ConsumerDispatchConcurrency = consumerConcurrency,
    };

    /// <summary>Connects, waiting for a broker that is still starting (up to <paramref name="patience"/>).</summary>
    public async Task<IConnection> ConnectAsync(string clientName, ushort consumerConcurrency, TimeSpan patience, CancellationToken ct)
    {
        var factory = Factory(clientName, consumerConcurrency);
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                return await factory.CreateConnectionAsync(clientName, ct).ConfigureAwait(false);
            }
            catch (RabbitMQ.Client.Exceptions.BrokerUnreachableException e) when (DateTime.UtcNow < deadline)
            {
                _ = e;
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
            catch (RabbitMQ.Client.Exceptions.BrokerUnreachableException e)
            {
                throw new ClusterException($"--broker {Address}: cannot connect ({e.InnerException?.Message ?? e.Message})");
            }
        }
    }

    public override string ToString() => Address.ToString();

    private static string? Secret(string name, Func<string, string?> environment)
    {
        if (environment(name + "_FILE") is { Length: > 0 } file)
        {
            try
            {
                return File.ReadAllText(file).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"{name}_FILE={file}: cannot read the secret ({e.Message})");
            }
        }
        return environment(name) is { Length: > 0 } value ? value : null;
    }
}
