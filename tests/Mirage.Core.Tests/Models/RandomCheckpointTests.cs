using Mirage.Core.Models;
using Mirage.Core.Models.Safetensors;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

/// <summary>Internal consistency of the runtime on random checkpoints of each architecture.</summary>
public sealed class RandomCheckpointTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Architectures => new("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM");

    [Theory]
    [MemberData(nameof(Architectures))]
    public void KvCacheSteps_EqualFullRecomputation(string architecture)
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(architecture)));
        var ids = TinyCheckpoint.RandomIds(12, 1);
        var full = TinyCheckpoint.Logits(model, ids);

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var cache = new KvCache(model.Config, 1, ids.Length, model.DType, model.Device);
        int prefill = 5;
        for (int start = 0; start < ids.Length; start = start == 0 ? prefill : start + 1)
        {
            int count = start == 0 ? prefill : 1;
            var input = tensor(ids[start..(start + count)].Select(i => (long)i).ToArray()).unsqueeze(0);
            using var output = model.Forward(new ForwardRequest(model.Embed(input), TorchScalars.Range(start, start + count).unsqueeze(0), Cache: cache));
            var step = TinyCheckpoint.ToArray(output.Logits[0]);
            for (int t = 0; t < count; t++)
            for (int v = 0; v < step.GetLength(1); v++)
                Assert.Equal(full[start + t, v], step[t, v], 1e-10);
        }
        Assert.Equal(ids.Length, cache.Length);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(11)]
    public void LogitsOnlyFromAPosition_EqualTheFullSequencesLogitsThere(int from)
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config("Qwen2ForCausalLM")));
        var ids = TinyCheckpoint.RandomIds(12, 3);
        var full = TinyCheckpoint.Logits(model, ids);

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        using var output = model.Forward(new ForwardRequest(model.Embed(input), TorchScalars.Range(ids.Length).unsqueeze(0), LogitsFrom: from));
        var tail = TinyCheckpoint.ToArray(output.Logits[0]);
        Assert.Equal(ids.Length - from, tail.GetLength(0));
        for (int t = from; t < ids.Length; t++)
        for (int v = 0; v < tail.GetLength(1); v++)
            Assert.Equal(full[t, v], tail[t - from, v], 1e-12);
    }

    [Fact]
    public void GreedyGeneration_EqualsArgmaxOfFullRecomputation()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config()));
        var prompt = TinyCheckpoint.RandomIds(6, 2).ToList();
        var generated = model.Generate(prompt, new GenerationOptions { MaxTokens = 10, StopAtEos = false }).TokenIds;
        var sequence = new List<int>(prompt);
        foreach (var id in generated)
        {
            var logits = TinyCheckpoint.Logits(model, sequence);
            int last = sequence.Count - 1, best = 0;
            for (int v = 1; v < logits.GetLength(1); v++)
                if (logits[last, v] > logits[last, best])
                    best = v;
            Assert.Equal(best, id);
            sequence.Add(id);
        }
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void BatchedScoring_EqualsOneAtATime(string architecture)
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(architecture)));
        var pairs = new List<(IReadOnlyList<int>, IReadOnlyList<int>)>
        {
            (TinyCheckpoint.RandomIds(7, 3), TinyCheckpoint.RandomIds(4, 4)),
            (TinyCheckpoint.RandomIds(2, 5), TinyCheckpoint.RandomIds(9, 6)),
            (TinyCheckpoint.RandomIds(11, 7), TinyCheckpoint.RandomIds(1, 8)),
        };
        var batched = model.ScoreContinuations(pairs);
        for (int i = 0; i < pairs.Count; i++)
            Assert.Equal(model.ScoreContinuation(pairs[i].Item1, pairs[i].Item2), batched[i], (a, b) => Math.Abs(a - b) < 1e-6);
    }

    [Fact]
    public void LeftPaddedBatch_EqualsUnpaddedRuns()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config("Qwen2ForCausalLM")));
        int[] shortIds = TinyCheckpoint.RandomIds(4, 9), longIds = TinyCheckpoint.RandomIds(9, 10);

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(new long[] { 0, 0, 0, 0, 0 }.Concat(shortIds.Select(i => (long)i)).Concat(longIds.Select(i => (long)i)).ToArray(), [2, 9]);
        var mask = tensor(Enumerable.Range(0, 18).Select(i => i >= 5).ToArray(), [2, 9]);
        var positions = mask.to(ScalarType.Int64).cumsum(1).sub(TorchScalars.One).clamp_min(TorchScalars.Zero);
        using var output = model.Forward(new ForwardRequest(model.Embed(ids), positions, mask));
        var batched = TinyCheckpoint.ToArray(output.Logits[.., -1]);

        var alone = new[] { TinyCheckpoint.Logits(model, shortIds), TinyCheckpoint.Logits(model, longIds) };
        for (int b = 0; b < 2; b++)
        for (int v = 0; v < batched.GetLength(1); v++)
            Assert.Equal(alone[b][alone[b].GetLength(0) - 1, v], batched[b, v], 1e-10);
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void ExplicitAttentionPath_AgreesWithFusedPath_AndReturnsCausalWeights(string architecture)
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(architecture)));
        var ids = TinyCheckpoint.RandomIds(9, 15);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        var positions = TorchScalars.Range(ids.Length).unsqueeze(0);
        using var fused = model.Forward(new ForwardRequest(model.Embed(input), positions));
        using var explicitPath = model.Forward(new ForwardRequest(model.Embed(input), positions, OutputAttentions: true, OutputHiddenStates: true));

        Assert.True(fused.Logits.allclose(explicitPath.Logits, 0, 1e-10));
        Assert.Equal(model.Config.NumLayers, explicitPath.Attentions!.Count);
        Assert.Equal(model.Config.NumLayers + 1, explicitPath.HiddenStates!.Count);
        foreach (var weights in explicitPath.Attentions)
        {
            Assert.Equal([1L, model.Config.NumHeads, ids.Length, ids.Length], weights.shape);
            Assert.True(weights.sum(-1).allclose(ones_like(weights.sum(-1)), 0, 1e-12));
            Assert.Equal(0.0, weights.triu(1).abs().max().item<double>());
        }
    }

    [Fact]
    public void ShardedCheckpoint_EqualsSingleFile()
    {
        var config = TinyCheckpoint.Config();
        var single = TinyCheckpoint.Write(_temp, config, new RandomCheckpointOptions { Seed = 5, PerturbNormsAndBiases = true }, "single");
        var sharded = TinyCheckpoint.Write(_temp, config, new RandomCheckpointOptions { Seed = 5, PerturbNormsAndBiases = true, Shards = 3 }, "sharded");
        Assert.True(File.Exists(Path.Combine(sharded, "model.safetensors.index.json")));
        Assert.Equal(3, Directory.GetFiles(sharded, "model-*-of-00003.safetensors").Length);

        using var a = TinyCheckpoint.Load(single);
        using var b = TinyCheckpoint.Load(sharded);
        var ids = TinyCheckpoint.RandomIds(8, 11);
        Assert.Equal(0.0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(a, ids), TinyCheckpoint.Logits(b, ids)));
    }

    [Fact]
    public void BFloat16File_LoadedAsFloat32_EqualsFloat32FileOfTheSameValues()
    {
        var config = TinyCheckpoint.Config();
        var bf16 = TinyCheckpoint.Write(_temp, config, new RandomCheckpointOptions { FileDType = ScalarType.BFloat16, PerturbNormsAndBiases = true }, "bf16");
        var f32 = Path.Combine(_temp.Path, "f32");
        Directory.CreateDirectory(f32);
        foreach (var file in Directory.GetFiles(bf16).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(f32, Path.GetFileName(file)));
        using (var source = SafetensorsFile.Open(Path.Combine(bf16, "model.safetensors")))
        {
            Assert.All(source.Tensors.Values, t => Assert.Equal("BF16", t.DType));
            var converted = source.Tensors.Keys.Select(name => new KeyValuePair<string, Tensor>(name, source.Read(name, ScalarType.Float32))).ToList();
            SafetensorsWriter.Write(Path.Combine(f32, "model.safetensors"), converted);
            converted.ForEach(t => t.Value.Dispose());
        }

        using var a = TinyCheckpoint.Load(bf16, ScalarType.Float32);
        using var b = TinyCheckpoint.Load(f32, ScalarType.Float32);
        var ids = TinyCheckpoint.RandomIds(10, 12);
        Assert.Equal(0.0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(a, ids), TinyCheckpoint.Logits(b, ids)));
    }

    [Fact]
    public void Qwen2_QkvBiasesAreLoadedAndChangeTheOutput()
    {
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config("Qwen2ForCausalLM"));
        var weights = Path.Combine(directory, "model.safetensors");
        using (var file = SafetensorsFile.Open(weights))
        {
            Assert.Contains("model.layers.0.self_attn.q_proj.bias", file.Tensors.Keys);
            Assert.Contains("model.layers.1.self_attn.v_proj.bias", file.Tensors.Keys);
            Assert.DoesNotContain("model.layers.0.self_attn.o_proj.bias", file.Tensors.Keys);
        }
        var ids = TinyCheckpoint.RandomIds(6, 13);
        double[,] withBias;
        using (var model = TinyCheckpoint.Load(directory))
            withBias = TinyCheckpoint.Logits(model, ids);

        RewriteWeights(weights, (name, t) => name.EndsWith("_proj.bias", StringComparison.Ordinal) ? zeros_like(t) : t.clone());
        using (var model = TinyCheckpoint.Load(directory))
            Assert.True(TinyCheckpoint.MaxDifference(withBias, TinyCheckpoint.Logits(model, ids)) > 1e-3);

        RewriteWeights(weights, (name, t) => name.Contains("layers.1.self_attn.k_proj.bias") ? null : t.clone());
        var error = Assert.Throws<InvalidCheckpointException>(() => TinyCheckpoint.Load(directory));
        Assert.Contains("missing (1): model.layers.1.self_attn.k_proj.bias", error.Message);
    }

    [Fact]
    public void Checkpoint_WithWrongShapeOrExtraTensor_ListsThem()
    {
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        var weights = Path.Combine(directory, "model.safetensors");
        RewriteWeights(weights, (name, t) => name == "model.norm.weight" ? ones(31) : t.clone(), extra: ("model.layers.9.mlp.up_proj.weight", ones(2)));
        var error = Assert.Throws<InvalidCheckpointException>(() => TinyCheckpoint.Load(directory));
        Assert.Contains("unexpected (1): model.layers.9.mlp.up_proj.weight", error.Message);
        Assert.Contains("model.norm.weight: checkpoint [31], model [32]", error.Message);
    }

    [Fact]
    public void TiedEmbeddings_UseTheEmbeddingAsHead_AndIgnoreAStoredCopy()
    {
        var config = TinyCheckpoint.Config() with { TieWordEmbeddings = true };
        var directory = TinyCheckpoint.Write(_temp, config);
        var weights = Path.Combine(directory, "model.safetensors");
        using (var file = SafetensorsFile.Open(weights))
            Assert.DoesNotContain("lm_head.weight", file.Tensors.Keys);
        var ids = TinyCheckpoint.RandomIds(5, 14);
        double[,] expected;
        using (var model = TinyCheckpoint.Load(directory))
        {
            expected = TinyCheckpoint.Logits(model, ids);
            Assert.Equal(config.HiddenSize * (long)config.VocabSize, model.ParameterCount - UntiedParameters(model));
        }

        RewriteWeights(weights, (_, t) => t.clone(), extra: ("lm_head.weight", zeros(config.VocabSize, config.HiddenSize)));
        using (var model = TinyCheckpoint.Load(directory))
            Assert.Equal(0.0, TinyCheckpoint.MaxDifference(expected, TinyCheckpoint.Logits(model, ids)));
    }

    private static long UntiedParameters(LanguageModel model)
    {
        var c = model.Config;
        long attention = c.HiddenSize * (long)c.HeadDim * (2 * c.NumHeads + 2 * c.NumKeyValueHeads);
        long mlp = 3L * c.HiddenSize * c.IntermediateSize;
        return c.NumLayers * (attention + mlp + 2L * c.HiddenSize) + c.HiddenSize;
    }

    private static void RewriteWeights(string path, Func<string, Tensor, Tensor?> change, (string Name, Tensor Value)? extra = null)
    {
        List<KeyValuePair<string, Tensor>> tensors;
        using (var file = SafetensorsFile.Open(path))
        {
            tensors = [];
            foreach (var name in file.Tensors.Keys)
            {
                using var original = file.Read(name);
                if (change(name, original) is { } changed)
                    tensors.Add(new(name, changed));
            }
        }
        if (extra is { } e)
            tensors.Add(new(e.Name, e.Value));
        SafetensorsWriter.Write(path, tensors);
        tensors.ForEach(t => t.Value.Dispose());
    }
}
