using System.Xml.Linq;
using Mirage.Tests;

namespace Mirage.Core.Tests.Repository;

/// <summary>Packages depend one way: the runtime knows no integration, and the shipped CLI and service carry neither Semantic Kernel nor the harness.</summary>
public sealed class ProjectGraphTests
{
    private static readonly string Root = SharedAssets.RepositoryRoot;

    // Every project a project references, directly or through others, with the packages and frameworks they use.
    private static (HashSet<string> Projects, HashSet<string> Packages) Closure(string project)
    {
        var projects = new HashSet<string>(StringComparer.Ordinal);
        var packages = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var pending = new Stack<string>([Path.GetFullPath(Path.Combine(Root, project))]);
        while (pending.TryPop(out var path))
        {
            if (!projects.Add(Path.GetRelativePath(Root, path).Replace('\\', '/')))
                continue;
            var xml = XDocument.Load(path);
            foreach (var reference in xml.Descendants("ProjectReference"))
                pending.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, reference.Attribute("Include")!.Value)));
            foreach (var reference in xml.Descendants().Where(e => e.Name.LocalName is "PackageReference" or "FrameworkReference"))
                packages.Add(reference.Attribute("Include")!.Value);
        }
        return (projects, packages);
    }

    [Fact]
    public void Core_ReferencesNoIntegrationAndNoWebFramework()
    {
        var (projects, packages) = Closure("src/Mirage.Core/Mirage.Core.csproj");
        Assert.Equal(["src/Mirage.Core/Mirage.Core.csproj"], projects);
        Assert.DoesNotContain(packages, p => p.StartsWith("Microsoft.SemanticKernel", StringComparison.OrdinalIgnoreCase) || p.StartsWith("Microsoft.AspNetCore", StringComparison.OrdinalIgnoreCase)
            || p.StartsWith("Microsoft.Extensions.AI", StringComparison.OrdinalIgnoreCase) || p.StartsWith("Qdrant", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void ExtensionsAI_IsCorePlusMicrosoftExtensionsAI_WithoutSemanticKernel()
    {
        var (projects, packages) = Closure("src/Mirage.Extensions.AI/Mirage.Extensions.AI.csproj");
        Assert.Equal(["src/Mirage.Core/Mirage.Core.csproj", "src/Mirage.Extensions.AI/Mirage.Extensions.AI.csproj"], projects.Order(StringComparer.Ordinal));
        Assert.Contains("Microsoft.Extensions.AI", packages);
        Assert.DoesNotContain(packages, p => p.StartsWith("Microsoft.SemanticKernel", StringComparison.OrdinalIgnoreCase) || p.StartsWith("Qdrant", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void SemanticKernel_BuildsOnExtensionsAI()
    {
        var (projects, _) = Closure("src/Mirage.SemanticKernel/Mirage.SemanticKernel.csproj");
        Assert.Contains("src/Mirage.Extensions.AI/Mirage.Extensions.AI.csproj", projects);
    }

    [Fact]
    public void Host_CarriesNeitherSemanticKernelNorTheHarness()
    {
        var (projects, packages) = Closure("src/Mirage.Host/Mirage.Host.csproj");
        Assert.Equal(["src/Mirage.Core/Mirage.Core.csproj", "src/Mirage.Extensions.AI/Mirage.Extensions.AI.csproj", "src/Mirage.Host/Mirage.Host.csproj"], projects.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(packages, p => p.StartsWith("Microsoft.SemanticKernel", StringComparison.OrdinalIgnoreCase) || p.StartsWith("Lucene", StringComparison.OrdinalIgnoreCase) || p.StartsWith("Qdrant", StringComparison.OrdinalIgnoreCase));
    }
}
