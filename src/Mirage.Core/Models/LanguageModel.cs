using System.Diagnostics;
using Mirage.Core.Models.Gguf;
using Mirage.Core.Models.Llama;
using Mirage.Core.Models.Sources;
using Mirage.Core.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// A decoder-only language model loaded from a Hugging Face checkpoint folder, with its tokenizer.
/// It scores continuations (teacher forcing), generates with a KV cache, and exposes the forward
/// pass over embeddings for attribution. Instances are not thread-safe: serialize calls.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly LlamaForCausalLM _model;

    private LanguageModel(LocatedModel located, string sourceFormat, ModelConfig config, TextTokenizer tokenizer, LlamaForCausalLM model, ScalarType dtype, Device device)
    {
        Directory = located.Directory;
        ModelId = located.ModelId;
        SourceFormat = sourceFormat;
        Config = config;
        Tokenizer = tokenizer;
        _model = model;
        DType = dtype;
        Device = device;
        ParameterCount = model.parameters().Sum(p => p.NumberOfElements);
    }

    /// <summary>
    /// Where an application finds Mirage's embedded reader: <c>models/reader</c> next to the
    /// executable (the build copies it there). The default model wherever none is given.
    /// </summary>
    public static string EmbeddedReaderDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "models", "reader");

    /// <summary>
    /// One computation at a time: callers that share this model (the citation engine, a chat
    /// client, a service) take this gate around generation and attribution. Concurrent passes would
    /// only compete for the same cores, and their results would depend on thread timing.
    /// </summary>
    public SemaphoreSlim ComputeGate { get; } = new(1, 1);

    /// <summary>The checkpoint folder, or the GGUF file.</summary>
    public string Directory { get; }

    /// <summary>A name for the model: the folder's or GGUF file's name, <c>ORG/NAME</c> from the Hugging Face cache, <c>NAME:TAG</c> from Ollama.</summary>
    public string ModelId { get; }

    /// <summary>
    /// What the weights were stored as: the file format and its tensor types with counts (a
    /// quantized GGUF's citations explain its dequantized weights, so this says which).
    /// </summary>
    public string SourceFormat { get; }

    /// <summary>The checkpoint's configuration.</summary>
    public ModelConfig Config { get; }

    /// <summary>The checkpoint's tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The compute dtype.</summary>
    public ScalarType DType { get; }

    /// <summary>The device the weights live on.</summary>
    public Device Device { get; }

    /// <summary>Number of parameters (a tied embedding counts once).</summary>
    public long ParameterCount { get; }

    /// <summary>The longest sequence (prompt plus continuation) the model accepts.</summary>
    public int ContextLength => Config.MaxPositionEmbeddings;

    /// <summary>
    /// Loads a checkpoint: a Hugging Face folder (config.json, safetensors weights, a tokenizer), also
    /// from the hub cache (<c>hf:ORG/NAME[@REVISION]</c>, or <c>ORG/NAME</c> when no such path exists),
    /// or a GGUF file (<c>FILE.gguf</c>, <c>ollama:NAME[:TAG]</c>), dequantized; see <see cref="ModelReference"/>.
    /// </summary>
    /// <exception cref="InvalidCheckpointException">Something in the folder is missing, malformed or unsupported.</exception>
    /// <exception cref="MirageException">The reference names nothing on this machine, or a format that cannot be loaded.</exception>
    public static LanguageModel Load(string model, ComputeOptions? options = null)
    {
        options ??= new ComputeOptions();
        var located = ModelLocator.Locate(model);
        if (options.Threads is int threads)
            set_num_threads(threads);
        var device = options.ResolveDevice();
        if (options.DType == ScalarType.Float16 && device.type == DeviceType.CPU)
            throw new MirageException("float16 is not supported on CPU (it runs ~100x slower than float32 there); use bfloat16 or float32.");

        var (config, tokenizer, shards, configPath, sourceFormat) = Open(located);
        LlamaForCausalLM network;
        try
        {
            CheckpointLoader.CheckSize(shards, config, configPath);
            network = new LlamaForCausalLM(config, options.DType, device);
            try
            {
                CheckpointLoader.Load(network, shards, config);
            }
            catch
            {
                network.Dispose();
                throw;
            }
        }
        finally
        {
            shards.ForEach(s => s.Dispose());
        }
        network.eval();
        // Inference weights take no gradients; attribution differentiates w.r.t. embeddings only.
        foreach (var parameter in network.parameters())
            parameter.requires_grad = false;
        return new LanguageModel(located, sourceFormat, config, tokenizer, network, options.DType, device);
    }

    // Both formats meet as checkpoint tensors: safetensors shards, or one GGUF file dequantized.
    private static (ModelConfig Config, TextTokenizer Tokenizer, List<ICheckpointTensors> Shards, string ConfigPath, string SourceFormat) Open(LocatedModel located)
    {
        var directory = located.Directory;
        if (!located.IsGguf)
        {
            var config = ModelConfig.Load(directory);
            var tokenizer = TextTokenizer.Load(directory, config.EosTokenIds, config.BosTokenId);
            var files = CheckpointLoader.Open(CheckpointLoader.FindWeightFiles(directory));
            var types = string.Join(", ", files.SelectMany(f => f.Tensors.Values).GroupBy(t => t.DType).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Count()}"));
            return (config, tokenizer, [.. files], Path.Combine(directory, "config.json"), $"safetensors ({types})");
        }
        var gguf = GgufCheckpoint.Open(directory);
        try
        {
            var types = string.Join(", ", gguf.TypeCounts.Select(p => $"{p.Key} x{p.Value}"));
            return (gguf.Config, GgufTokenizer.Read(gguf.File), [gguf], directory, $"GGUF v{gguf.File.Version} ({types}), dequantized");
        }
        catch
        {
            gguf.Dispose();
            throw;
        }
    }

    /// <summary>Loads a checkpoint (see <see cref="Load"/>) off the calling thread.</summary>
    public static Task<LanguageModel> LoadAsync(string model, ComputeOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Load(model, options), cancellationToken);

    /// <summary>Token ids <c>[B, T]</c> to input embeddings <c>[B, T, C]</c>.</summary>
    public Tensor Embed(Tensor ids) => _model.Embed(ids.to(Device));

    /// <summary>A forward pass from embeddings. The caller owns the returned tensors.</summary>
    public ForwardOutput Forward(ForwardRequest request) => _model.Forward(request);

    /// <summary>
    /// Runs prompt + continuation through the model in one pass and returns, for each continuation
    /// token, its log-probability given everything before it.
    /// </summary>
    public float[] ScoreContinuation(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation)
    {
        using var scope = NewDisposeScope();
        using var pass = TeacherForce(prompt, continuation, trackEmbeddingGradients: false);
        return pass.ContinuationLogProbs.to(ScalarType.Float32).cpu().data<float>().ToArray();
    }

    /// <summary>
    /// Scores several (prompt, continuation) pairs in one right-padded batch; the numbers equal
    /// those of <see cref="ScoreContinuation"/> one at a time, up to floating-point reordering.
    /// </summary>
    public IReadOnlyList<float[]> ScoreContinuations(IReadOnlyList<(IReadOnlyList<int> Prompt, IReadOnlyList<int> Continuation)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0)
            return [];
        using var scope = NewDisposeScope();
        var logProbs = cat(TeacherForceLogits(pairs).ToList(), 0).log_softmax(-1); // [sum N_b, V]
        // Each continuation token's log-probability, all pairs in one gather and one copy to managed memory.
        var targets = tensor(pairs.SelectMany(p => p.Continuation).Select(t => (long)t).ToArray(), device: Device);
        var picked = logProbs.gather(1, targets.unsqueeze(1)).squeeze(1);
        var flat = picked.to(ScalarType.Float32).cpu().data<float>().ToArray();
        var result = new List<float[]>();
        int offset = 0;
        foreach (var (_, continuation) in pairs)
        {
            result.Add(flat[offset..(offset + continuation.Count)]);
            offset += continuation.Count;
        }
        return result;
    }

    /// <summary>
    /// Teacher-forced logits for several (prompt, continuation) pairs in one right-padded pass,
    /// without gradients: element b is <c>[N_b, V]</c>, row i predicting continuation token i (the
    /// caller owns them). A batch of one computes exactly what <see cref="TeacherForce"/> does.
    /// </summary>
    public IReadOnlyList<Tensor> TeacherForceLogits(IReadOnlyList<(IReadOnlyList<int> Prompt, IReadOnlyList<int> Continuation)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0)
            return [];
        foreach (var (prompt, continuation) in pairs)
            CheckSequence(prompt, continuation);

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = PadRight(pairs.Select(p => p.Prompt.Concat(p.Continuation).ToArray()).ToList()); // [B, T]
        var positions = arange(ids.shape[1], device: Device).unsqueeze(0).expand(ids.shape[0], -1);
        // The LM head runs only from the earliest position that predicts a continuation token.
        int first = pairs.Min(p => p.Prompt.Count) - 1;
        using var output = Forward(new ForwardRequest(Embed(ids), positions, LogitsFrom: first));
        return pairs.Select((p, b) => output.Logits[b].narrow(0, p.Prompt.Count - 1 - first, p.Continuation.Count).MoveToOuterDisposeScope()).ToList();
    }

    /// <summary>
    /// One teacher-forced pass over prompt + continuation. With
    /// <paramref name="trackEmbeddingGradients"/>, the returned embeddings are a gradient leaf.
    /// </summary>
    public TeacherForcedPass TeacherForce(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation, bool trackEmbeddingGradients)
    {
        CheckSequence(prompt, continuation);
        using var scope = NewDisposeScope();
        using var gradients = set_grad_enabled(trackEmbeddingGradients);
        var ids = tensor(prompt.Concat(continuation).Select(i => (long)i).ToArray(), device: Device).unsqueeze(0); // [1, T]
        var embeddings = Embed(ids).detach();                                     // [1, T, C]
        if (trackEmbeddingGradients)
            embeddings.requires_grad_(true);
        var positions = arange(ids.shape[1], device: Device).unsqueeze(0);      // [1, T]
        using var output = Forward(new ForwardRequest(embeddings, positions, LogitsFrom: prompt.Count - 1));
        var logits = output.Logits.narrow(1, 0, continuation.Count);                         // [1, N, V]
        var predicting = logits[0];                                                          // [N, V]
        var targets = ids[0].narrow(0, prompt.Count, continuation.Count).unsqueeze(1);       // [N, 1]
        var logProbs = predicting.log_softmax(-1).gather(1, targets).squeeze(1);            // [N]
        return new TeacherForcedPass(
            logits.MoveToOuterDisposeScope(),
            embeddings.MoveToOuterDisposeScope(),
            logProbs.MoveToOuterDisposeScope(),
            prompt.Count);
    }

    /// <summary>Generates a continuation of <paramref name="prompt"/> (encoded with the tokenizer's BOS rule).</summary>
    public GenerationResult Generate(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Generate(Tokenizer.EncodeIds(prompt), options, cancellationToken);

    /// <summary>Generates a continuation of the prompt ids, greedy or sampled, with a KV cache.</summary>
    public GenerationResult Generate(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new GenerationOptions();
        var text = new System.Text.StringBuilder();
        var report = new GenerationReport();
        foreach (var step in GenerateTokens(prompt, options, report, cancellationToken))
            text.Append(step.TextDelta);
        return new GenerationResult(text.ToString(), report.Ids, prompt.Count, report.FinishReason, report.Prefill, report.Decode)
        {
            Trace = report.TakeTrace(prompt),
        };
    }

    /// <summary>Streams a continuation token by token (see <see cref="Generate(IReadOnlyList{int}, GenerationOptions?, CancellationToken)"/>); keeps no trace.</summary>
    /// <remarks>The prompt and options are checked when this is called, not when the first token is read, so a caller can refuse bad input before it starts answering.</remarks>
    public IEnumerable<GeneratedToken> GenerateTokens(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        GenerateTokens(prompt, (options ?? new GenerationOptions()) with { KeepTrace = false }, new GenerationReport(), cancellationToken);

    /// <summary>
    /// Streams a continuation token by token and, with <see cref="GenerationOptions.KeepTrace"/>, hands
    /// <paramref name="traced"/> the generation's trace (the caller's to dispose) once the stream is read
    /// to its end; a stream left early keeps none.
    /// </summary>
    public IEnumerable<GeneratedToken> GenerateTokens(IReadOnlyList<int> prompt, GenerationOptions options, Action<GenerationTrace> traced, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(traced);
        var report = new GenerationReport();
        return Traced(GenerateTokens(prompt, options, report, cancellationToken), report, prompt, traced);
    }

    private static IEnumerable<GeneratedToken> Traced(IEnumerable<GeneratedToken> tokens, GenerationReport report, IReadOnlyList<int> prompt, Action<GenerationTrace> traced)
    {
        foreach (var token in tokens)
            yield return token;
        if (report.TakeTrace(prompt) is { } trace)
            traced(trace);
    }

    private IEnumerable<GeneratedToken> GenerateTokens(IReadOnlyList<int> prompt, GenerationOptions options, GenerationReport report, CancellationToken cancellationToken)
    {
        options.Validate();
        if (prompt.Count == 0)
            throw new MirageException("The prompt is empty; generation needs at least one token.");
        if (prompt.Count >= ContextLength)
            throw new ContextLengthExceededException($"The prompt has {prompt.Count} tokens, which leaves no room in the model's {ContextLength}-token context; shorten it by at least {prompt.Count - ContextLength + 1} tokens.");
        CheckIds(prompt);
        return Generating(prompt, options, report, cancellationToken);
    }

    private IEnumerable<GeneratedToken> Generating(IReadOnlyList<int> prompt, GenerationOptions options, GenerationReport report, CancellationToken cancellationToken)
    {
        int budget = Math.Min(options.MaxTokens, ContextLength - prompt.Count);
        // The trace keeps the cache and each token's logits, while the logits fit its bound.
        long rowBytes = (long)Config.VocabSize * (DType == ScalarType.Float64 ? sizeof(double) : sizeof(float));
        bool keep = options.KeepTrace && budget * rowBytes <= GenerationReport.MaxTraceLogitBytes;
        var cache = new KvCache(Config, 1, prompt.Count + budget, DType, Device);
        bool finished = false;
        try
        {
            using var sampler = new TokenSampler(options, Device);
            using var _ = inference_mode();
            var stream = new StopStringStream(Tokenizer, prompt, options.StopStrings);
            var clock = Stopwatch.StartNew();

            int next;
            using (NewDisposeScope())
            {
                var ids = tensor(prompt.Select(i => (long)i).ToArray(), device: Device).unsqueeze(0); // [1, P]
                var positions = arange(prompt.Count, device: Device).unsqueeze(0);                   // [1, P]
                using var output = Forward(new ForwardRequest(Embed(ids), positions, Cache: cache, LogitsFrom: prompt.Count - 1));
                next = sampler.Next(output.Logits[0, 0]);
                if (keep)
                    report.Rows.Add(output.Logits[0, 0].clone().DetachFromDisposeScope());
            }
            report.Prefill = clock.Elapsed;
            clock.Restart();

            for (int produced = 1; ; produced++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                bool eos = options.StopAtEos && Tokenizer.EosIds.Contains(next);
                var delta = eos ? stream.Flush() : stream.Add(next);
                if (stream.Stopped)
                    report.FinishReason = FinishReason.StopString;
                else if (eos)
                    report.FinishReason = FinishReason.Eos;
                bool last = stream.Stopped || eos || produced == budget;
                if (last)
                    delta += stream.Stopped || eos ? "" : stream.Flush();
                report.Decode = clock.Elapsed;
                report.Ids.Add(next);
                yield return new GeneratedToken(next, delta);
                if (last)
                {
                    finished = true;
                    yield break;
                }

                using (NewDisposeScope())
                {
                    var ids = tensor(new long[] { next }, device: Device).unsqueeze(0);               // [1, 1]
                    var positions = tensor(new long[] { prompt.Count + produced - 1 }, device: Device).unsqueeze(0);
                    using var output = Forward(new ForwardRequest(Embed(ids), positions, Cache: cache));
                    next = sampler.Next(output.Logits[0, 0]);
                    if (keep)
                        report.Rows.Add(output.Logits[0, 0].clone().DetachFromDisposeScope());
                }
            }
        }
        finally
        {
            // A finished generation's cache goes to its trace; otherwise (not kept, failed, or left early) it goes now.
            if (keep && finished)
                report.Cache = cache;
            else
            {
                cache.Dispose();
                report.DropRows();
            }
        }
    }

    // Right padding with zeros; no key mask is needed, since causal attention keeps the padding
    // from reaching any real token.
    private Tensor PadRight(IReadOnlyList<int[]> sequences)
    {
        int length = sequences.Max(s => s.Length);
        var ids = new long[sequences.Count * length];
        for (int b = 0; b < sequences.Count; b++)
        for (int i = 0; i < sequences[b].Length; i++)
            ids[b * length + i] = sequences[b][i];
        return tensor(ids, [sequences.Count, length], device: Device);
    }

    private void CheckSequence(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(continuation);
        if (prompt.Count == 0)
            throw new MirageException("The prompt is empty; scoring needs at least one prompt token (usually BOS) before the continuation.");
        if (continuation.Count == 0)
            throw new MirageException("The continuation to score is empty.");
        int total = prompt.Count + continuation.Count;
        if (total > ContextLength)
            throw new MirageException($"Prompt ({prompt.Count} tokens) plus continuation ({continuation.Count} tokens) is {total} tokens, {total - ContextLength} more than the model's {ContextLength}-token context.");
        CheckIds(prompt);
        CheckIds(continuation);
    }

    private void CheckIds(IReadOnlyList<int> ids)
    {
        foreach (var id in ids)
            if (id < 0 || id >= Config.VocabSize)
                throw new MirageException($"Token id {id} is outside the vocabulary (0..{Config.VocabSize - 1}).");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _model.Dispose();
        ComputeGate.Dispose();
    }

    // What a generation reports back to its caller: times, why it ended, its ids, and what its trace needs.
    private sealed class GenerationReport
    {
        public const long MaxTraceLogitBytes = 256L << 20;
        public TimeSpan Prefill;
        public TimeSpan Decode;
        public FinishReason FinishReason = FinishReason.Length;
        public List<int> Ids { get; } = [];
        public List<Tensor> Rows { get; } = [];
        public KvCache? Cache;

        // Called after the generation ended, outside its inference mode, so the stacked logits are an ordinary tensor.
        public GenerationTrace? TakeTrace(IReadOnlyList<int> prompt)
        {
            if (Cache is null)
                return null;
            var trace = new GenerationTrace(prompt.ToArray(), Ids.ToArray(), Cache, stack(Rows)); // logits [N, V]
            DropRows();
            Cache = null;
            return trace;
        }

        public void DropRows()
        {
            Rows.ForEach(r => r.Dispose());
            Rows.Clear();
        }
    }
}
