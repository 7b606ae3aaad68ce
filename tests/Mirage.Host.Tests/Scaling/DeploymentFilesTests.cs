using Microsoft.Extensions.Configuration;
using Mirage.Host.Cli;
using Mirage.Host.Server;
using Mirage.Host.Server.Scaling;
using Mirage.Tests;
using YamlDotNet.RepresentationModel;

namespace Mirage.Host.Tests.Scaling;

/// <summary>
/// The compose file and Kubernetes manifests in deploy/ use only commands, options and settings
/// that exist: each container's command parses as the CLI's, its MIRAGE_ environment binds to the
/// settings with no unknown key and passes their validation, its probes and ports are the ones it
/// listens on, and KEDA watches the stream and consumer the workers really use.
/// </summary>
public sealed class DeploymentFilesTests
{
    private static string Deploy => Path.Combine(SharedAssets.RepositoryRoot, "deploy");

    public static TheoryData<string> Files() => [.. Directory.GetFiles(Deploy, "*.yaml", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Deploy, f)).Order(StringComparer.Ordinal)];

    private static IEnumerable<YamlMappingNode> Documents(string file)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Deploy, file));
        stream.Load(reader);
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode);
    }

    // Every mapping below the node that runs mirage: a compose service or a Kubernetes container.
    private static IEnumerable<YamlMappingNode> Mappings(YamlNode node) => node switch
    {
        YamlMappingNode map => map.Children.Values.SelectMany(Mappings).Prepend(map),
        YamlSequenceNode list => list.Children.SelectMany(Mappings),
        _ => [],
    };

    private static YamlNode? Get(YamlMappingNode map, string key) => map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryMirageContainer_UsesCommandsAndSettingsThatExist(string file)
    {
        int containers = 0;
        foreach (var document in Documents(file))
        foreach (var runner in Mappings(document).Where(m => (Get(m, "command") ?? Get(m, "args")) is YamlSequenceNode { Children.Count: > 0 } c && c.Children[0].ToString() == "serve"))
        {
            containers++;
            var args = ((YamlSequenceNode)(Get(runner, "command") ?? Get(runner, "args"))!).Children.Select(c => c.ToString()).ToArray();
            var parse = MirageCli.CreateRootCommand(TextWriter.Null, TextWriter.Null).Parse(args);
            Assert.True(parse.Errors.Count == 0, $"{file}: {string.Join(" ", args)}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");

            // The environment binds to the settings with no unknown key, and validates.
            var settings = Environment(runner).ToDictionary(e => e.Key.Replace("__", ":", StringComparison.Ordinal), e => (string?)e.Value);
            settings["Server:Role"] = Argument(args, "--role");
            settings["Nats:Url"] = Argument(args, "--nats");
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
            var server = configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>(o => o.ErrorOnUnknownConfiguration = true)!;
            var nats = configuration.GetSection(NatsOptions.SectionName).Get<NatsOptions>(o => o.ErrorOnUnknownConfiguration = true)!;
            Assert.Empty(server.Validate(new(server)));
            Assert.Empty(nats.Validate(new(nats)));
            Assert.All(settings.Keys, key => Assert.True(key.StartsWith("Server:", StringComparison.Ordinal) || key.StartsWith("Nats:", StringComparison.Ordinal), $"{file}: {key} is no Mirage setting"));

            // Probes and published ports are the port it listens on.
            var port = new Uri(Argument(args, "--urls")!.Replace("0.0.0.0", "localhost", StringComparison.Ordinal)).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var probe in Mappings(runner).Where(m => Get(m, "httpGet") is not null).Select(m => (YamlMappingNode)Get(m, "httpGet")!))
            {
                Assert.Equal(port, Get(probe, "port")!.ToString());
                Assert.Contains(Get(probe, "path")!.ToString(), (string[])["/health", "/alive"]);
            }
            foreach (var published in (Get(runner, "ports") as YamlSequenceNode)?.Children ?? [])
                Assert.EndsWith(port, published is YamlMappingNode m ? Get(m, "containerPort")!.ToString() : published.ToString(), StringComparison.Ordinal);
        }
        Assert.True(containers > 0 || file.Contains("keda", StringComparison.Ordinal), $"{file} runs no mirage serve");
    }

    private static string? Argument(string[] args, string name) => Array.IndexOf(args, name) is var i and >= 0 ? args[i + 1] : null;

    // MIRAGE_-prefixed variables, from a compose map or a Kubernetes list (a secret's value stands in as "secret").
    private static IEnumerable<KeyValuePair<string, string>> Environment(YamlMappingNode runner) => Get(runner, "environment") switch
    {
        YamlMappingNode map => map.Children.Select(e => KeyValuePair.Create(e.Key.ToString(), e.Value.ToString())),
        _ => ((Get(runner, "env") as YamlSequenceNode)?.Children ?? []).Cast<YamlMappingNode>()
            .Select(e => KeyValuePair.Create(Get(e, "name")!.ToString(), Get(e, "value")?.ToString() ?? "secret")),
    }
    is var all ? all.Select(e => { Assert.StartsWith("MIRAGE_", e.Key, StringComparison.Ordinal); return KeyValuePair.Create(e.Key["MIRAGE_".Length..], e.Value); }) : [];

    [Fact]
    public async Task Keda_WatchesTheStreamAndConsumerTheWorkersUse()
    {
        using var model = await Mirage.Core.Models.LanguageModel.LoadAsync(SharedAssets.EmbeddedReader);
        var trigger = Mappings(Documents(Path.Combine("kubernetes", "keda.yaml")).Single()).Single(m => Get(m, "type")?.ToString() == "nats-jetstream");
        var metadata = (YamlMappingNode)Get(trigger, "metadata")!;
        Assert.Equal(new NatsOptions().Stream, Get(metadata, "stream")!.ToString());
        Assert.Equal($"workers-{JobBus.ModelKey(model.ModelId)}", Get(metadata, "consumer")!.ToString());
    }

    [Fact]
    public void TheDockerfile_PublishesTheProjectItRuns()
    {
        var dockerfile = File.ReadAllLines(Path.Combine(Deploy, "Dockerfile"));
        var publish = dockerfile.Single(l => l.Contains("dotnet publish", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var project = publish[Array.IndexOf(publish, "publish") + 1];
        Assert.True(Directory.Exists(Path.Combine(SharedAssets.RepositoryRoot, project)), project);
        var assembly = System.Xml.Linq.XDocument.Load(Directory.GetFiles(Path.Combine(SharedAssets.RepositoryRoot, project), "*.csproj").Single()).Descendants("AssemblyName").Single().Value;
        Assert.Contains($"ENTRYPOINT [\"./{assembly}\"]", dockerfile);
    }
}
