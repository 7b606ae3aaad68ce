using LLama.Exceptions;
using LLama.Native;

namespace Mirage.Core.Models.LlamaCpp;

/// <summary>
/// A GGUF file loaded by llama.cpp (through LLamaSharp): the weights stay in their own quantized
/// types and run on llama.cpp's kernels. It computes forward passes only, through
/// <see cref="LlamaCppSequence"/>s; token ids come from Mirage's tokenizer, so both engines see the same ids.
/// </summary>
internal sealed class LlamaCppModel : IDisposable
{
    // llama.cpp's own default: tokens per decode call and per micro-batch. Only the positions asked
    // for produce logits, so a large vocabulary does not make a micro-batch's buffers large.
    private const int BatchSize = 512;

    private readonly SafeLlamaModelHandle _weights;
    private readonly int _threads;
    private readonly bool _gpu;
    private readonly bool _exact;

    private LlamaCppModel(SafeLlamaModelHandle weights, int vocabulary, int threads, bool gpu, bool exact)
    {
        _weights = weights;
        VocabularySize = vocabulary;
        _threads = threads;
        _gpu = gpu;
        _exact = exact;
    }

    /// <summary>The vocabulary size (the logits' rows).</summary>
    public int VocabularySize { get; }

    /// <summary>
    /// Loads <paramref name="path"/> with llama.cpp. <paramref name="vocabulary"/> is
    /// the vocabulary Mirage read from the same file; llama.cpp must agree. With <paramref name="gpu"/>
    /// every layer is offloaded (a CUDA build of LLamaSharp's backend). <paramref name="exact"/> keeps the
    /// KV cache and attention in float32 (the numbers an exact forward of these weights computes);
    /// otherwise llama.cpp runs as it serves by default: a float16 KV cache and flash attention where it has it.
    /// </summary>
    /// <exception cref="LlamaCppLoadException">llama.cpp could not load the file (the message gives its reason).</exception>
    public static LlamaCppModel Load(string path, int vocabulary, int? threads, bool gpu, bool exact)
    {
        LlamaCppRuntime.Initialize();
        var parameters = LLamaModelParams.Default();
        parameters.n_gpu_layers = gpu ? 999 : 0;
        // On the CPU llama.cpp repacks quantized blocks into its own buffers for its AVX2/AVX-512
        // kernels, so a mapped file would stay resident beside the repacked copy (8.2 GB against
        // 4.9 GB for an 8B Q4_K_M, at the same speed): read the file instead. On a GPU the layers
        // leave host memory, and mapping saves the copy on the way.
        parameters.load_mode = gpu ? LLamaLoadMode.MemoryMap : LLamaLoadMode.None;
        SafeLlamaModelHandle weights;
        LlamaCppRuntime.ClearErrors();
        try
        {
            weights = SafeLlamaModelHandle.LoadFromFile(path, parameters);
        }
        catch (LoadWeightsFailedException e)
        {
            throw new LlamaCppLoadException(LlamaCppRuntime.LoggedErrors ?? e.Message, e);
        }
        if (weights.Vocab.Count != vocabulary)
        {
            int count = weights.Vocab.Count;
            weights.Dispose();
            throw new LlamaCppLoadException($"llama.cpp reads {count} tokens where Mirage reads {vocabulary}");
        }
        return new LlamaCppModel(weights, vocabulary, threads ?? Environment.ProcessorCount, gpu, exact);
    }

    /// <summary>A new sequence with room for <paramref name="capacity"/> tokens, in its own context and KV cache.</summary>
    public LlamaCppSequence NewSequence(int capacity)
    {
        var parameters = LLamaContextParams.Default();
        parameters.n_ctx = (uint)Math.Max(capacity, 1);
        parameters.n_batch = parameters.n_ubatch = (uint)BatchSize;
        parameters.n_seq_max = 1;
        parameters.n_threads = parameters.n_threads_batch = _threads;
        if (_exact)
        {
            // A float32 KV cache and the plain attention path keep activations in float32 (flash attention
            // on the CPU rounds Q to float16). About 20% slower than the defaults on a 0.5B model.
            parameters.type_k = parameters.type_v = GGMLType.GGML_TYPE_F32;
            parameters.llama_flash_attn_type = LLamaFlashAttentionType.LLAMA_FLASH_ATTENTION_TYPE_DISABLED;
        }
        parameters.offload_kqv = _gpu;
        parameters.no_perf = true;
        return new LlamaCppSequence(SafeLLamaContextHandle.Create(_weights, parameters), capacity, VocabularySize, BatchSize);
    }

    public void Dispose() => _weights.Dispose();
}

/// <summary>llama.cpp refused a GGUF file.</summary>
internal sealed class LlamaCppLoadException(string message, Exception? inner = null) : Exception(message, inner);
