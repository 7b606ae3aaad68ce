using System.Diagnostics;
using Mirage.Core.Models.Gguf;
using Mirage.Core.Models.Llama;
using Mirage.Core.Models.LlamaCpp;
using Mirage.Core.Models.Sources;
using Mirage.Core.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// A decoder-only language model loaded from a Hugging Face checkpoint folder or a GGUF file, with
/// its tokenizer. It scores continuations (teacher forcing), generates with a KV cache, runs cached
/// sequences for passage ablation, and exposes the forward pass over embeddings for attribution.
/// Forward passes run on one of two engines (<see cref="Engine"/>): TorchSharp, which does
/// everything, or llama.cpp, which runs a GGUF file's quantized weights as they are stored for the
/// forward-only work (generation, CTI, ablation, verification). Instances are not thread-safe:
/// serialize calls.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly LlamaForCausalLM? _network;
    private readonly LlamaCppModel? _llama;

    private LanguageModel(LocatedModel located, string sourceFormat, ModelConfig config, TextTokenizer tokenizer, LlamaForCausalLM? network, LlamaCppModel? llama,
        ScalarType dtype, Device device, long parameterCount, string? engineNote)
    {
        Directory = located.Directory;
        ModelId = located.ModelId;
        SourceFormat = sourceFormat;
        Config = config;
        Tokenizer = tokenizer;
        _network = network;
        _llama = llama;
        DType = dtype;
        Device = device;
        ParameterCount = parameterCount;
        EngineNote = engineNote;
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
    /// What the weights were stored as: the file format and its tensor types with counts, and for a
    /// GGUF file on TorchSharp that they were dequantized (its citations then explain the dequantized weights).
    /// </summary>
    public string SourceFormat { get; }

    /// <summary>What runs the forward passes: <see cref="ModelEngine.Torch"/> or <see cref="ModelEngine.LlamaCpp"/>.</summary>
    public ModelEngine Engine => _llama is null ? ModelEngine.Torch : ModelEngine.LlamaCpp;

    /// <summary>Why <see cref="ModelEngine.Auto"/> did not get the engine it would have picked (llama.cpp refused the file), or null.</summary>
    public string? EngineNote { get; }

    /// <summary>The checkpoint's configuration.</summary>
    public ModelConfig Config { get; }

    /// <summary>The checkpoint's tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The compute dtype (float32 on llama.cpp: its activations, KV cache and logits).</summary>
    public ScalarType DType { get; }

    /// <summary>The device tensors live on (the CPU on llama.cpp, which copies its logits there).</summary>
    public Device Device { get; }

    /// <summary>Number of parameters (a tied embedding counts once).</summary>
    public long ParameterCount { get; }

    /// <summary>The longest sequence (prompt plus continuation) the model accepts.</summary>
    public int ContextLength => Config.MaxPositionEmbeddings;

    /// <summary>
    /// Loads a checkpoint: a Hugging Face folder (config.json, safetensors weights, a tokenizer), also
    /// from the hub cache (<c>hf:ORG/NAME[@REVISION]</c>, or <c>ORG/NAME</c> when no such path exists),
    /// or a GGUF file (<c>FILE.gguf</c>, <c>ollama:NAME[:TAG]</c>); see <see cref="ModelReference"/>.
    /// The engine follows <see cref="ComputeOptions.Engine"/> (<see cref="ModelEngines.Resolve"/>); with
    /// <see cref="ModelEngine.Auto"/>, a GGUF file llama.cpp refuses runs on TorchSharp, and
    /// <see cref="EngineNote"/> says why.
    /// </summary>
    /// <exception cref="InvalidCheckpointException">Something in the folder is missing, malformed or unsupported.</exception>
    /// <exception cref="MirageException">The reference names nothing on this machine, or a format or engine that cannot be loaded.</exception>
    public static LanguageModel Load(string model, ComputeOptions? options = null)
    {
        options ??= new ComputeOptions();
        var located = ModelLocator.Locate(model);
        if (options.Threads is int threads)
            set_num_threads(threads);
        var engine = ModelEngines.Resolve(options.Engine, located.IsGguf, !options.NeedsGradients, options.DType);
        string? note = null;
        if (engine == ModelEngine.LlamaCpp)
        {
            try
            {
                return LoadOnLlamaCpp(located, options);
            }
            catch (LlamaCppLoadException e) when (options.Engine == ModelEngine.Auto)
            {
                note = $"llama.cpp could not load '{located.Directory}' ({e.Message}); it runs on TorchSharp, dequantized.";
            }
            catch (LlamaCppLoadException e)
            {
                throw new InvalidCheckpointException($"llama.cpp could not load '{located.Directory}': {e.Message}. Try --engine torch.", e);
            }
        }
        return LoadOnTorch(located, options, note);
    }

    private static LanguageModel LoadOnTorch(LocatedModel located, ComputeOptions options, string? note)
    {
        var device = options.ResolveDevice();
        var (config, tokenizer, shards, configPath, sourceFormat) = Open(located);
        LlamaForCausalLM network;
        ScalarType dtype;
        try
        {
            dtype = options.ResolveDType(device, config);
            if (dtype == ScalarType.Float16 && device.type == DeviceType.CPU)
                throw new MirageException("float16 is not supported on CPU (it runs ~100x slower than float32 there); use bfloat16 or float32.");
            CheckpointLoader.CheckSize(shards, config, configPath);
            network = new LlamaForCausalLM(config, dtype, device);
            // Inference weights take no gradients; attribution differentiates w.r.t. embeddings only.
            foreach (var parameter in network.parameters())
                parameter.requires_grad = false;
            try
            {
                CheckpointLoader.Load(network, shards, config, adopt: true);
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
        long parameters = network.parameters().Sum(p => p.NumberOfElements);
        return new LanguageModel(located, located.IsGguf ? $"{sourceFormat}, dequantized" : sourceFormat, config, tokenizer, network, null, dtype, device, parameters, note);
    }

    // The GGUF file's configuration and tokenizer come from Mirage's own reader (the same ids for both
    // engines); llama.cpp maps the weights.
    private static LanguageModel LoadOnLlamaCpp(LocatedModel located, ComputeOptions options)
    {
        bool gpu = options.Device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase);
        if (!gpu && !options.Device.Equals("cpu", StringComparison.OrdinalIgnoreCase))
            throw new MirageException($"Unknown device '{options.Device}'; choose cpu, cuda or cuda:N.");
        var (config, tokenizer, shards, _, sourceFormat) = Open(located);
        using var gguf = (GgufCheckpoint)shards[0];
        long parameters = gguf.File.Tensors.Where(t => gguf.Shapes.ContainsKey(GgufNames.ToHuggingFace(t.Name, config) ?? t.Name)).Sum(t => t.ElementCount);
        // An explicit float32 asks for exact numbers; auto runs llama.cpp as it serves the model.
        var llama = LlamaCppModel.Load(located.Directory, config.VocabSize, options.Threads, gpu, exact: options.DType == ScalarType.Float32);
        return new LanguageModel(located, sourceFormat, config, tokenizer, null, llama, ScalarType.Float32, CPU, parameters, null);
    }

    // Both formats meet as checkpoint tensors: safetensors shards, or one GGUF file.
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
            return (gguf.Config, GgufTokenizer.Read(gguf.File), [gguf], directory, $"GGUF v{gguf.File.Version} ({types})");
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

    /// <summary>Token ids <c>[B, T]</c> to input embeddings <c>[B, T, C]</c> (TorchSharp engine).</summary>
    public Tensor Embed(Tensor ids) => Network.Embed(ids.to(Device));

    /// <summary>Residual-stream vectors <c>[..., C]</c> to logits <c>[..., V]</c> through the final norm and the LM head (TorchSharp engine): the logit lens.</summary>
    public Tensor Unembed(Tensor hidden) => Network.Unembed(hidden.to(Device));

    /// <summary>
    /// Layer <paramref name="layer"/>'s FFN output at <paramref name="position"/> split by neuron
    /// (TorchSharp engine): <c>[I, C]</c>, and the rest no neuron accounts for (a bias), <c>[C]</c>;
    /// together they are the layer's <see cref="LayerDecomposition.FfnOutput"/> there.
    /// </summary>
    public (Tensor Neurons, Tensor Remainder) FfnNeurons(int layer, LayerDecomposition clean, int position) => Network.Neurons(layer, clean, position);

    /// <summary>
    /// Value zeroing at one target (TorchSharp engine): layer <paramref name="layer"/>'s output at
    /// <paramref name="position"/> with each source's values zeroed in turn, <c>[position + 1, C]</c>,
    /// from the layer's <paramref name="clean"/> decomposition and its <see cref="LayerDecomposition.HeadValues"/>.
    /// </summary>
    public Tensor ValueZeroedOutputs(int layer, LayerDecomposition clean, Tensor headValues, int position) => Network.ZeroedOutputs(layer, clean, headValues, position);

    /// <summary>The unembedding matrix <c>[V, C]</c> (TorchSharp engine): a vector's dot product with each row is how much it promotes that token.</summary>
    public Tensor UnembeddingMatrix => Network.UnembeddingMatrix;

    /// <summary>
    /// One pass over <paramref name="ids"/> with every layer taken apart (<see cref="ForwardRequest.Decompose"/>),
    /// without gradients, logits for the last position only (TorchSharp engine): what the routes,
    /// the lens and their node views read. The caller owns the returned tensors.
    /// </summary>
    public ForwardOutput Decompose(IReadOnlyList<int> ids)
    {
        using var noGrad = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray(), device: Device).unsqueeze(0);
        return Forward(new ForwardRequest(Embed(input), TorchScalars.Range(ids.Count, Device).unsqueeze(0), LogitsFrom: ids.Count - 1, Decompose: true));
    }

    /// <summary>A forward pass from embeddings (TorchSharp engine). The caller owns the returned tensors.</summary>
    public ForwardOutput Forward(ForwardRequest request) => Network.Forward(request);

    /// <summary>
    /// A new KV-cached sequence with room for <paramref name="capacity"/> tokens on this model's
    /// engine (the caller disposes it): generation and passage ablation run through one.
    /// </summary>
    public ICachedSequence NewSequence(int capacity) =>
        (ICachedSequence?)_llama?.NewSequence(capacity) ?? new TorchSequence(Network, new KvCache(Config, 1, capacity, DType, Device), Device);

    // Embeddings, gradients and attention weights exist only on TorchSharp.
    private LlamaForCausalLM Network => _network ?? throw new MirageException(
        "This needs the TorchSharp engine (gradients, embeddings or attention weights); the model runs on llama.cpp, which computes forward passes only. Load it with --engine torch.");

    /// <summary>
    /// Runs prompt + continuation through the model in one pass and returns, for each continuation
    /// token, its log-probability given everything before it.
    /// </summary>
    public double[] ScoreContinuation(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation) => ScoreContinuations([(prompt, continuation)])[0];

    /// <summary>
    /// Scores several (prompt, continuation) pairs in one right-padded batch; the numbers equal
    /// those of <see cref="ScoreContinuation"/> one at a time, up to floating-point reordering.
    /// </summary>
    public IReadOnlyList<double[]> ScoreContinuations(IReadOnlyList<(IReadOnlyList<int> Prompt, IReadOnlyList<int> Continuation)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0)
            return [];
        using var scope = NewDisposeScope();
        var logits = cat(TeacherForceLogits(pairs).ToList(), 0); // [sum N_b, V]
        // Each continuation token's log-probability, all pairs in one pass and one copy to managed memory.
        var targets = tensor(pairs.SelectMany(p => p.Continuation).Select(t => (long)t).ToArray(), device: Device);
        var flat = TokenLogProbs.Of(logits, targets).to(ScalarType.Float64).cpu().data<double>().ToArray();
        var result = new List<double[]>();
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
        if (_llama is not null)
            return pairs.Select(p => TeacherForceOnSequence(p.Prompt, p.Continuation).MoveToOuterDisposeScope()).ToList();
        var ids = PadRight(pairs.Select(p => p.Prompt.Concat(p.Continuation).ToArray()).ToList()); // [B, T]
        var positions = TorchScalars.Range(ids.shape[1], Device).unsqueeze(0).expand(ids.shape[0], -1);
        // The LM head runs only from the earliest position that predicts a continuation token.
        int first = pairs.Min(p => p.Prompt.Count) - 1;
        using var output = Forward(new ForwardRequest(Embed(ids), positions, LogitsFrom: first));
        return pairs.Select((p, b) => output.Logits[b].narrow(0, p.Prompt.Count - 1 - first, p.Continuation.Count).MoveToOuterDisposeScope()).ToList();
    }

    // One pair through a cached sequence of its own (llama.cpp runs no padded batches): [N, V].
    private Tensor TeacherForceOnSequence(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation)
    {
        using var sequence = NewSequence(prompt.Count + continuation.Count);
        using var logits = sequence.Append([.. prompt, .. continuation], logitsFrom: prompt.Count - 1)!; // [N + 1, V]
        return logits.narrow(0, 0, continuation.Count);
    }

    /// <summary>
    /// One teacher-forced pass over prompt + continuation (TorchSharp engine). With
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
        var positions = TorchScalars.Range(ids.shape[1], Device).unsqueeze(0);  // [1, T]
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
        var sequence = NewSequence(prompt.Count + budget);
        bool finished = false;
        try
        {
            using var sampler = new TokenSampler(options, Device);
            var stream = new StopStringStream(Tokenizer, prompt, options.StopStrings);
            var clock = Stopwatch.StartNew();

            int next = Step(sequence, prompt, sampler, keep ? report.Rows : null);
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
                yield return new GeneratedToken(next, delta, last ? report.FinishReason : null);
                if (last)
                {
                    finished = true;
                    yield break;
                }
                next = Step(sequence, [next], sampler, keep ? report.Rows : null);
            }
        }
        finally
        {
            // A finished generation's sequence goes to its trace; otherwise (not kept, failed, or left early) it goes now.
            if (keep && finished)
                report.Sequence = sequence;
            else
            {
                sequence.Dispose();
                report.DropRows();
            }
        }
    }

    // Appends ids to the sequence and samples the next token from the last position's logits (kept in `rows` when given).
    private static int Step(ICachedSequence sequence, IReadOnlyList<int> ids, TokenSampler sampler, List<Tensor>? rows)
    {
        using var scope = NewDisposeScope();
        var logits = sequence.Append(ids, logitsFrom: ids.Count - 1)![0];                     // [V]
        rows?.Add(logits.clone().DetachFromDisposeScope());
        return sampler.Next(logits);
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
        _network?.Dispose();
        _llama?.Dispose();
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
        public ICachedSequence? Sequence;

        public GenerationTrace? TakeTrace(IReadOnlyList<int> prompt)
        {
            if (Sequence is null)
                return null;
            var trace = new GenerationTrace(prompt.ToArray(), Ids.ToArray(), Sequence, stack(Rows)); // logits [N, V]
            DropRows();
            Sequence = null;
            return trace;
        }

        public void DropRows()
        {
            Rows.ForEach(r => r.Dispose());
            Rows.Clear();
        }
    }
}
