using System.Text.Json.Nodes;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tests.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Citations;

/// <summary>Bad input, JSON shape and re-thresholding of the citation engine (on a tiny random checkpoint).</summary>
public sealed class CitationEngineTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly LanguageModel _model;
    private readonly MirageCitationEngine _engine;
    private static readonly Passage[] Passages = [new(null, "Paris", "Paris is the capital of France."), new(null, "Rome", "Rome is the capital of Italy.")];

    public CitationEngineTests()
    {
        _model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config() with { MaxPositionEmbeddings = 512 }), TorchSharp.torch.ScalarType.Float32);
        _engine = new MirageCitationEngine(_model, defaults: new CitationOptions { Prompt = new PromptTemplate { Instruction = "Answer." } });
    }

    public void Dispose()
    {
        _model.Dispose();
        _temp.Dispose();
    }

    private Task<CitationResult> Cite(string answer, IReadOnlyList<Passage>? passages = null, CitationOptions? options = null) =>
        _engine.CiteAsync(new CitationRequest("Capital?", passages ?? Passages, answer, options), TestContext.Current.CancellationToken);

    [Fact]
    public async Task EmptyAnswer_IsRejected() =>
        Assert.Equal("The answer is empty: there is nothing to cite.", (await Assert.ThrowsAsync<MirageException>(() => Cite("  "))).Message);

    [Fact]
    public async Task NoPassages_IsRejected() =>
        Assert.Contains("No passages", (await Assert.ThrowsAsync<MirageException>(() => Cite("Paris.", []))).Message);

    [Fact]
    public async Task EmptyOrDuplicatedPassage_IsRejectedNamingIt()
    {
        Assert.Equal("Passage 2 (id '2') has no text.", (await Assert.ThrowsAsync<MirageException>(() => Cite("Paris.", [Passages[0], new(null, "x", " ")]))).Message);
        Assert.Contains("Passages 1 and 2 have the same text", (await Assert.ThrowsAsync<MirageException>(() => Cite("Paris.", [Passages[0], Passages[0] with { Id = "other" }]))).Message);
        Assert.Contains("share the id 'p'", (await Assert.ThrowsAsync<MirageException>(() => Cite("Paris.", [Passages[0] with { Id = "p" }, Passages[1] with { Id = "p" }]))).Message);
    }

    [Fact]
    public async Task TooLongForTheContext_SaysByHowMuch()
    {
        var longPassage = new Passage(null, null, string.Concat(Enumerable.Repeat("the capital ", 100)));
        var error = await Assert.ThrowsAsync<ContextLengthExceededException>(() => Cite("Paris.", [longPassage]));
        Assert.Matches(@"is \d+ tokens, \d+ more than checkpoint's 512-token context", error.Message);
    }

    [Fact]
    public async Task FarTooLongForTheContext_IsRefusedBeforeTokenizing_BlamingTheLongestPart()
    {
        // 641 KB of one passage: refused from its length alone (no token stands for more than the
        // vocabulary's longest entry), long before tokenizing it could take seconds or gigabytes.
        var huge = new Passage(null, null, new string('x', 641_000));
        var error = await Assert.ThrowsAsync<ContextLengthExceededException>(() => Cite("Paris.", [huge]));
        Assert.Contains("at least", error.Message);
        Assert.Contains("Shorten or drop passages (1 given", error.Message);
        var question = await Assert.ThrowsAsync<ContextLengthExceededException>(() =>
            _engine.CiteAsync(new CitationRequest(new string('q', 641_000), Passages, "Paris."), TestContext.Current.CancellationToken));
        Assert.Contains("Shorten the question", question.Message);
        var answer = await Assert.ThrowsAsync<ContextLengthExceededException>(() => Cite(string.Concat(Enumerable.Repeat("Paris is big. ", 300))));
        Assert.Contains("Shorten the answer", answer.Message);
    }

    [Theory]
    [InlineData(1e308)]
    [InlineData(-1e308)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public async Task AnAbsurdCtiThreshold_IsRefused(double k)
    {
        var error = await Assert.ThrowsAsync<MirageException>(() => Cite("Paris.", options: new CitationOptions { Pecore = new() { CtiStdThreshold = k } }));
        Assert.Contains("CtiStdThreshold must be a number between -1000 and 1000", error.Message);
    }

    [Fact]
    public async Task UnknownMethodOrMetric_IsRejectedListingChoices()
    {
        var error = await Assert.ThrowsAsync<MirageException>(() => Cite("Paris.", options: new CitationOptions { Pecore = new() { CciMethod = "shap" } }));
        Assert.Contains("Unknown attribution method 'shap'", error.Message);
        error = await Assert.ThrowsAsync<MirageException>(() => Cite("Paris.", options: new CitationOptions { Pecore = new() { CtiMetric = "bleu" } }));
        Assert.Contains("Unknown step function 'bleu'", error.Message);
    }

    [Fact]
    public async Task Json_HasStableSnakeCaseNames_AndRoundTrips()
    {
        var result = await Cite("Paris is the capital. It is in France.", options: new CitationOptions { Method = CitationMethod.Cci });
        var json = MirageJson.Serialize(result);
        var node = JsonNode.Parse(json)!;
        foreach (var name in new[] { "model_id", "sentences", "tokens", "passages", "cues", "inputs", "cti_threshold", "options", "cost" })
            Assert.NotNull(node[name]);
        Assert.NotNull(node["inputs"]!["with_context_ids"]);
        Assert.NotNull(node["tokens"]![0]!["contrast_id"]);
        Assert.Equal("ContextToNoContext", node["options"]!["pecore"]!["kl_direction"]!.GetValue<string>());
        Assert.Equal("TopPercent", node["options"]!["filter"]!.GetValue<string>());
        Assert.Equal(2, node["cost"]!["forward_passes"]!.GetValue<int>() - (result.Cues.Count > 0 ? 1 : 0));

        var back = MirageJson.Deserialize<CitationResult>(json);
        Assert.Equal(MirageJson.Serialize(back), json);
    }

    [Fact]
    public async Task Rethreshold_WithTheSameOptions_ReproducesTheCitations_AndCanTighten()
    {
        var result = await Cite("Paris is the capital of France. Rome is the capital of Italy.",
            options: new CitationOptions { Method = CitationMethod.Cci, Prompt = new PromptTemplate { Instruction = "Answer." }, AtMostCitations = null, Pecore = new() { CtiStdThreshold = 0 } });
        var again = CitationBuilder.Rethreshold(MirageJson.Deserialize<CitationResult>(MirageJson.Serialize(result)), result.Options);
        Assert.Equal(MirageJson.Serialize(result.Sentences), MirageJson.Serialize(again.Sentences));

        var single = CitationBuilder.Rethreshold(result, result.Options with { AtMostCitations = 1 });
        Assert.All(single.Sentences, s => Assert.True(s.Citations.Count <= 1));
        var stricter = CitationBuilder.Rethreshold(result, result.Options with { Pecore = result.Options.Pecore with { CtiStdThreshold = 100 } });
        Assert.All(stricter.Tokens, t => Assert.False(t.Selected));
        Assert.All(stricter.Sentences, s => Assert.Empty(s.Citations));

        // Ablation citations are measured on the model; saved scores cannot redo them.
        var ablation = await Cite("Paris is the capital of France.");
        Assert.Contains("need the model", Assert.Throws<MirageException>(() => CitationBuilder.Rethreshold(ablation, ablation.Options)).Message);
    }

    [Fact]
    public async Task ABatch_GivesEachRequestWhatItGetsAlone()
    {
        // Different prompt and answer lengths (so the batched passes pad) and different options.
        var everyToken = new CitationOptions { Prompt = new PromptTemplate { Instruction = "Answer." }, AtMostCitations = null, Pecore = new() { CtiStdThreshold = 0 } };
        var requests = new[]
        {
            new CitationRequest("Capital?", Passages, "Paris is the capital of France. Rome is the capital of Italy.", everyToken),
            new CitationRequest("Which city?", [Passages[1]], "Rome."),
            new CitationRequest("Capital of France?", Passages, "It is Paris, the capital of France.", everyToken),
        };
        var batched = await _engine.CiteBatchAsync(requests, TestContext.Current.CancellationToken);
        Assert.Equal(requests.Length, batched.Count);
        for (int i = 0; i < requests.Length; i++)
        {
            var alone = await _engine.CiteAsync(requests[i], TestContext.Current.CancellationToken);
            Assert.Equal(alone.Answer, batched[i].Answer);
            Assert.Equal(alone.Tokens.Select(t => t.Cti), batched[i].Tokens.Select(t => t.Cti), (a, b) => Math.Abs(a - b) < 1e-4);
            Assert.Equal(alone.Tokens.Select(t => t.Selected), batched[i].Tokens.Select(t => t.Selected));
            Assert.Equal(alone.Tokens.Select(t => t.ContrastId), batched[i].Tokens.Select(t => t.ContrastId));
            Assert.Equal(MirageJson.Serialize(alone.Sentences.Select(s => s.Citations.Select(c => c.PassageId))), MirageJson.Serialize(batched[i].Sentences.Select(s => s.Citations.Select(c => c.PassageId))));
            Assert.Equal(alone.Cues.SelectMany(c => c.Scores), batched[i].Cues.SelectMany(c => c.Scores), (a, b) => Math.Abs(a - b) < 1e-4);
        }
        Assert.Contains(batched, r => r.Tokens.Any(t => t.Selected));
    }

    [Fact]
    public async Task ABatchWithAnInvalidRequest_FailsNamingTheProblem()
    {
        var requests = new[] { new CitationRequest("Capital?", Passages, "Paris."), new CitationRequest("Capital?", Passages, " ") };
        var error = await Assert.ThrowsAsync<MirageException>(() => _engine.CiteBatchAsync(requests, TestContext.Current.CancellationToken));
        Assert.Contains("answer is empty", error.Message);
    }

    [Fact]
    public async Task ConcurrentCalls_AreSerialisedAndEachGetsItsOwnAnswer()
    {
        var answers = new[] { "Paris is nice.", "Rome is old.", "Both are capitals." };
        // While something else holds the model, no citation runs: they wait for the model's gate.
        await _model.ComputeGate.WaitAsync(TestContext.Current.CancellationToken);
        var calls = answers.Select(a => Cite(a)).ToList();
        var all = Task.WhenAll(calls);
        Assert.NotSame(all, await Task.WhenAny(all, Task.Delay(500, TestContext.Current.CancellationToken)));
        Assert.All(calls, c => Assert.False(c.IsCompleted));
        _model.ComputeGate.Release();
        var results = await all;
        Assert.Equal(answers, results.Select(r => r.Answer));
        Assert.All(results, r => Assert.Equal(r.Answer.Replace(" ", ""), string.Concat(r.Tokens.Select(t => t.Text)).Replace(" ", "")));
    }
}

/// <summary>The engine with a model that has a chat template.</summary>
public sealed class ChatTemplateCitationTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ChatTemplate_WrapsTheUserMessage_AndPassagesAreLocatedInsideIt()
    {
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config() with { MaxPositionEmbeddings = 512 });
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
        config["bos_token"] = "<s>";
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString());
        using var model = TinyCheckpoint.Load(directory, TorchSharp.torch.ScalarType.Float32);
        var engine = new MirageCitationEngine(model, defaults: new CitationOptions { Prompt = new PromptTemplate { Instruction = "Answer." } });

        var result = await engine.CiteAsync(new CitationRequest("Capital?", [new(null, "P", "Paris is big."), new(null, "R", "Rome is old.")], "Paris."), TestContext.Current.CancellationToken);

        var prompt = result.Inputs.WithContextPrompt;
        Assert.StartsWith("<s><user>Answer.\n\nDocument [1](Title: P): Paris is big.\nDocument [2](Title: R): Rome is old.\n\nQuestion: Capital?</s><assistant>", prompt);
        Assert.Equal(model.Tokenizer.BosId, result.Inputs.WithContextIds[0]);
        Assert.NotEqual(model.Tokenizer.BosId, result.Inputs.WithContextIds[1]); // the template's BOS only, not a second one
        var first = result.Passages[0];
        var decoded = model.Tokenizer.Decode(result.Inputs.WithContextIds.Skip(first.TokenStart).Take(first.TokenEnd - first.TokenStart));
        Assert.Equal("Document [1](Title: P): Paris is big.", decoded.Trim());
        Assert.Equal(model.Tokenizer.EncodeIds("<s><user>Answer.\n\n\n\nQuestion: Capital?</s><assistant>", addSpecialTokens: false), result.Inputs.NoContextIds.Take(result.Inputs.NoContextAnswerStart));
    }

    [Fact]
    public async Task ChatTemplate_WithSentencePiece_LocatesEveryPassageExactly()
    {
        // stories260K's tokenizer.model with a chat template that writes "<s>" and "</s>" into the text.
        var directory = Directory.CreateDirectory(Path.Combine(_temp.Path, "stories-chat")).FullName;
        foreach (var file in Directory.GetFiles(SharedAssets.Stories260KHf))
            File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString());
        using var model = LanguageModel.Load(directory);
        var engine = new MirageCitationEngine(model, defaults: new CitationOptions { Prompt = new PromptTemplate { Instruction = "Tell a story." } });

        var result = await engine.CiteAsync(new CitationRequest("What did Tim do?", Stories260KCitationTests.PassagesWithTimAt(1), "Tim flew his kite."), TestContext.Current.CancellationToken);

        var prompt = result.Inputs.WithContextPrompt;
        Assert.StartsWith("<s><user>Tell a story.", prompt);
        // Every token's span is the text it stands for: special tokens themselves, pieces with '▁' as a space.
        var ids = result.Inputs.WithContextIds;
        for (int j = 0; j < result.Inputs.PromptTokenSpans.Count; j++)
        {
            var (start, end) = (result.Inputs.PromptTokenSpans[j][0], result.Inputs.PromptTokenSpans[j][1]);
            var piece = model.Tokenizer.Decode([ids[j]], skipSpecialTokens: false).Replace('\u2581', ' ').Trim();
            Assert.Equal(piece, prompt[start..end].Trim());
        }
        foreach (var passage in result.Passages)
        {
            var block = model.Tokenizer.Decode(ids.Skip(passage.TokenStart).Take(passage.TokenEnd - passage.TokenStart));
            var text = Stories260KCitationTests.PassagesWithTimAt(1)[passage.Index].Text;
            Assert.Equal($"Document [{passage.Index + 1}](Title: {Stories260KCitationTests.PassagesWithTimAt(1)[passage.Index].Title}): {text}", block.Trim());
            Assert.Equal(text, prompt[passage.TextStart..passage.TextEnd]);
        }
    }
}
