// A Semantic Kernel RAG app that answers with a local model and cites its answer with Mirage.
// Run: dotnet run --project samples/SemanticKernelRag [-- MODEL_DIR] (from any folder; the embedded reader is copied beside the app)
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Data;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Extensions.AI.ChatClients;
using Mirage.SemanticKernel;

using var model = await LanguageModel.LoadAsync(args.Length > 0 ? args[0] : LanguageModel.EmbeddedReaderDirectory);

var builder = Kernel.CreateBuilder();
builder.Services.AddSingleton<IChatCompletionService>(new MirageLocalChatClient(model).AsChatCompletionService());
var kernel = builder.Build();

// Retrieval: a search plugin over a few documents (a vector store or web search in a real app).
List<TextSearchResult> documents =
[
    new("Treirfem Taithhul once met Trorher Drouthvir at a market. Treirfem Taithhul works as a pilot.") { Name = "Treirfem Taithhul", Link = "https://example.org/treirfem-taithhul#1" },
    new("Many people have heard of Tituth Drouthvir. Tituth Drouthvir works as a poet. Tituth Drouthvir works for Laindein Partners.") { Name = "Tituth Drouthvir", Link = "https://example.org/tituth-drouthvir#2" },
    new("Trorher Drouthvir was born in Rukfikholm. Trorher Drouthvir works for Hergel Labs.") { Name = "Trorher Drouthvir", Link = "https://example.org/trorher-drouthvir#3" },
    new("A local report covers Trorher Drouthvir. Trorher Drouthvir was born in Rukfikholm.") { Name = "Notes on Trorher Drouthvir", Link = "https://example.org/notes-on-trorher-drouthvir#4" },
];
kernel.Plugins.AddFromFunctions("Search", [KernelFunctionFactory.CreateFromMethod((string query) => documents, "GetDocuments")]);
// The prompt lays the search results out the way the reader model was trained to read them.
kernel.Plugins.AddFromFunctions("Reader", [KernelFunctionFactory.CreateFromMethod(async (Kernel k, string question) =>
{
    var found = (await k.InvokeAsync("Search", "GetDocuments", new() { ["query"] = question })).GetValue<List<TextSearchResult>>()!;
    return new PromptTemplate().Render(question, found.Select(r => new Passage(null, r.Name, r.Value)).ToList(), withContext: true).Text;
}, "Prompt")]);

kernel.UseMirageCitations(model);   // <- Mirage: one line

var rag = kernel.CreateFunctionFromPrompt(new PromptTemplateConfig("{{Reader.Prompt $question}}") { AllowDangerouslySetContent = true });
var result = await kernel.InvokeAsync(rag, new() { ["question"] = "Where was Trorher Drouthvir born, and which organisation does Trorher Drouthvir work for?" });

var citations = result.GetCitations()!;
Console.WriteLine(result);
foreach (var sentence in citations.Sentences)
    Console.WriteLine($"  \"{sentence.Text}\" <- {string.Join(", ", sentence.Citations.Select(c => citations.PassageOf(c).Url))}");
Console.WriteLine($"status: {citations.Status}, mode: {citations.Mode}");
