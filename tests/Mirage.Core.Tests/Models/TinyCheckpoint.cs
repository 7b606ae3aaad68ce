using Mirage.Core.Models;
using Mirage.Core.Tokenization;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

/// <summary>Small random checkpoints in the real Hugging Face layout, written by the tests themselves.</summary>
internal static class TinyCheckpoint
{
    public const int Bos = 259, Eos = 260;

    public static ModelConfig Config(string architecture = "LlamaForCausalLM") =>
        ModelConfig.Parse($$"""
        {
          "architectures": ["{{architecture}}"], "hidden_size": 32, "intermediate_size": 48,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": 264, "max_position_embeddings": 128, "rms_norm_eps": 1e-6,
          "bos_token_id": {{Bos}}, "eos_token_id": {{Eos}}
        }
        """);

    /// <summary>A two-layer <paramref name="architecture"/> config with 8-dimensional heads, plus <paramref name="extra"/> JSON members (", \"name\": value").</summary>
    public static ModelConfig FamilyConfig(string architecture, string extra = "") =>
        ModelConfig.Parse($$"""
        {
          "architectures": ["{{architecture}}"], "hidden_size": 32, "intermediate_size": 48,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
          "vocab_size": 264, "max_position_embeddings": 128, "rms_norm_eps": 1e-6{{extra}}
        }
        """);

    /// <summary>Writes config, random weights and a byte-level tokenizer into a new folder of <paramref name="temp"/>.</summary>
    public static string Write(TempDirectory temp, ModelConfig config, RandomCheckpointOptions? options = null, string name = "checkpoint")
    {
        var directory = Path.Combine(temp.Path, name);
        CheckpointWriter.WriteRandom(directory, config, options ?? new RandomCheckpointOptions { PerturbNormsAndBiases = true, InitStd = 0.2 });
        TokenizerJsonWriter.WriteByteLevel(directory, [("Ġ", "t"), ("h", "e"), ("Ġt", "he")], ["<s>", "</s>"], "<s>", "</s>");
        return directory;
    }

    public static LanguageModel Load(string directory, ScalarType dtype = ScalarType.Float64) =>
        LanguageModel.Load(directory, new ComputeOptions { DType = dtype, Engine = ModelEngine.Torch });

    /// <summary>Logits <c>[T, V]</c> of one unpadded, uncached pass, as doubles.</summary>
    public static double[,] Logits(LanguageModel model, IReadOnlyList<int> ids)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        using var output = model.Forward(new ForwardRequest(model.Embed(input), TorchScalars.Range(ids.Count).unsqueeze(0)));
        return ToArray(output.Logits[0]);
    }

    public static double[,] ToArray(Tensor matrix)
    {
        var flat = matrix.to(ScalarType.Float64).cpu().data<double>().ToArray();
        var result = new double[matrix.shape[0], matrix.shape[1]];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(double));
        return result;
    }

    public static double MaxDifference(double[,] a, double[,] b)
    {
        Assert.Equal(a.GetLength(0), b.GetLength(0));
        Assert.Equal(a.GetLength(1), b.GetLength(1));
        double worst = 0;
        for (int i = 0; i < a.GetLength(0); i++)
        for (int j = 0; j < a.GetLength(1); j++)
            worst = Math.Max(worst, Math.Abs(a[i, j] - b[i, j]));
        return worst;
    }

    public static int[] RandomIds(int count, int seed) =>
        Enumerable.Range(0, count).Select(i => new Random(seed + i * 7919).Next(0, 259)).ToArray();
}
