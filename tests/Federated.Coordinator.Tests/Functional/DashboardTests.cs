using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Federated.Coordinator.Rounds;
using Federated.Protocol.V1;
using Microsoft.Playwright;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>
/// The read-only dashboard on a real coordinator: its JSON from plain HTTP/1.1, and the page in headless Chromium
/// (Debian's <c>/usr/bin/chromium</c>, driven by Playwright; <c>.ci/run</c> installs it through scripts/setup.sh).
/// </summary>
public sealed class DashboardTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly string _state = Directory.CreateTempSubdirectory("federated-dashboard-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public async Task StateApi_AfterARound_ReportsTheRoundAsTheStoreRecordedItAndTheAgents()
    {
        var web = FreePort();
        await using var coordinator = await StartAsync(web, rounds: 2);
        await using var a = await ConnectedAgentAsync(coordinator, "a");
        await using var b = await ConnectedAgentAsync(coordinator, "b");
        await RoundAsync(coordinator, 1, a, b);
        var row = coordinator.Service<RoundHistory>().Rows.Single();

        using var http = new HttpClient();
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{web}/dashboard/api/state")).WaitAsync(Wait);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var state = json.RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.Equal(coordinator.Status.RunId, state.GetProperty("runId").GetString());
        Assert.Equal(2, state.GetProperty("totalRounds").GetInt32());
        Assert.True(state.GetProperty("completedRounds").GetInt32() >= 1);
        Assert.Equal(2, state.GetProperty("agents").GetProperty("online").GetInt32());
        Assert.Equal(["a", "b"], state.GetProperty("agents").GetProperty("list").EnumerateArray().Select(e => e.GetProperty("id").GetString()).Order(StringComparer.Ordinal));
        Assert.False(state.GetProperty("privacy").GetProperty("enabled").GetBoolean());
        var round = state.GetProperty("rounds").EnumerateArray().First();
        Assert.Equal(1, round.GetProperty("round").GetInt32());
        Assert.True(round.GetProperty("ok").GetBoolean());
        Assert.Equal(2, round.GetProperty("results").GetInt32());
        Assert.Equal(0, round.GetProperty("rejected").GetInt32());
        Assert.Equal(long.Parse(row["up_wire_bytes_total"], CultureInfo.InvariantCulture), round.GetProperty("bytesUp").GetInt64());
        Assert.Equal(long.Parse(row["down_wire_bytes_total"], CultureInfo.InvariantCulture), round.GetProperty("bytesDown").GetInt64());
        Assert.True(round.GetProperty("bytesUp").GetInt64() > 0);
        Assert.Equal(double.Parse(row["test_accuracy"], CultureInfo.InvariantCulture), round.GetProperty("testAccuracy").GetDouble());
        Assert.Empty(coordinator.Logs.Errors);
    }

    [Fact]
    public async Task StateApi_WithAccessToken_RefusesRequestsWithoutTheBearerToken()
    {
        var web = FreePort();
        const string Token = "0123456789abcdef-dashboard";
        await using var coordinator = await StartAsync(web, rounds: 1, ("Coordinator:Dashboard:AccessToken", Token));
        using var http = new HttpClient();
        var api = new Uri($"http://127.0.0.1:{web}/dashboard/api/state");

        using var anonymous = await http.GetAsync(api).WaitAsync(Wait);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, api) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Token + "x") } };
        using var wrongResponse = await http.SendAsync(wrong).WaitAsync(Wait);
        using var right = new HttpRequestMessage(HttpMethod.Get, api) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Token) } };
        using var rightResponse = await http.SendAsync(right).WaitAsync(Wait);
        using var page = await http.GetAsync(new Uri($"http://127.0.0.1:{web}/dashboard/")).WaitAsync(Wait);

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, rightResponse.StatusCode);
        Assert.Contains("\"runId\"", await rightResponse.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // The page itself holds no data; it is served without the token and asks for it.
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("default-src 'none'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.True(coordinator.Logs.Contains("no valid bearer token"));
    }

    [Fact]
    public async Task Dashboard_Disabled_IsNotServed()
    {
        var web = FreePort();
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        await using var coordinator = await TestCoordinator.StartAsync(settings, http1Port: web);
        using var http = new HttpClient();

        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{web}/dashboard/api/state")).WaitAsync(Wait);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [BrowserFact]
    public async Task Page_InHeadlessChromium_ShowsTheLiveRunAndUpdatesAfterEachRound()
    {
        var chromium = BrowserFactAttribute.ChromiumPath;
        Assert.True(File.Exists(chromium),
            $"Chromium is not at {chromium}: install Debian's chromium package (scripts/setup.sh --browser does, as root; .ci/run calls it), " +
            $"point {BrowserFactAttribute.PathVariable} at a Chromium executable, or set {BrowserFactAttribute.SkipVariable}=1 to skip the browser tests.");
        var web = FreePort();
        var origin = $"http://127.0.0.1:{web}";
        await using var coordinator = await StartAsync(web, rounds: 2);
        await using var a = await ConnectedAgentAsync(coordinator, "a");
        await using var b = await ConnectedAgentAsync(coordinator, "b");
        var tasks = await Task.WhenAll(a.NextAsync(CoordinatorMessage.KindOneofCase.Train), b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).WaitAsync(Wait);

        using var playwright = await Playwright.CreateAsync().WaitAsync(Wait);
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = chromium, Headless = true, Timeout = 60_000 });
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(60_000);
        Assertions.SetDefaultExpectTimeout(60_000);
        var problems = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (problems)
                {
                    problems.Add($"console: {message.Text} ({message.Location})");
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (problems)
            {
                problems.Add("page error: " + error);
            }
        };
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith(origin + "/dashboard", StringComparison.Ordinal))
            {
                lock (problems)
                {
                    problems.Add("request outside the dashboard: " + request.Url);
                }
            }
        };

        // Round 1 in progress: the page shows the live run.
        var response = await page.GotoAsync(origin + "/dashboard");
        Assert.Equal(200, response!.Status);
        await Assertions.Expect(page.Locator("#run-id")).ToHaveTextAsync(coordinator.Status.RunId);
        await Assertions.Expect(page.Locator("#run-state")).ToHaveTextAsync("running");
        await Assertions.Expect(page.Locator("#round")).ToHaveTextAsync("1 / 2");
        await Assertions.Expect(page.Locator("#completed")).ToHaveTextAsync("0");
        await Assertions.Expect(page.Locator("#agents-online")).ToHaveTextAsync("2");
        await Assertions.Expect(page.Locator("#agents-table tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#rounds-table tbody tr")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#chart-accuracy circle")).ToHaveCountAsync(0);

        // Round 1 completes: the page updates by itself.
        await FinishRoundAsync(coordinator, 1, (a, tasks[0].Train), (b, tasks[1].Train));
        await Assertions.Expect(page.Locator("#completed")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#rounds-table tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#chart-accuracy circle")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#chart-bytes rect")).ToHaveCountAsync(2);
        var first = coordinator.Service<RoundHistory>().Rows[0];
        Assert.Equal(first["up_wire_bytes_total"], await page.Locator("#chart-bytes rect.s0").GetAttributeAsync("data-value"));
        Assert.Equal(double.Parse(first["test_accuracy"], CultureInfo.InvariantCulture),
            double.Parse((await page.Locator("#chart-accuracy circle").GetAttributeAsync("data-value"))!, CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("#rejected")).ToHaveTextAsync("0");
        await Assertions.Expect(page.Locator("#epsilon")).ToHaveTextAsync("off");

        // Round 2, the last: the page follows it to the end of the run.
        var second = await Task.WhenAll(a.NextAsync(CoordinatorMessage.KindOneofCase.Train), b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).WaitAsync(Wait);
        await Assertions.Expect(page.Locator("#round")).ToHaveTextAsync("2 / 2");
        await FinishRoundAsync(coordinator, 2, (a, second[0].Train), (b, second[1].Train));
        await Assertions.Expect(page.Locator("#run-state")).ToHaveTextAsync("finished");
        await Assertions.Expect(page.Locator("#completed")).ToHaveTextAsync("2");
        await Assertions.Expect(page.Locator("#rounds-table tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#chart-accuracy circle")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#chart-loss polyline")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#rounds-table tbody tr").First.Locator("td").First).ToHaveTextAsync("2");

        if (Environment.GetEnvironmentVariable("FEDERATED_DASHBOARD_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        }

        // An agent leaves: the agents card follows.
        await b.DisconnectAsync();
        await Assertions.Expect(page.Locator("#agents-online")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#error")).ToBeHiddenAsync();
        lock (problems)
        {
            Assert.True(problems.Count == 0, string.Join("\n", problems));
        }

        Assert.True(!coordinator.Logs.Errors.Any(), string.Join("\n", coordinator.Logs.Errors));
    }

    private Task<TestCoordinator> StartAsync(int web, int rounds, params (string Key, string Value)[] extra)
    {
        var settings = TestCoordinator.Settings(_state, rounds);
        settings["Coordinator:MinFit"] = "2";
        settings["Coordinator:Dashboard:Enabled"] = "true";
        settings["Coordinator:Dashboard:Url"] = $"http://127.0.0.1:{web}";
        settings["Coordinator:Dashboard:RefreshSeconds"] = "0.2";
        // Rounds end when the test's agents report, and the scripted agents (which send no heartbeats) stay connected
        // until they leave: neither a deadline nor the silence timeout may act while Chromium starts on a busy machine.
        settings["Coordinator:RoundDeadlineSeconds"] = "600";
        settings["Coordinator:AgentTimeoutSeconds"] = "600";
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        return TestCoordinator.StartAsync(settings, http1Port: web);
    }

    private static async Task<ScriptedAgent> ConnectedAgentAsync(TestCoordinator coordinator, string id)
    {
        var agent = await ScriptedAgent.EnrollAsync(coordinator.Address, id);
        await agent.ConnectAsync();
        return agent;
    }

    private static async Task RoundAsync(TestCoordinator coordinator, int round, params ScriptedAgent[] agents)
    {
        var tasks = await Task.WhenAll(agents.Select(a => a.NextAsync(CoordinatorMessage.KindOneofCase.Train))).WaitAsync(Wait);
        await FinishRoundAsync(coordinator, round, agents.Zip(tasks, (a, t) => (a, t.Train)).ToArray());
    }

    private static async Task FinishRoundAsync(TestCoordinator coordinator, int round, params (ScriptedAgent Agent, TrainTask Task)[] work)
    {
        foreach (var (agent, task) in work)
        {
            var transfer = await agent.UploadUpdateAsync(task, g => Enumerable.Repeat(0.01f, g.Length).ToArray());
            await agent.SendResultAsync(new TaskResult { TaskId = task.TaskId, Round = task.Round, Ok = true, UploadTransferId = transfer, NumExamples = 100, LocalSteps = 1, Metrics = { ["train_loss"] = 1.0 / round } });
        }

        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds >= round, Wait, $"round {round}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// A test that needs Chromium. It runs (and fails with a clear message when Chromium is missing) unless
/// <c>FEDERATED_SKIP_BROWSER_TESTS=1</c> says to skip it: CI installs Chromium, so only a developer's machine without
/// it may skip. <c>FEDERATED_CHROMIUM</c> names another executable (default <c>/usr/bin/chromium</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BrowserFactAttribute : FactAttribute
{
    public const string SkipVariable = "FEDERATED_SKIP_BROWSER_TESTS";
    public const string PathVariable = "FEDERATED_CHROMIUM";

    public BrowserFactAttribute()
    {
        if (Environment.GetEnvironmentVariable(SkipVariable) == "1")
        {
            Skip = $"{SkipVariable}=1: browser tests skipped.";
        }
    }

    public static string ChromiumPath => Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } path ? path : "/usr/bin/chromium";
}
