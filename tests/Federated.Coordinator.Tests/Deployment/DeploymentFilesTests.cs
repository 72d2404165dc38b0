using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Federated.Client.Hosting;
using Federated.Coordinator.Hosting;
using YamlDotNet.RepresentationModel;

namespace Federated.Coordinator.Tests.Deployment;

/// <summary>
/// What can be checked of the deployment files without docker, helm or a cluster (docs/deploy.md): the Helm chart's
/// YAML, its values against the documentation and the templates, the settings they set against the options classes,
/// and the Dockerfiles and the systemd unit against the projects they build and start.
/// </summary>
public sealed partial class DeploymentFilesTests
{
    private static readonly string Root = FindRoot();
    private static readonly string Chart = Path.Combine(Root, "deploy", "helm", "federated");

    // Values whose contents are free-form (settings maps, Kubernetes fragments): documented as a whole.
    private static readonly string[] FreeForm = ["coordinator.settings", "agents.settings"];

    [Fact]
    public void ChartYaml_Parses_AsAVersion2ChartWithNameAndVersions()
    {
        var chart = Load(Path.Combine(Chart, "Chart.yaml"));

        Assert.Equal("v2", Scalar(chart, "apiVersion"));
        Assert.Equal("federated", Scalar(chart, "name"));
        Assert.Matches(@"^\d+\.\d+\.\d+$", Scalar(chart, "version"));
        Assert.False(string.IsNullOrEmpty(Scalar(chart, "appVersion")));
    }

    [Fact]
    public void Values_DocumentedKeys_ExistInValuesAndAreUsedByTemplates()
    {
        var values = Load(Path.Combine(Chart, "values.yaml"));
        var references = TemplateValueReferences();

        Assert.NotEmpty(DocumentedKeys);
        foreach (var key in DocumentedKeys)
        {
            Assert.True(Find(values, key) is not null, $"docs/deploy.md documents '{key}', which values.yaml does not have.");
            Assert.True(references.Any(r => r == key || r.StartsWith(key + ".", StringComparison.Ordinal)), $"docs/deploy.md documents '{key}', which no template uses.");
        }
    }

    [Fact]
    public void Values_EveryValue_IsDocumented()
    {
        var values = Load(Path.Combine(Chart, "values.yaml"));

        var leaves = Leaves(values, "").ToList();

        Assert.Contains("coordinator.image.repository", leaves);
        foreach (var leaf in leaves)
        {
            Assert.True(DocumentedKeys.Any(k => k == leaf || leaf.StartsWith(k + ".", StringComparison.Ordinal)), $"values.yaml has '{leaf}', which docs/deploy.md does not document.");
        }
    }

    [Fact]
    public void Templates_EveryValueTheyUse_ExistsInValues()
    {
        var values = Load(Path.Combine(Chart, "values.yaml"));

        var references = TemplateValueReferences();

        Assert.Contains("dashboard.accessToken", references);
        Assert.All(references, r => Assert.True(Find(values, r) is not null, $"A template uses .Values.{r}, which values.yaml does not have."));
    }

    [Fact]
    public void Templates_WithActionsReplacedByPlaceholders_AreYamlObjectsWithAKind()
    {
        var kinds = new List<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(Chart, "templates"), "*.yaml"))
        {
            // Lines that are only template actions go; actions inside a line become a placeholder scalar.
            var text = string.Join('\n', File.ReadAllLines(file)
                .Where(l => !StandaloneAction().IsMatch(l))
                .Select(l => InlineAction().Replace(l, "x")));
            var stream = new YamlStream();
            var error = Record.Exception(() => stream.Load(new StringReader(text)));
            Assert.True(error is null, $"{Path.GetFileName(file)} is not YAML once its actions are placeholders: {error?.Message}\n{text}");
            foreach (var document in stream.Documents.Where(d => d.RootNode is YamlMappingNode { Children.Count: > 0 }))
            {
                var root = (YamlMappingNode)document.RootNode;
                Assert.False(string.IsNullOrEmpty(Scalar(root, "apiVersion")), $"{Path.GetFileName(file)}: a document without apiVersion.");
                kinds.Add(Scalar(root, "kind"));
            }
        }

        // The coordinator's Deployment, Service, ConfigMap, Secrets and volume claim; agents' kind is a value ("x").
        Assert.Equivalent(new[] { "ConfigMap", "Deployment", "PersistentVolumeClaim", "Secret", "Secret", "Service", "x" }, kinds.Order(StringComparer.Ordinal).ToArray(), strict: true);
    }

    [Fact]
    public void Settings_InValuesAndEnvironmentVariables_NameRealOptions()
    {
        var values = Load(Path.Combine(Chart, "values.yaml"));
        foreach (var leaf in Leaves((YamlMappingNode)Find(values, "coordinator.settings")!, ""))
        {
            AssertOption(typeof(CoordinatorOptions), leaf.Split('.'), $"values.yaml coordinator.settings.{leaf}");
        }

        foreach (var leaf in Leaves((YamlMappingNode)Find(values, "agents.settings")!, ""))
        {
            AssertOption(typeof(ClientOptions), leaf.Split('.'), $"values.yaml agents.settings.{leaf}");
        }

        var files = Directory.GetFiles(Path.Combine(Chart, "templates"))
            .Concat([Path.Combine(Root, "deploy", "docker", "coordinator.Dockerfile"), Path.Combine(Root, "deploy", "docker", "agent.Dockerfile"),
                Path.Combine(Root, "deploy", "federated-coordinator.service"), Path.Combine(Root, "docs", "deploy.md")]);
        var checkedVariables = 0;
        foreach (var file in files)
        {
            foreach (Match match in EnvironmentVariable().Matches(File.ReadAllText(file)))
            {
                var (type, path) = match.Groups[1].Value == "Coordinator" ? (typeof(CoordinatorOptions), match.Groups[2].Value) : (typeof(ClientOptions), match.Groups[2].Value);
                AssertOption(type, path.Split("__"), $"{Path.GetFileName(file)}: {match.Value}");
                checkedVariables++;
            }
        }

        Assert.True(checkedVariables >= 20, $"only {checkedVariables} settings variables found");
    }

    [Theory]
    [InlineData("coordinator.Dockerfile", "src/Coordinator/Federated.Coordinator.csproj", "mcr.microsoft.com/dotnet/aspnet:10.0")]
    [InlineData("agent.Dockerfile", "src/Client/Federated.Client.csproj", "mcr.microsoft.com/dotnet/runtime:10.0")]
    public void Dockerfile_BuildsAndStartsTheRealProject(string name, string project, string runtimeImage)
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "deploy", "docker", name)).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var froms = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).Select(l => l.Split(' ')[1]).ToList();
        var copied = lines.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from=", StringComparison.Ordinal))
            .SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1]).ToList();

        Assert.Equal(2, froms.Count);
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:10.0", froms[0], StringComparison.Ordinal);
        Assert.StartsWith(runtimeImage, froms[1], StringComparison.Ordinal);
        Assert.All(copied, source => Assert.True(File.Exists(Path.Combine(Root, source)) || Directory.Exists(Path.Combine(Root, source)), $"{name} copies '{source}', which is not in the repository."));
        Assert.Contains(lines, l => l.Contains($"dotnet publish {project} ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains($"dotnet restore {project} ", StringComparison.Ordinal));

        // Everything the build needs: the root build files and what they import, and every project referenced, transitively.
        foreach (var file in new[] { "global.json", "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
        {
            Assert.Contains(file, copied);
        }

        foreach (var import in new[] { "Directory.Build.props", "Directory.Build.targets" }.SelectMany(f => XDocument.Load(Path.Combine(Root, f)).Descendants("Import")).Select(i => i.Attribute("Project")!.Value))
        {
            Assert.True(copied.Any(c => import.StartsWith(c, StringComparison.Ordinal)), $"{name} does not copy '{import}', which the root build files import.");
        }

        foreach (var reference in ProjectClosure(project))
        {
            var folder = Path.GetDirectoryName(reference)!.Replace('\\', '/') + "/";
            Assert.True(copied.Contains(reference) && copied.Contains(folder), $"{name} must copy {reference} (restore layer) and {folder} (sources).");
        }

        var entry = lines.Single(l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal));
        Assert.Equal($"ENTRYPOINT [\"/app/{AssemblyName(project)}\"]", entry);
        Assert.Contains(lines, l => l.Contains("ldd /app/libLibTorchSharp.so", StringComparison.Ordinal));
        Assert.Contains("-p:FederatedTorchBackend=cpu", string.Join(' ', lines), StringComparison.Ordinal);
    }

    [Fact]
    public void SystemdUnit_StartsTheCoordinatorExecutableAndCanNotify()
    {
        var unit = File.ReadAllLines(Path.Combine(Root, "deploy", "federated-coordinator.service"));
        string Setting(string key) => unit.Single(l => l.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..];

        var exec = Setting("ExecStart");

        Assert.Equal(AssemblyName("src/Coordinator/Federated.Coordinator.csproj"), Path.GetFileName(exec));
        Assert.Equal(Path.GetDirectoryName(exec), Setting("WorkingDirectory"));
        Assert.Equal("notify", Setting("Type"));
        Assert.Contains(XDocument.Load(Path.Combine(Root, "src/Coordinator/Federated.Coordinator.csproj")).Descendants("PackageReference"),
            p => p.Attribute("Include")?.Value == "Microsoft.Extensions.Hosting.Systemd");
        Assert.Equal("/var/lib/" + Setting("StateDirectory"), unit.Single(l => l.StartsWith("Environment=Coordinator__StateDirectory=", StringComparison.Ordinal)).Split('=')[2]);
        Assert.Equal("2", Setting("RestartPreventExitStatus"));
    }

    private static IReadOnlyList<string> DocumentedKeys { get; } = ReadDocumentedKeys();

    private static List<string> ReadDocumentedKeys()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "docs", "deploy.md"));
        var start = Array.IndexOf(lines, "### Values");
        Assert.True(start >= 0, "docs/deploy.md has no '### Values' section.");
        return lines.Skip(start + 1).TakeWhile(l => !l.StartsWith('#')).Select(l => DocumentedKey().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToList();
    }

    private static HashSet<string> TemplateValueReferences() =>
        Directory.GetFiles(Path.Combine(Chart, "templates"))
            .SelectMany(f => ValuesReference().Matches(File.ReadAllText(f)).Select(m => m.Groups[1].Value.TrimEnd('.')))
            .ToHashSet(StringComparer.Ordinal);

    private static void AssertOption(Type type, IEnumerable<string> path, string where)
    {
        var current = type;
        foreach (var name in path)
        {
            var property = current.GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            Assert.True(property is { CanWrite: true }, $"{where}: {current.Name} has no settable property '{name}'.");
            current = property!.PropertyType;
            if (current.IsGenericType && current.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                return; // free-form options (e.g. StrategyOptions)
            }
        }
    }

    private static List<string> ProjectClosure(string project)
    {
        var seen = new List<string>();
        var pending = new Queue<string>([project]);
        while (pending.TryDequeue(out var current))
        {
            if (seen.Contains(current))
            {
                continue;
            }

            seen.Add(current);
            foreach (var reference in XDocument.Load(Path.Combine(Root, current)).Descendants("ProjectReference"))
            {
                var full = Path.GetFullPath(Path.Combine(Root, Path.GetDirectoryName(current)!, reference.Attribute("Include")!.Value));
                pending.Enqueue(Path.GetRelativePath(Root, full).Replace('\\', '/'));
            }
        }

        return seen;
    }

    private static string AssemblyName(string project) =>
        XDocument.Load(Path.Combine(Root, project)).Descendants("AssemblyName").Single().Value;

    private static YamlMappingNode Load(string path)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(path)));
        return Assert.IsType<YamlMappingNode>(Assert.Single(stream.Documents).RootNode);
    }

    private static string Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode scalar ? scalar.Value ?? "" : "";

    private static YamlNode? Find(YamlMappingNode root, string dotted)
    {
        YamlNode? node = root;
        foreach (var part in dotted.Split('.'))
        {
            if (node is not YamlMappingNode mapping || !mapping.Children.TryGetValue(new YamlScalarNode(part), out node))
            {
                return null;
            }
        }

        return node;
    }

    // Dotted paths of scalars, sequences and empty maps; free-form maps count as one value.
    private static IEnumerable<string> Leaves(YamlMappingNode node, string prefix)
    {
        foreach (var (key, value) in node.Children)
        {
            var path = prefix + ((YamlScalarNode)key).Value;
            if (value is YamlMappingNode { Children.Count: > 0 } mapping && !FreeForm.Contains(path))
            {
                foreach (var leaf in Leaves(mapping, path + "."))
                {
                    yield return leaf;
                }
            }
            else
            {
                yield return path;
            }
        }
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Federated.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Federated.sln above {AppContext.BaseDirectory}.");
    }

    [GeneratedRegex(@"^\s*\{\{.*\}\}\s*$")]
    private static partial Regex StandaloneAction();

    [GeneratedRegex(@"\{\{.*?\}\}")]
    private static partial Regex InlineAction();

    [GeneratedRegex(@"\.Values\.([A-Za-z0-9_.]+)")]
    private static partial Regex ValuesReference();

    [GeneratedRegex(@"^\| `([A-Za-z0-9.]+)` \|")]
    private static partial Regex DocumentedKey();

    [GeneratedRegex(@"\b(Coordinator|FEDERATED_CLIENT)__([A-Za-z0-9]+(?:__[A-Za-z0-9]+)*)")]
    private static partial Regex EnvironmentVariable();
}
