using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.SemanticKernel;
using Mirage.SemanticKernel.Filters;
using Mirage.Tests;

namespace Mirage.SemanticKernel.Tests;

public sealed class RegistrationTests
{
    private static HostApplicationBuilder Builder(params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));
        return builder;
    }

    [Fact]
    public async Task AddMirageCitations_BindsConfiguration_AndKernelsPickUpTheFilter()
    {
        var builder = Builder(("Mirage:ModelPath", SharedAssets.EmbeddedReader), ("Mirage:TopPercent", "0.1"), ("Mirage:RetrievalPlugins:0", "Docs"));
        builder.Services.AddMirageCitations(o => o.AtMostCitations = 2);
        builder.Services.AddKernel();
        builder.Services.AddChatClient(services => new ChatClientBuilder(new RemoteModel("x")).UseMirageCitations().Build(services));
        using var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);

        var options = host.Services.GetRequiredService<IOptions<MirageCitationOptions>>().Value;
        Assert.Equal((0.1, 2, "Docs"), (options.TopPercent, options.AtMostCitations, options.RetrievalPlugins.Single()));
        var kernel = host.Services.GetRequiredService<Kernel>();
        Assert.Contains(kernel.FunctionInvocationFilters, f => f is MirageFunctionInvocationFilter);
        Assert.Equal("reader", host.Services.GetRequiredService<MirageCitationService>().AttributionModelId);
        Assert.NotNull(host.Services.GetRequiredService<IChatClient>().GetService<MirageCitationChatClient>());
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task InvalidOptions_FailOnStart_NamingTheSetting()
    {
        var builder = Builder(("Mirage:TimeoutSeconds", "0"));
        builder.Services.AddMirageCitations();
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("TimeoutSeconds", error.Message);
    }

    [Fact]
    public void RetrievalDefaults_AndConfiguredLists()
    {
        var defaults = new MirageCitationOptions();
        Assert.True(defaults.CountsAsRetrieval("TextSearch", "GetTextSearchResults"));
        Assert.True(defaults.CountsAsRetrieval(null, "search_documents"));
        Assert.False(defaults.CountsAsRetrieval("Time", "Now"));
        var configured = new MirageCitationOptions { RetrievalFunctions = ["Wiki.Fetch"] };
        Assert.True(configured.CountsAsRetrieval("Wiki", "Fetch"));
        Assert.False(configured.CountsAsRetrieval("Web", "Search"));
        var predicate = new MirageCitationOptions { IsRetrievalFunction = (_, name) => name == "Recall" };
        Assert.True(predicate.CountsAsRetrieval(null, "Recall"));
    }
}
