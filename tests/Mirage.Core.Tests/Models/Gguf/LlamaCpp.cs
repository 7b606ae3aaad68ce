using LLama;
using LLama.Common;
using LLama.Native;

namespace Mirage.Core.Tests.Models.Gguf;

/// <summary>llama.cpp through LLamaSharp: an independent implementation that reads Mirage's GGUF files and runs them.</summary>
internal static class LlamaCpp
{
    // llama.cpp's model and context state is process-wide; one run at a time.
    private static readonly Lock Gate = new();

    /// <summary>llama.cpp's logits at the last of <paramref name="ids"/> (F32 KV cache, one thread: reference numbers).</summary>
    public static float[] LastLogits(string gguf, IReadOnlyList<int> ids)
    {
        lock (Gate)
        {
            var parameters = new ModelParams(gguf)
            {
                ContextSize = (uint)Math.Max(64, ids.Count + 8), BatchSize = (uint)Math.Max(64, ids.Count + 8), GpuLayerCount = 0,
                Threads = 1, BatchThreads = 1, TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
                // Flash attention on the CPU rounds Q to float16; the plain path keeps float32.
                FlashAttention = false,
            };
            using var weights = LLamaWeights.LoadFromFile(parameters);
            using var context = weights.CreateContext(parameters);
            var batch = new LLamaBatch();
            for (int i = 0; i < ids.Count; i++)
                batch.Add((LLamaToken)ids[i], i, (LLamaSeqId)0, i == ids.Count - 1);
            var result = context.Decode(batch);
            if (result != DecodeResult.Ok)
                throw new InvalidOperationException($"llama.cpp could not decode: {result}");
            return context.NativeHandle.GetLogitsIth(ids.Count - 1).ToArray();
        }
    }

    /// <summary>llama.cpp's own quantization of a GGUF file (<c>llama_model_quantize</c>, default parameters).</summary>
    public static void Quantize(string input, string output, string type)
    {
        lock (Gate)
        {
            // The quantizer does not load LLamaSharp's native library itself; this call does.
            NativeApi.llama_empty_call();
            if (!LLamaQuantizer.Quantize(input, output, type, nthread: 1))
                throw new InvalidOperationException($"llama.cpp could not quantize {input} to {type}.");
        }
    }
}
