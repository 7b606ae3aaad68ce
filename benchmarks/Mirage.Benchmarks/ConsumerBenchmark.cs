using System.Diagnostics;
using System.Text.Json;
using LLama.Native;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;
using Mirage.Core.Tokenization;

namespace Mirage.Benchmarks;

/// <summary>
/// Citing with the models users hold, on the machine they have: a random checkpoint with the shape
/// of Qwen2.5-0.5B as a float32 folder, a GGUF F32 file and llama.cpp's Q4_K_M of it, each cited
/// (the default method) in a fresh process on each engine, with peak resident memory, against
/// llama.cpp running the same leave-one-out ablation itself; and, with <c>--include-8b</c>, a
/// Llama-3.1-8B-shaped Q4_K_M file written block by block (its float32 copy would not fit in memory).
/// </summary>
internal static class ConsumerBenchmark
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>What one child process does and reports.</summary>
    internal sealed record Job(string Model, string Engine, string DType, string Question, IReadOnlyList<Passage> Passages, string Answer, int Generate, bool RawLlamaCpp = false);

    internal sealed record Report(
        string Engine, string DType, double LoadSeconds, double CiteSeconds, int CiteForwardPasses, long CitePeakBytes,
        double LeaveOneOutSeconds, int LeaveOneOutPasses, int LeaveOneOutTokens, double GenerateSeconds, int Generated, double AskSeconds, long PeakBytes, string Cited);

    public static void Run(bool include8B)
    {
        var work = Path.Combine(Path.GetTempPath(), "mirage-bench-consumer");
        Directory.CreateDirectory(work);
        Console.WriteLine($"CPU: {CpuName()}; {Environment.ProcessorCount} cores; native bfloat16: {CpuFeatures.HasNativeBFloat16}");
        Console.WriteLine("Inputs: a ~30-token question, 5 passages of ~120 tokens, a ~60-token answer in 3 sentences; generation: 60 tokens.");

        var folder = Path.Combine(work, "qwen2.5-0.5b-shape");
        var f32 = Path.Combine(work, "qwen2.5-0.5b-shape-f32.gguf");
        var q4 = Path.Combine(work, "qwen2.5-0.5b-shape-Q4_K_M.gguf");
        if (!File.Exists(q4))
        {
            Console.Error.WriteLine($"Writing a random Qwen2.5-0.5B-shaped checkpoint, its GGUF F32 and llama.cpp's Q4_K_M to {work} ...");
            CheckpointWriter.WriteRandom(folder, Qwen05B());
            SyntheticTokenizer.Write(folder, Qwen05B().VocabSize);
            GgufConverter.FromHuggingFace(folder, f32);
            NativeApi.llama_empty_call();
            if (!LLama.LLamaQuantizer.Quantize(f32, q4, "Q4_K_M", nthread: Environment.ProcessorCount))
                throw new InvalidOperationException("llama.cpp could not quantize the model.");
        }
        var (question, passages, answer) = Inputs(TextTokenizer.Load(folder));
        var rows = new List<(string Source, long Bytes, Report Report)>
        {
            ("HF folder, float32", FolderBytes(folder), Child(new Job(folder, "torch", "float32", question, passages, answer, 60))),
            ("HF folder, bfloat16", FolderBytes(folder), Child(new Job(folder, "torch", "bfloat16", question, passages, answer, 60))),
            ("HF folder, auto", FolderBytes(folder), Child(new Job(folder, "torch", "auto", question, passages, answer, 60))),
            ("GGUF F32", new FileInfo(f32).Length, Child(new Job(f32, "torch", "float32", question, passages, answer, 60))),
            ("GGUF F32", new FileInfo(f32).Length, Child(new Job(f32, "llama.cpp", "auto", question, passages, answer, 60))),
            ("GGUF F32", new FileInfo(f32).Length, Child(new Job(f32, "raw", "", question, passages, answer, 0, RawLlamaCpp: true))),
            ("GGUF Q4_K_M", new FileInfo(q4).Length, Child(new Job(q4, "torch", "float32", question, passages, answer, 60))),
            ("GGUF Q4_K_M", new FileInfo(q4).Length, Child(new Job(q4, "llama.cpp", "auto", question, passages, answer, 60))),
            ("GGUF Q4_K_M", new FileInfo(q4).Length, Child(new Job(q4, "raw", "", question, passages, answer, 0, RawLlamaCpp: true))),
        };
        if (include8B)
        {
            var llama8B = Path.Combine(work, "llama-3.1-8b-shape-Q4_K_M.gguf");
            if (!File.Exists(llama8B))
            {
                Console.Error.WriteLine($"Writing a random Llama-3.1-8B-shaped Q4_K_M file to {llama8B} ...");
                RandomQuantizedGguf.Write(llama8B, Llama8B(), Path.Combine(work, "llama-3.1-8b-tokenizer"));
            }
            rows.Add(("8B GGUF Q4_K_M", new FileInfo(llama8B).Length, Child(new Job(llama8B, "llama.cpp", "auto", question, passages, answer, 60))));
            rows.Add(("8B GGUF Q4_K_M", new FileInfo(llama8B).Length, Child(new Job(llama8B, "raw", "", question, passages, answer, 0, RawLlamaCpp: true))));
        }

        Console.WriteLine();
        Console.WriteLine("| source | file GB | engine | dtype | load s | cite s (forward passes) | cite peak GiB | leave-one-out ablation s (passes, tokens) | generate 60 s | ask s | peak GiB |");
        Console.WriteLine("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (source, bytes, r) in rows)
        {
            string Or(double seconds, string text) => seconds > 0 ? text : "-";
            Console.WriteLine($"| {source} | {bytes / 1e9:F2} | {r.Engine} | {r.DType} | {Or(r.LoadSeconds, $"{r.LoadSeconds:F1}")} | {Or(r.CiteSeconds, $"{r.CiteSeconds:F1} ({r.CiteForwardPasses})")} | "
                + $"{Or(r.CiteSeconds, $"{r.CitePeakBytes / 1073741824.0:F2}")} | {r.LeaveOneOutSeconds:F1} ({r.LeaveOneOutPasses}, {r.LeaveOneOutTokens}) | {Or(r.GenerateSeconds, $"{r.GenerateSeconds:F1}")} | "
                + $"{Or(r.AskSeconds, $"{r.AskSeconds:F1}")} | {r.PeakBytes / 1073741824.0:F2} |");
        }
        Console.WriteLine();
        foreach (var (source, _, r) in rows.Where(r => r.Report.Cited.Length > 0))
            Console.WriteLine($"{source} on {r.Engine} ({r.DType}) cites: {r.Cited}");
    }

    // One configuration in a fresh process (this program with --measure-consumer), so each peak is its own.
    private static Report Child(Job job)
    {
        Console.Error.WriteLine($"  {Path.GetFileName(job.Model)} on {job.Engine} {job.DType} ...");
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        if (Path.GetFileName(Environment.ProcessPath) is "dotnet")
            start.ArgumentList.Add(typeof(ConsumerBenchmark).Assembly.Location);
        start.ArgumentList.Add("--measure-consumer");
        start.ArgumentList.Add(JsonSerializer.Serialize(job, Json));
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0)
            throw new InvalidOperationException($"The measurement of {job.Model} on {job.Engine} failed (exit {child.ExitCode}).");
        return JsonSerializer.Deserialize<Report>(output.Trim().Split('\n')[^1], Json)!;
    }

    /// <summary>The child side: runs <paramref name="json"/>'s job and prints its report as one JSON line.</summary>
    public static void MeasureHere(string json)
    {
        var job = JsonSerializer.Deserialize<Job>(json, Json)!;
        var report = job.RawLlamaCpp ? RawLlamaCpp(job) : OnMirage(job);
        Console.WriteLine(JsonSerializer.Serialize(report with { PeakBytes = PeakMemory.PeakBytes() }, Json));
    }

    private static Report OnMirage(Job job)
    {
        var clock = Stopwatch.StartNew();
        using var model = LanguageModel.Load(job.Model, new ComputeOptions { Engine = ModelEngines.Parse(job.Engine), DType = ComputeOptions.ParseDType(job.DType) });
        double load = clock.Elapsed.TotalSeconds;
        var engine = new MirageCitationEngine(model);
        var options = new CitationOptions();

        clock.Restart();
        var result = engine.CiteAsync(new CitationRequest(job.Question, job.Passages, job.Answer, options)).GetAwaiter().GetResult();
        double cite = clock.Elapsed.TotalSeconds;
        long citePeak = PeakMemory.PeakBytes();
        var cited = string.Join(" ", result.Sentences.Select(s => $"[{string.Join(",", s.Citations.Select(c => c.PassageId))}]"));

        // Leave-one-out alone, the passes llama.cpp repeats below.
        var input = PreparedCitation.Prepare(model, job.Question, job.Passages, job.Answer, options.Prompt);
        clock.Restart();
        using (var ablation = ContextAblation.Start(model, input, job.Question, job.Passages, options.Prompt))
        {
            ablation.Score(Enumerable.Range(0, job.Passages.Count).Select(p => ContextAblation.Without(job.Passages.Count, [p])).ToList());
            double leaveOneOut = clock.Elapsed.TotalSeconds;
            var (passes, tokens) = (ablation.ForwardPasses, ablation.TokensRun);

            // Generating an answer (random weights: no end-of-text, so all of it), then asking: generating
            // with the trace kept and citing what was generated.
            double generate = 0, ask = 0;
            int generated = 0;
            if (job.Generate > 0)
            {
                var prompt = PreparedCitation.AnswerPrompt(model, job.Question, job.Passages, options.Prompt);
                clock.Restart();
                var plain = model.Generate(prompt, new GenerationOptions { MaxTokens = job.Generate, StopAtEos = false });
                generate = clock.Elapsed.TotalSeconds;
                generated = plain.TokenIds.Count;
                clock.Restart();
                var answer = model.Generate(prompt, new GenerationOptions { MaxTokens = job.Generate, StopAtEos = false, KeepTrace = true });
                using var trace = answer.Trace;
                engine.CiteAsync(new CitationRequest(job.Question, job.Passages, answer.Text, options, answer.TokenIds) { Trace = trace }).GetAwaiter().GetResult();
                ask = clock.Elapsed.TotalSeconds;
            }
            // On llama.cpp, auto means as llama.cpp serves (float16 KV cache), float32 its exact mode.
            var dtype = model.Engine == ModelEngine.LlamaCpp ? job.DType : ComputeOptions.NameOf(model.DType);
            return new Report(ModelEngines.NameOf(model.Engine), dtype, load, cite, result.Cost.ForwardPasses, citePeak,
                leaveOneOut, passes, tokens, generate, generated, ask, 0, cited);
        }
    }

    // llama.cpp alone, as a program using it directly would run leave-one-out ablation: the full
    // prompt and answer once, then per passage (last first) the cache cut where the passage starts
    // and the rest decoded, logits only for the answer. Its own default context settings.
    private static Report RawLlamaCpp(Job job)
    {
        var clock = Stopwatch.StartNew();
        NativeLogConfig.llama_log_set((_, _) => { });
        NativeApi.llama_empty_call();
        TextTokenizer tokenizer;
        using (var file = GgufFile.Open(job.Model))
            tokenizer = GgufTokenizer.Read(file);
        var template = new CitationOptions().Prompt;
        int[] Prompt(IEnumerable<Passage> shown)
        {
            var prompt = template.Render(job.Question, shown.ToList(), withContext: true, tokenizer.ChatTemplate);
            return tokenizer.EncodeIds(prompt.Text, addSpecialTokens: !prompt.IsChat);
        }
        var full = Prompt(job.Passages);
        var answer = tokenizer.EncodeIds(job.Answer, addSpecialTokens: false);
        var modelParameters = LLamaModelParams.Default();
        modelParameters.n_gpu_layers = 0;
        modelParameters.load_mode = LLamaLoadMode.MemoryMap;
        using var weights = SafeLlamaModelHandle.LoadFromFile(job.Model, modelParameters);
        var contextParameters = LLamaContextParams.Default();
        contextParameters.n_ctx = (uint)(full.Length + answer.Length);
        contextParameters.n_threads = contextParameters.n_threads_batch = Environment.ProcessorCount;
        using var context = SafeLLamaContextHandle.Create(weights, contextParameters);
        double load = clock.Elapsed.TotalSeconds;

        clock.Restart();
        int passes = 0, tokens = 0;
        void Decode(int[] prompt, int from)
        {
            var sequence = prompt.Concat(answer).ToArray();
            context.MemorySequenceRemove((LLamaSeqId)0, from, -1);
            var batch = new LLamaBatch();
            for (int start = from; start < sequence.Length; start += (int)context.BatchSize)
            {
                batch.Clear();
                for (int i = start; i < Math.Min(sequence.Length, start + (int)context.BatchSize); i++)
                    batch.Add((LLamaToken)sequence[i], i, (LLamaSeqId)0, i >= prompt.Length - 1);
                if (context.Decode(batch) != DecodeResult.Ok)
                    throw new InvalidOperationException("llama.cpp could not decode.");
            }
            passes++;
            tokens += sequence.Length - from;
        }
        Decode(full, 0);
        foreach (var p in Enumerable.Range(0, job.Passages.Count).Reverse())
        {
            var ablated = Prompt(job.Passages.Where((_, i) => i != p));
            int shared = 0;
            while (shared < Math.Min(full.Length, ablated.Length) - 1 && full[shared] == ablated[shared])
                shared++;
            // Later passages first: each ablated prompt shares less than the one before, so the cache's prefix stays valid.
            Decode(ablated, shared);
        }
        return new Report("llama.cpp itself", "", load, 0, 0, 0, clock.Elapsed.TotalSeconds, passes, tokens, 0, 0, 0, 0, "");
    }

    // A question of ~30 tokens, 5 passages of ~120 and an answer of ~60 in three sentences, of random
    // words (the weights are random too, so no text means more than another).
    private static (string Question, IReadOnlyList<Passage> Passages, string Answer) Inputs(TextTokenizer tokenizer)
    {
        var random = new Random(7);
        string Text(int tokens, int sentences)
        {
            var words = new List<string>();
            while (tokenizer.EncodeIds(string.Join(" ", words), addSpecialTokens: false).Length < tokens)
                words.Add(new string(Enumerable.Range(0, 4).Select(_ => (char)('a' + random.Next(26))).ToArray()));
            int per = (words.Count + sentences - 1) / sentences;
            return string.Join(" ", words.Chunk(per).Select(chunk => string.Join(" ", chunk) + "."));
        }
        var passages = Enumerable.Range(1, 5).Select(i => new Passage($"{i}", null, Text(120, 2))).ToList();
        return (Text(30, 1), passages, Text(60, 3));
    }

    private static ModelConfig Qwen05B() => ModelConfig.Parse("""
        {
          "architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
          "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
          "vocab_size": 151936, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
          "rope_theta": 1000000, "tie_word_embeddings": true, "eos_token_id": 151935
        }
        """);

    private static ModelConfig Llama8B() => ModelConfig.Parse("""
        {
          "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
          "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
          "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
          "rope_theta": 500000, "tie_word_embeddings": false, "bos_token_id": 128254, "eos_token_id": 128255
        }
        """);

    private static long FolderBytes(string folder) => Directory.GetFiles(folder).Sum(f => new FileInfo(f).Length);

    internal static string CpuName() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
}
