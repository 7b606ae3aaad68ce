using System.Diagnostics;
using Mirage.Core.Attribution.StepFunctions;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Pecore;
using static TorchSharp.torch;

namespace Mirage.Benchmarks;

/// <summary>One citation method's run: seconds, passes, and the resident memory its peak added (MiB).</summary>
internal sealed record MethodTiming(string Method, double Seconds, int Forwards, int Backwards, double PeakMiB);

/// <summary>
/// Mirage's citation cost, per method, against generating the same answer and against a loop shaped
/// like the reference implementation.
/// </summary>
internal sealed record CitationMeasurement(
    string Model, string DType, int PromptTokens, int AnswerTokens, int Selected, double GenerateSeconds, double GeneratePeakMiB,
    IReadOnlyList<MethodTiming> Methods,
    double NaiveSeconds, int NaiveForwards, int NaiveBackwards,
    double MaxCtiDifference, bool SameSelection, double FloorSeconds, double MatmulGflops);

internal static class CitationBenchmark
{
    private static readonly string[] Words = ("the a little girl boy dog cat park tree ball red blue happy sad big small ran jumped played saw found "
        + "with in on and then they friends mom day sun home garden kite box toy bird fish water flower went looked said very").Split(' ');

    private static string Text(Random random, int words) =>
        string.Join(" ", Enumerable.Range(0, words).Select(_ => Words[random.Next(Words.Length)])) + ".";

    public static CitationMeasurement Measure(string directory, ScalarType dtype, int passageTokens, int answerTokens)
    {
        using var model = LanguageModel.Load(directory, new ComputeOptions { DType = dtype });
        var random = new Random(5);
        // Grow texts until they reach the token budgets.
        string Fit(int tokens) { int words = 4; string t; do t = Text(new Random(words * 31 + tokens), words++); while (model.Tokenizer.EncodeIds(t, false).Length < tokens); return t; }
        var passages = Enumerable.Range(0, 5).Select(i => new Passage($"p{i + 1}", null, Fit(passageTokens / 5 - 8 + i))).ToList();
        var answer = Fit(answerTokens);
        var request = new CitationRequest("What happened?", passages, answer);
        var engine = new MirageCitationEngine(model);

        // Generating as many tokens as the answer has, from the same prompt: what citing is compared with.
        var prompt = PreparedCitation.AnswerPrompt(model, request.Question, passages, new PromptTemplate());
        model.Generate(prompt, new GenerationOptions { MaxTokens = 4, StopAtEos = false }); // warm-up
        long before = PeakMemory.Reset();
        var clock = Stopwatch.StartNew();
        model.Generate(prompt, new GenerationOptions { MaxTokens = model.Tokenizer.EncodeIds(answer, false).Length, StopAtEos = false });
        double generateSeconds = clock.Elapsed.TotalSeconds;
        double generatePeak = (PeakMemory.PeakBytes() - before) / 1048576.0;

        // The default method, then MIRAGE's reference one (saliency CCI).
        var methods = new List<MethodTiming>();
        CitationResult? saliency = null;
        foreach (var options in new[] { new CitationOptions(), new CitationOptions { Method = CitationMethod.Cci } })
        {
            engine.CiteAsync(request with { Answer = "a.", Options = options }).GetAwaiter().GetResult(); // warm-up
            before = PeakMemory.Reset();
            clock.Restart();
            var run = engine.CiteAsync(request with { Options = options }).GetAwaiter().GetResult();
            methods.Add(new MethodTiming(options.MethodName, clock.Elapsed.TotalSeconds, run.Cost.ForwardPasses, run.Cost.BackwardPasses,
                (PeakMemory.PeakBytes() - before) / 1048576.0));
            saliency = run;
        }
        var result = saliency!;

        methods.AddRange(OwnAnswer(model, engine, request, prompt, model.Tokenizer.EncodeIds(answer, false).Length));

        clock.Restart();
        var (naiveCti, naiveSelected, forwards, backwards) = Naive(model, result, result.Options);
        double naiveSeconds = clock.Elapsed.TotalSeconds;

        // Saliency's floor: 2 forwards over prompt + answer plus one input-gradient backward (about
        // one forward's matmuls) per selected token, at the measured matmul speed.
        double gflops = MatmulGflops(dtype);
        int tokens = result.Inputs.WithContextIds.Count;
        int selected = result.Tokens.Count(t => t.Selected);
        double forwardFlops = 2.0 * model.ParameterCount * tokens;
        double floor = (2 + selected) * forwardFlops / (gflops * 1e9);
        return new CitationMeasurement(model.ModelId, ComputeOptions.NameOf(dtype), result.Inputs.WithContextAnswerStart, result.Tokens.Count, selected,
            generateSeconds, generatePeak, methods, naiveSeconds, forwards, backwards,
            naiveCti.Zip(result.Tokens, (a, b) => Math.Abs(a - b.Cti)).Max(),
            naiveSelected.SequenceEqual(result.Tokens.Select(t => t.Selected)), floor, gflops);
    }

    // Citing the model's own answer as `ask` does, without and with the trace of the generation that wrote it.
    private static IEnumerable<MethodTiming> OwnAnswer(LanguageModel model, MirageCitationEngine engine, CitationRequest request, int[] prompt, int tokens)
    {
        // Sampled, seeded: greedy decoding of the random 135M checkpoint repeats a whitespace token.
        var generation = model.Generate(prompt, new GenerationOptions { MaxTokens = tokens, Temperature = 1, Seed = 1, StopAtEos = false, KeepTrace = true });
        using var trace = generation.Trace;
        if (string.IsNullOrWhiteSpace(generation.Text))
        {
            Console.Error.WriteLine($"{model.ModelId} answered with nothing to cite; its own answer is not timed.");
            return [];
        }
        var own = request with { Answer = generation.Text, AnswerTokenIds = generation.TokenIds };
        return new[] { ("own answer", (GenerationTrace?)null), ("own answer, traced", trace) }.Select(method =>
        {
            var clock = Stopwatch.StartNew();
            var run = engine.CiteAsync(own with { Trace = method.Item2 }).GetAwaiter().GetResult();
            return new MethodTiming(method.Item1, clock.Elapsed.TotalSeconds, run.Cost.ForwardPasses, run.Cost.BackwardPasses, 0);
        }).ToList();
    }

    // What Inseq's attribute-context does: a full forward per answer step in each setting (no KV
    // cache), then a separate forward + backward per selected token.
    private static (double[] Cti, bool[] Selected, int Forwards, int Backwards) Naive(LanguageModel model, CitationResult result, CitationOptions options)
    {
        var inputs = result.Inputs;
        var answer = result.Tokens.Select(t => t.Id).ToArray();
        var context = inputs.WithContextIds.Take(inputs.WithContextAnswerStart).ToArray();
        var noContext = inputs.NoContextIds.Take(inputs.NoContextAnswerStart).ToArray();
        var cti = new double[answer.Length];
        var contrast = new int[answer.Length];
        int forwards = 0;
        for (int t = 0; t < answer.Length; t++)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var withLogits = LastLogits(model, context.Concat(answer[..t]).ToArray());
            var withoutLogits = LastLogits(model, noContext.Concat(answer[..t]).ToArray());
            forwards += 2;
            cti[t] = StepFunctionLibrary.KlDivergence(new StepFunctionArgs(withLogits, tensor(new long[] { answer[t] }), null, withoutLogits)).to(ScalarType.Float64).item<double>();
            contrast[t] = (int)withoutLogits.argmax().item<long>();
        }
        double threshold = TokenSelection.MeanStdThreshold(cti, options.Pecore.CtiStdThreshold, options.Pecore.CtiStdDdof);
        var selected = TokenSelection.Select(cti, cti.Select(_ => true).ToArray(), threshold, options.Pecore.CtiTopK);
        int backwards = 0;
        for (int t = 0; t < answer.Length; t++)
        {
            if (!selected[t])
                continue;
            using var scope = NewDisposeScope();
            using var pass = model.TeacherForce(context, answer[..(t + 1)], trackEmbeddingGradients: true);
            var logProbs = pass.Logits[0, t].log_softmax(-1);
            var target = contrast[t] != answer[t] ? logProbs[answer[t]] - logProbs[contrast[t]] : logProbs[answer[t]];
            target.backward();
            _ = pass.Embeddings.grad!.norm(-1);
            forwards++;
            backwards++;
        }
        return (cti, selected, forwards, backwards);
    }

    private static Tensor LastLogits(LanguageModel model, int[] ids)
    {
        var input = tensor(ids.Select(i => (long)i).ToArray(), device: model.Device).unsqueeze(0);
        using var output = model.Forward(new ForwardRequest(model.Embed(input), TorchScalars.Range(ids.Length, model.Device).unsqueeze(0), LogitsFrom: ids.Length - 1));
        return output.Logits[0].clone();
    }

    private static double MatmulGflops(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var a = randn(1024, 1024).to(dtype);
        var b = randn(1024, 1024).to(dtype);
        a.matmul(b);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 10; i++)
            a.matmul(b);
        return 10 * 2.0 * 1024 * 1024 * 1024 / clock.Elapsed.TotalSeconds / 1e9;
    }
}
