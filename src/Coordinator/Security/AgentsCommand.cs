using System.Globalization;
using Federated.Coordinator.Hosting;

namespace Federated.Coordinator.Security;

/// <summary>
/// <c>federated-coordinator agents register|list|revoke|token</c>: edits the agent registry file the coordinator reads
/// (<c>Coordinator:Security:AgentsFile</c> under <c>Coordinator:StateDirectory</c>). A running coordinator picks the
/// change up within <c>Coordinator:Security:ReloadSeconds</c>; a revoked agent's session is closed.
/// </summary>
internal static class AgentsCommand
{
    public const string Usage = """
        Usage: federated-coordinator agents <command> [options]

          register <agent-id> <public-key>   Allow the agent holding this Ed25519 public key (base64 of the 32 raw
                                             bytes, as the agent logs it at start) to enrol as <agent-id>.
          list                               Registered and revoked agents, then enrolment tokens.
          revoke <agent-id>                  Refuse the agent from now on (PermissionDenied); a running coordinator
                                             closes its session. Works for open-mode agents too.
          token [--uses N] [--expires-hours H] [--agent ID]
                                             Issue an enrolment token (default one use, 24 hours, any agent id): an
                                             agent with an unregistered key enrols once with it (Client:EnrolmentToken)
                                             and its key is registered. The token is printed once; only its hash is kept.

        Where the registry is (first that applies):
          --file PATH                        The registry file itself.
          --state-dir DIR                    DIR/agents.json (or DIR/<Coordinator:Security:AgentsFile>).
          --Coordinator:StateDirectory DIR   As the coordinator reads it; appsettings.json and Coordinator__*
                                             environment variables apply as for the coordinator (default state/coordinator).

        Exit codes: 0 done, 2 bad input (the message says what).
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        time ??= TimeProvider.System;
        try
        {
            if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
            {
                output.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }

            var (positional, flags, settings) = Parse(args[1..]);
            var store = new AgentKeyStore(ResolvePath(flags, settings), time);
            switch (args[0])
            {
                case "register":
                    Expect(positional, 2, "register <agent-id> <public-key>");
                    var id = CheckId(positional[0]);
                    var key = ParseKey(positional[1]);
                    var agent = store.Register(id, key, "admin");
                    output.WriteLine($"registered agent {agent.Id} with key {agent.PublicKey} in {store.Path}");
                    return 0;
                case "revoke":
                    Expect(positional, 1, "revoke <agent-id>");
                    var revoked = store.Revoke(CheckId(positional[0]));
                    output.WriteLine(revoked ? $"revoked agent {positional[0]} in {store.Path}" : $"agent {positional[0]} was already revoked");
                    return 0;
                case "list":
                    Expect(positional, 0, "list");
                    List(store, output, time);
                    return 0;
                case "token":
                    Expect(positional, 0, "token [--uses N] [--expires-hours H] [--agent ID]");
                    var uses = flags.TryGetValue("uses", out var u) ? ParseInt(u, "--uses", 1, 1_000_000) : 1;
                    var hours = flags.TryGetValue("expires-hours", out var h) ? ParseDouble(h, "--expires-hours") : 24;
                    var bound = flags.TryGetValue("agent", out var a) ? CheckId(a) : null;
                    var (token, record) = store.IssueToken(uses, hours > 0 ? TimeSpan.FromHours(hours) : null, bound);
                    output.WriteLine(token);
                    error.WriteLine($"token {record.Id}: {record.MaxUses} use(s), expires {(record.ExpiresAt is { } e ? e.ToString("u", CultureInfo.InvariantCulture) : "never")}" +
                        $"{(bound is null ? "" : $", only for agent {bound}")}; give it to the agent as Client:EnrolmentToken (it is not shown again)");
                    return 0;
                default:
                    throw new ArgumentException($"Unknown agents command '{args[0]}': use register, list, revoke or token (--help shows usage).");
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException or FormatException)
        {
            error.WriteLine($"federated-coordinator agents: {e.Message}");
            return 2;
        }
    }

    private static void List(AgentKeyStore store, TextWriter output, TimeProvider time)
    {
        var document = store.Current;
        var ci = CultureInfo.InvariantCulture;
        output.WriteLine($"# {store.Path}");
        output.WriteLine("agent\tstatus\tpublic key\tregistered\tsource");
        foreach (var agent in document.Agents.OrderBy(a => a.Id, StringComparer.Ordinal))
        {
            var status = agent.RevokedAt is { } r ? $"revoked {r.ToString("u", ci)}" : "active";
            output.WriteLine($"{agent.Id}\t{status}\t{agent.PublicKey ?? "-"}\t{agent.RegisteredAt.ToString("u", ci)}\t{agent.Source}");
        }

        output.WriteLine("token\tuses\texpires\tagent\tstate");
        var now = time.GetUtcNow();
        foreach (var token in document.Tokens.OrderBy(t => t.CreatedAt))
        {
            var state = token.Uses >= token.MaxUses ? "used up" : token.ExpiresAt is { } x && x <= now ? "expired" : "usable";
            output.WriteLine($"{token.Id}\t{token.Uses}/{token.MaxUses}\t{(token.ExpiresAt is { } e ? e.ToString("u", ci) : "never")}\t{token.AgentId ?? "any"}\t{state}");
        }
    }

    private static (List<string> Positional, Dictionary<string, string> Flags, Dictionary<string, string?> Settings) Parse(string[] args)
    {
        var positional = new List<string>();
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(arg);
                continue;
            }

            var name = arg[2..];
            string value;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            else if (i + 1 < args.Length)
            {
                value = args[++i];
            }
            else
            {
                throw new ArgumentException($"--{name} needs a value.");
            }

            if (name.StartsWith("Coordinator:", StringComparison.OrdinalIgnoreCase))
            {
                settings[name] = value;
            }
            else if (name is "file" or "state-dir" or "uses" or "expires-hours" or "agent")
            {
                flags[name] = value;
            }
            else
            {
                throw new ArgumentException($"Unknown option --{name}: use --file, --state-dir, --uses, --expires-hours, --agent or --Coordinator:Key.");
            }
        }

        return (positional, flags, settings);
    }

    private static string ResolvePath(Dictionary<string, string> flags, Dictionary<string, string?> settings)
    {
        if (flags.TryGetValue("file", out var file))
        {
            return file;
        }

        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddInMemoryCollection(settings)
            .Build();
        var section = configuration.GetSection(CoordinatorOptions.Section);
        var directory = flags.TryGetValue("state-dir", out var dir) ? dir : section["StateDirectory"] ?? new CoordinatorOptions().StateDirectory;
        var name = section["Security:AgentsFile"] is { Length: > 0 } configured ? configured : new SecuritySettings().AgentsFile;
        return Path.Combine(directory, name);
    }

    private static void Expect(List<string> positional, int count, string usage)
    {
        if (positional.Count != count)
        {
            throw new ArgumentException($"Expected: agents {usage}.");
        }
    }

    private static string CheckId(string id)
    {
        if (id.Length is 0 or > 128 || id.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            throw new ArgumentException($"'{id}' is not an agent id: at most 128 characters without spaces or control characters.");
        }

        return id;
    }

    private static byte[] ParseKey(string text)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(text.Trim());
        }
        catch (FormatException)
        {
            throw new ArgumentException($"'{text}' is not a public key: give the base64 of the 32 raw Ed25519 bytes, as the agent logs it.");
        }

        return key.Length == 32 ? key : throw new ArgumentException($"The public key is {key.Length} bytes; an Ed25519 public key is 32.");
    }

    private static int ParseInt(string text, string name, int min, int max) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new ArgumentException($"{name} must be a whole number from {min} to {max}, not '{text}'.");

    private static double ParseDouble(string text, string name) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= 0 && double.IsFinite(value)
            ? value
            : throw new ArgumentException($"{name} must be 0 (never) or a positive number of hours, not '{text}'.");
}
