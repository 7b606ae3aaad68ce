using System.CommandLine;
using Mirage.Benchmarks;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tokenization;
using static TorchSharp.torch;

// Runtime benchmark: forward and generation speed, float32 vs bfloat16, on stories260K and on a
// random checkpoint with the shape of a ~135M-parameter Llama (SmolLM-135M's dimensions).
var shared = new Option<string?>("--stories") { Description = "stories260K-hf folder (default: ../shared/models/stories260K-hf from the repository root)." };
var forwardTokens = new Option<int>("--forward-tokens") { DefaultValueFactory = _ => 512, Description = "Tokens per teacher-forced pass." };
var scoredTokens = new Option<int>("--scored-tokens") { DefaultValueFactory = _ => 64, Description = "Of the forward tokens, how many are the scored continuation (an answer); the rest is prompt." };
var promptTokens = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 128, Description = "Prompt length for generation." };
var generated = new Option<int>("--generate") { DefaultValueFactory = _ => 64, Description = "Tokens to generate." };
var repeats = new Option<int>("--repeats") { DefaultValueFactory = _ => 3, Description = "Timed repetitions (after one warm-up)." };
var skipLarge = new Option<bool>("--skip-135m") { Description = "Only measure stories260K." };
var suite = new Option<string>("--suite") { Description = "runtime, citation, all (both), training (reader training steps), load (the HTTP service under concurrent clients), gguf (GGUF load time, memory and dequantization speed), attention (SDPA against explicit attention by length and dtype), consumer (citing a 0.5B-shaped model from a folder, GGUF F32 and Q4_K_M on both engines, peak memory against llama.cpp's own), scaleout (the api and worker roles on NATS against one process: cost per request, throughput with 1-3 workers; needs nats-server), or routes (information-flow routes of one token and of a sentence on the 135M shape against one forward pass).", DefaultValueFactory = _ => "all" };
suite.AcceptOnlyFromAmong("runtime", "citation", "all", "training", "load", "gguf", "attention", "consumer", "scaleout", "routes");
var include8B = new Option<bool>("--include-8b") { Description = "consumer: also a Llama-3.1-8B-shaped Q4_K_M file (4.9 GB written to the temporary folder; minutes per run on a laptop CPU)." };
var measureLoad = new Option<string?>("--measure-load") { Description = "gguf: (internal) load this model in this process and print seconds and peak memory.", Hidden = true };
var measureConsumer = new Option<string?>("--measure-consumer") { Description = "consumer: (internal) run one configuration in this process and print its report.", Hidden = true };
var clients = new Option<int>("--clients") { DefaultValueFactory = _ => 8, Description = "load, scaleout: concurrent clients." };
var seconds = new Option<int>("--seconds") { DefaultValueFactory = _ => 60, Description = "load, scaleout: how long the clients run (per row)." };
var queue = new Option<int>("--queue") { DefaultValueFactory = _ => 64, Description = "load: the server's queue length (Server:MaxQueueLength)." };
var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1, Description = "load: requests a worker cites as one batch (Server:BatchSize)." };
var loadModel = new Option<string?>("--model") { Description = "load: model folder (default: the embedded reader)." };
var root = new RootCommand("Mirage benchmarks: runtime speed, citation cost against the reference-shaped loop, training steps, the HTTP service under load, GGUF loading, attention kernels, and memory and time on consumer hardware")
{
    shared, forwardTokens, scoredTokens, promptTokens, generated, repeats, skipLarge, suite, include8B, clients, seconds, queue, batch, loadModel, measureLoad, measureConsumer,
};
root.SetAction(parse =>
{
    if (parse.GetValue(measureLoad) is { } measured)
    {
        GgufBenchmark.MeasureLoadHere(measured);
        return 0;
    }
    if (parse.GetValue(measureConsumer) is { } job)
    {
        ConsumerBenchmark.MeasureHere(job);
        return 0;
    }
    if (parse.GetRequiredValue(suite) == "consumer")
    {
        ConsumerBenchmark.Run(parse.GetValue(include8B));
        return 0;
    }
    if (parse.GetRequiredValue(suite) == "load")
    {
        LoadBenchmark.RunAsync(parse.GetValue(clients), TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(loadModel), parse.GetValue(queue), parse.GetValue(batch)).GetAwaiter().GetResult();
        return 0;
    }
    if (parse.GetRequiredValue(suite) == "scaleout")
    {
        ScaleOutBenchmark.RunAsync(parse.GetValue(clients), TimeSpan.FromSeconds(parse.GetValue(seconds))).GetAwaiter().GetResult();
        return 0;
    }
    if (parse.GetRequiredValue(suite) == "attention")
    {
        AttentionBenchmark.Run(parse.GetValue(repeats));
        return 0;
    }
    if (parse.GetRequiredValue(suite) == "training")
    {
        RunTraining(parse.GetValue(repeats));
        return 0;
    }
    var models = new List<string>();
    var stories = parse.GetValue(shared) ?? Path.GetFullPath(Path.Combine(FindRepositoryRoot(), "..", "shared", "models", "stories260K-hf"));
    if (Directory.Exists(stories))
        models.Add(stories);
    else
        Console.Error.WriteLine($"stories260K not found at {stories}; skipping it.");

    string? temp = null;
    if (!parse.GetValue(skipLarge))
    {
        temp = Path.Combine(Path.GetTempPath(), "mirage-bench-135m");
        Console.Error.WriteLine($"Writing a random 135M-parameter Llama checkpoint to {temp} ...");
        WriteLlama135M(temp);
        models.Add(temp);
    }

    var which = parse.GetRequiredValue(suite);
    Console.WriteLine($"torch threads: {get_num_threads()}");
    if (which == "routes")
        RoutesBenchmark.Run(temp ?? throw new InvalidOperationException("The routes suite needs the 135M checkpoint (no --skip-135m)."), parse.GetValue(forwardTokens), 12, 60, parse.GetValue(repeats));
    if (which == "gguf")
        GgufBenchmark.Run(temp ?? throw new InvalidOperationException("The gguf suite needs the 135M checkpoint (no --skip-135m)."), parse.GetValue(repeats));
    if (which is "runtime" or "all")
        RunRuntime(models, parse.GetValue(forwardTokens), parse.GetValue(scoredTokens), parse.GetValue(promptTokens), parse.GetValue(generated), parse.GetValue(repeats));
    if (which is "citation" or "all")
        RunCitation(models, stories);
    if (temp is not null)
        Directory.Delete(temp, recursive: true);
    return 0;
});
return root.Parse(args).Invoke();

static void RunRuntime(List<string> models, int forwardTokens, int scoredTokens, int promptTokens, int generated, int repeats)
{
    var rows = new List<RuntimeMeasurement>();
    foreach (var model in models)
    foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
    {
        Console.Error.WriteLine($"Measuring {Path.GetFileName(model)} in {ComputeOptions.NameOf(dtype)} ...");
        rows.Add(RuntimeBenchmark.Measure(model, dtype, forwardTokens, scoredTokens, promptTokens, generated, repeats));
    }
    Console.WriteLine();
    Console.WriteLine("| model | dtype | params | forward tokens (scored) | forward tok/s | forward GFLOP/s | prompt | generated | prefill s | decode tok/s |");
    Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var r in rows)
        Console.WriteLine($"| {r.Model} | {r.DType} | {r.Parameters / 1e6:F2}M | {r.ForwardTokens} ({r.ScoredTokens}) | {r.ForwardTokensPerSecond:F0} | {r.ForwardGflops:F1} | {r.PromptTokens} | {r.GeneratedTokens} | {r.PrefillSeconds:F3} | {r.DecodeTokensPerSecond:F1} |");
}

static void RunTraining(int repeats)
{
    var rows = new List<TrainingMeasurement>();
    foreach (var hidden in new[] { 128, 192, 256 })
    foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
    {
        Console.Error.WriteLine($"Training steps, hidden {hidden}, {ComputeOptions.NameOf(dtype)} ...");
        rows.Add(TrainingBenchmark.Measure(hidden, dtype, batch: 16, tokens: 256, repeats: Math.Max(repeats, 5)));
    }
    Console.WriteLine();
    Console.WriteLine("| hidden | compute dtype | params | batch x tokens | s/step | tok/s |");
    Console.WriteLine("|---:|---|---:|---:|---:|---:|");
    foreach (var r in rows)
        Console.WriteLine($"| {r.Hidden} | {r.DType} | {r.Parameters / 1e6:F2}M | {r.Batch} x {r.Tokens} | {r.SecondsPerStep:F3} | {r.TokensPerSecond:F0} |");
}

static void RunCitation(List<string> models, string stories)
{
    var rows = new List<CitationMeasurement>();
    foreach (var model in models)
    foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
    {
        // stories260K has a 512-token context, so its passages are shorter (the prompt adds ~150 tokens).
        int passageTokens = model == stories ? 250 : 600;
        Console.Error.WriteLine($"Citing with {Path.GetFileName(model)} in {ComputeOptions.NameOf(dtype)} (generating, ablation, saliency, then the reference-shaped loop) ...");
        rows.Add(CitationBenchmark.Measure(model, dtype, passageTokens, 60));
    }
    Console.WriteLine();
    Console.WriteLine("| model | dtype | prompt + answer tokens | selected | generate s (peak MiB) | ablation s (fwd/bwd) | x generate | peak MiB (x generate) | saliency s (fwd/bwd) | x generate | peak MiB (x generate) | naive s (fwd/bwd) | naive / ablation | naive / saliency | saliency of its FLOP floor | max CTI diff | same selection |");
    Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    foreach (var r in rows)
    {
        var (ablation, saliency) = (r.Methods[0], r.Methods[1]);
        string Peak(MethodTiming m) => $"{m.PeakMiB:F0} ({m.PeakMiB / Math.Max(1, r.GeneratePeakMiB):F1}x)";
        Console.WriteLine($"| {r.Model} | {r.DType} | {r.PromptTokens} + {r.AnswerTokens} | {r.Selected} | {r.GenerateSeconds:F2} ({r.GeneratePeakMiB:F0}) | {ablation.Seconds:F2} ({ablation.Forwards}/{ablation.Backwards}) | {ablation.Seconds / r.GenerateSeconds:F2}x | {Peak(ablation)} | "
            + $"{saliency.Seconds:F2} ({saliency.Forwards}/{saliency.Backwards}) | {saliency.Seconds / r.GenerateSeconds:F2}x | {Peak(saliency)} | {r.NaiveSeconds:F2} ({r.NaiveForwards}/{r.NaiveBackwards}) | "
            + $"{r.NaiveSeconds / ablation.Seconds:F1}x | {r.NaiveSeconds / saliency.Seconds:F1}x | {r.FloorSeconds / saliency.Seconds:P0} | {r.MaxCtiDifference:G2} | {r.SameSelection} |");
    }

    Console.WriteLine();
    Console.WriteLine("| model | dtype | citing the model's own answer s (fwd) | with its generation's trace s (fwd) | saved |");
    Console.WriteLine("|---|---|---:|---:|---:|");
    foreach (var r in rows.Where(r => r.Methods.Count == 4))
    {
        var (own, traced) = (r.Methods[2], r.Methods[3]);
        Console.WriteLine($"| {r.Model} | {r.DType} | {own.Seconds:F2} ({own.Forwards}) | {traced.Seconds:F2} ({traced.Forwards}) | {1 - traced.Seconds / own.Seconds:P0} |");
    }

    if (Directory.Exists(stories))
    {
        Console.Error.WriteLine("Comparing float32 and bfloat16 citations on story items ...");
        var prompt = new PromptTemplate { Template = "Once upon a time, there were three friends. {passages}\n{question}", PassageTemplate = "{text}", UntitledPassageTemplate = "{text}", PassageSeparator = " " };
        var (sentences, agreeing, items) = AgreementBenchmark.Measure(stories, prompt);
        Console.WriteLine();
        Console.WriteLine($"float32 vs bfloat16 on stories260K: {agreeing}/{sentences} sentences cite the same passages ({(double)agreeing / sentences:P0}) over {items} items.");
    }
}

static void WriteLlama135M(string directory)
{
    var config = ModelConfig.Parse("""
        {
          "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536,
          "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
          "vocab_size": 49152, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
          "rope_theta": 10000, "tie_word_embeddings": true, "bos_token_id": 256, "eos_token_id": 257
        }
        """);
    CheckpointWriter.WriteRandom(directory, config);
    TokenizerJsonWriter.WriteByteLevel(directory, [], ["<s>", "</s>"], "<s>", "</s>");
}

static string FindRepositoryRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "Mirage.sln")))
            return dir.FullName;
    return Directory.GetCurrentDirectory();
}
