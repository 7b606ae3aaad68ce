using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Mirage.Core.Integration;
using Mirage.Extensions.AI.ChatClients;

namespace Mirage.Extensions.AI;

/// <summary>Adds Mirage citations to a Microsoft.Extensions.AI chat pipeline.</summary>
public static class MirageChatClientBuilderExtensions
{
    /// <summary>
    /// Cites every final answer of the pipeline. Call it before <c>UseFunctionInvocation()</c> so it
    /// sits outside function invocation and sees the tool results. The service comes from
    /// <paramref name="service"/>, else from the pipeline's services (<c>AddMirageCitations</c>).
    /// </summary>
    public static ChatClientBuilder UseMirageCitations(this ChatClientBuilder builder, MirageCitationService? service = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Use((inner, services) => new MirageCitationChatClient(inner, service ?? services.GetRequiredService<MirageCitationService>()));
    }
}
