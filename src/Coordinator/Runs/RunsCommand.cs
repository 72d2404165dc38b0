using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Federated.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Federated.Coordinator.Runs;

/// <summary>
/// <c>federated-coordinator runs submit|list|show|pause|resume|abort</c>: the admin CLI, a client of a running
/// coordinator's <c>federated.v1.Admin</c> service.
/// </summary>
internal static class RunsCommand
{
    public const string Usage = """
        Usage: federated-coordinator runs <command> [options]

          submit (--agents ID,ID,... | --label KEY=VALUE ...) [--name TEXT] [--set KEY=VALUE ...] [--settings FILE.json]
                                   Start a run over those agents (ids and/or labels the agents report with
                                   Client:Labels) with its own settings: keys of the Coordinator section (Model,
                                   Strategy, StrategyOptions:mu, Rounds, Training:LearningRate, ...), from a JSON
                                   file shaped like appsettings.json (a "Coordinator" object or its content) and/or
                                   --set (which wins). Unset keys take the coordinator's own values.
          list [--active]          Every run (the configured one first), or the running and paused ones.
          show <run-id>            One run: state, agents, settings and its rounds.
          pause <run-id>           Start no new round (the round in progress finishes).
          resume <run-id>          Go on with a paused run.
          abort <run-id> [--reason TEXT]
                                   End a run now; its agents are released and its history kept.

        Connection:
          --address URL            The coordinator (default http://localhost:5000, or FEDERATED_ADDRESS).
          --token TOKEN            Coordinator:Admin:Token (or FEDERATED_ADMIN_TOKEN); without one the coordinator
                                   answers callers on its own machine only.
          --ca FILE                A PEM certificate to trust for https:// (a private CA).
          --json                   Print the replies as JSON.

        Exit codes: 0 done, 1 refused by the coordinator or unreachable (the message says why), 2 bad input.
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            output.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        Options options;
        try
        {
            options = Options.Parse(args[1..]);
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"federated-coordinator runs: {e.Message}");
            return 2;
        }

        try
        {
            using var channel = Connect(options);
            var admin = new Admin.AdminClient(channel);
            var headers = options.Token.Length > 0 ? new Metadata { { "authorization", $"Bearer {options.Token}" } } : [];
            var deadline = DateTime.UtcNow.AddSeconds(60);
            switch (args[0])
            {
                case "submit":
                    options.ExpectIds(0, "submit");
                    var request = options.ToSubmitRequest();
                    Print(output, options, await admin.SubmitRunAsync(request, headers, deadline), detailed: false);
                    return 0;
                case "list":
                    options.ExpectIds(0, "list");
                    var list = await admin.ListRunsAsync(new ListRunsRequest { ActiveOnly = options.ActiveOnly }, headers, deadline);
                    if (options.Json)
                    {
                        output.WriteLine(JsonFormatter.Default.Format(list));
                    }
                    else
                    {
                        PrintTable(output, list.Runs);
                    }

                    return 0;
                case "show":
                    Print(output, options, await admin.GetRunAsync(new RunRequest { RunId = options.ExpectIds(1, "show <run-id>") }, headers, deadline), detailed: true);
                    return 0;
                case "pause":
                    Print(output, options, await admin.PauseRunAsync(new RunRequest { RunId = options.ExpectIds(1, "pause <run-id>") }, headers, deadline), detailed: false);
                    return 0;
                case "resume":
                    Print(output, options, await admin.ResumeRunAsync(new RunRequest { RunId = options.ExpectIds(1, "resume <run-id>") }, headers, deadline), detailed: false);
                    return 0;
                case "abort":
                    var abort = new AbortRunRequest { RunId = options.ExpectIds(1, "abort <run-id>"), Reason = options.Reason };
                    Print(output, options, await admin.AbortRunAsync(abort, headers, deadline), detailed: false);
                    return 0;
                default:
                    error.WriteLine($"federated-coordinator runs: unknown command '{args[0]}'; use submit, list, show, pause, resume or abort (--help).");
                    return 2;
            }
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"federated-coordinator runs: {e.Message}");
            return 2;
        }
        catch (RpcException e)
        {
            error.WriteLine($"federated-coordinator runs: {e.StatusCode}: {e.Status.Detail}");
            return 1;
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or HttpRequestException)
        {
            error.WriteLine($"federated-coordinator runs: {e.Message}");
            return 1;
        }
    }

    private static GrpcChannel Connect(Options options)
    {
        if (!Uri.TryCreate(options.Address, UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException($"--address '{options.Address}' is not an http:// or https:// address.");
        }

        var handler = new SocketsHttpHandler();
        if (options.CaFile.Length > 0)
        {
            if (!File.Exists(options.CaFile))
            {
                throw new ArgumentException($"--ca '{options.CaFile}' does not exist.");
            }

            var authority = X509CertificateLoader.LoadCertificateFromFile(options.CaFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(authority);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) == System.Net.Security.SslPolicyErrors.None
                    && chain.Build(new X509Certificate2(certificate));
            };
        }

        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    private static void Print(TextWriter output, Options options, RunInfo run, bool detailed)
    {
        if (options.Json)
        {
            output.WriteLine(JsonFormatter.Default.Format(run));
            return;
        }

        output.WriteLine($"run        {run.RunId}{(run.Configured ? " (configured)" : "")}{(run.Name.Length > 0 ? $"  \"{run.Name}\"" : "")}");
        output.WriteLine($"state      {run.State}{(run.Reason.Length > 0 ? $": {run.Reason}" : "")}");
        output.WriteLine($"model      {run.Model}, strategy {run.Strategy}");
        output.WriteLine($"rounds     {run.CompletedRounds} of {run.TotalRounds} completed (current {run.CurrentRound})");
        output.WriteLine($"agents     {(run.Agents.Count > 0 ? string.Join(", ", run.Agents) : "(none now)")}");
        if (run.AgentIds.Count + run.AgentLabels.Count > 0)
        {
            output.WriteLine($"selector   ids [{string.Join(", ", run.AgentIds)}] labels [{string.Join(", ", run.AgentLabels.Select(kv => $"{kv.Key}={kv.Value}"))}]");
        }

        output.WriteLine($"folder     {run.StateDirectory}");
        if (run.SubmittedUnixMs > 0)
        {
            output.WriteLine($"submitted  {DateTimeOffset.FromUnixTimeMilliseconds(run.SubmittedUnixMs):u}{(run.EndedUnixMs > 0 ? $", ended {DateTimeOffset.FromUnixTimeMilliseconds(run.EndedUnixMs):u}" : "")}");
        }

        if (!detailed)
        {
            return;
        }

        foreach (var (key, value) in run.Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"setting    {key} = {value}");
        }

        foreach (var round in run.Rounds)
        {
            string Cell(string column) => round.Values.TryGetValue(column, out var v) ? v : "";
            output.WriteLine($"round {Cell("round"),4}  test accuracy {Cell("test_accuracy"),-8} test loss {Cell("test_loss"),-8} results {Cell("results"),-4} failures {Cell("failures"),-4} wall {Cell("wall_s")} s");
        }
    }

    private static void PrintTable(TextWriter output, IEnumerable<RunInfo> runs)
    {
        output.WriteLine($"{"RUN",-18} {"STATE",-9} {"ROUNDS",-9} {"MODEL",-12} {"STRATEGY",-10} {"AGENTS",6}  NAME");
        foreach (var run in runs)
        {
            var rounds = string.Create(CultureInfo.InvariantCulture, $"{run.CompletedRounds}/{run.TotalRounds}");
            output.WriteLine($"{run.RunId,-18} {run.State,-9} {rounds,-9} {run.Model,-12} {run.Strategy,-10} {run.Agents.Count,6}  {(run.Configured ? "(configured)" : run.Name)}");
        }
    }

    /// <summary>The command line after the command word.</summary>
    private sealed class Options
    {
        public List<string> Ids { get; } = [];
        public string Address { get; private set; } = Environment.GetEnvironmentVariable("FEDERATED_ADDRESS") is { Length: > 0 } a ? a : "http://localhost:5000";
        public string Token { get; private set; } = Environment.GetEnvironmentVariable("FEDERATED_ADMIN_TOKEN") ?? "";
        public string CaFile { get; private set; } = "";
        public bool Json { get; private set; }
        public bool ActiveOnly { get; private set; }
        public string Name { get; private set; } = "";
        public string Reason { get; private set; } = "";
        public List<string> Agents { get; } = [];
        public Dictionary<string, string> Labels { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> Settings { get; } = new(StringComparer.OrdinalIgnoreCase);
        public string SettingsFile { get; private set; } = "";

        public static Options Parse(string[] args)
        {
            var o = new Options();
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--address": o.Address = Value(); break;
                    case "--token": o.Token = Value(); break;
                    case "--ca": o.CaFile = Value(); break;
                    case "--json": o.Json = true; break;
                    case "--active": o.ActiveOnly = true; break;
                    case "--name": o.Name = Value(); break;
                    case "--reason": o.Reason = Value(); break;
                    case "--agents": o.Agents.AddRange(Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)); break;
                    case "--label":
                        var (labelKey, labelValue) = Pair(Value(), "--label");
                        o.Labels[labelKey] = labelValue;
                        break;
                    case "--set":
                        var (key, value) = Pair(Value(), "--set");
                        o.Settings[key] = value;
                        break;
                    case "--settings": o.SettingsFile = Value(); break;
                    default:
                        if (args[i].StartsWith('-'))
                        {
                            throw new ArgumentException($"unknown option '{args[i]}' (--help lists them).");
                        }

                        o.Ids.Add(args[i]);
                        break;
                }
            }

            return o;
        }

        private static (string Key, string Value) Pair(string text, string flag)
        {
            var equals = text.IndexOf('=', StringComparison.Ordinal);
            return equals > 0 ? (text[..equals].Trim(), text[(equals + 1)..]) : throw new ArgumentException($"{flag} takes KEY=VALUE, not '{text}'.");
        }

        /// <summary>The one run id the command takes (or none); an error otherwise.</summary>
        public string ExpectIds(int count, string usage)
        {
            if (Ids.Count != count)
            {
                throw new ArgumentException($"usage: runs {usage}{(count == 0 && Ids.Count > 0 ? $" (unexpected '{Ids[0]}')" : "")}.");
            }

            return count == 0 ? "" : Ids[0];
        }

        public SubmitRunRequest ToSubmitRequest()
        {
            var request = new SubmitRunRequest { Name = Name, AgentIds = { Agents }, AgentLabels = { Labels } };
            if (SettingsFile.Length > 0)
            {
                if (!File.Exists(SettingsFile))
                {
                    throw new ArgumentException($"--settings '{SettingsFile}' does not exist.");
                }

                IConfigurationRoot file;
                try
                {
                    file = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(SettingsFile), optional: false).Build();
                }
                catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
                {
                    throw new ArgumentException($"--settings '{SettingsFile}' is not a JSON settings file: {e.Message}", e);
                }

                IConfiguration root = file.GetSection(Hosting.CoordinatorOptions.Section).Exists() ? file.GetSection(Hosting.CoordinatorOptions.Section) : file;
                foreach (var (key, value) in root.AsEnumerable(makePathsRelative: true))
                {
                    if (value is not null)
                    {
                        request.Settings[key] = value;
                    }
                }
            }

            foreach (var (key, value) in Settings)
            {
                request.Settings[key] = value;
            }

            if (request.AgentIds.Count == 0 && request.AgentLabels.Count == 0)
            {
                throw new ArgumentException("submit needs agents: --agents ID,ID,... and/or --label KEY=VALUE.");
            }

            return request;
        }
    }
}
