using Mirage.Core.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models;

public sealed class ModelConfigTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void UnknownArchitecture_ListsTheSupportedOnes()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => ModelConfig.Parse("""{"architectures": ["GPT2LMHeadModel"], "hidden_size": 8}"""));
        Assert.Contains("GPT2LMHeadModel", error.Message);
        Assert.Contains("LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM", error.Message);
    }

    [Fact]
    public void MissingRequiredField_IsNamed()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => ModelConfig.Parse("""{"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 4}"""));
        Assert.Contains("missing 'intermediate_size'", error.Message);
    }

    [Fact]
    public void HeadsNotDivisibleByKeyValueHeads_IsRejected()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => ModelConfig.Parse("""{"architectures": ["LlamaForCausalLM"], "hidden_size": 24, "intermediate_size": 8, "num_attention_heads": 3, "num_key_value_heads": 2, "num_hidden_layers": 1, "vocab_size": 4}"""));
        Assert.Contains("multiple of num_key_value_heads", error.Message);
    }

    [Fact]
    public void UnsupportedRopeScaling_ListsTheSupportedTypes()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => ModelConfig.Parse("""{"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 4, "rope_scaling": {"type": "yarn", "factor": 4}}"""));
        Assert.Contains("'yarn' is not supported", error.Message);
        Assert.Contains("linear, llama3", error.Message);
    }

    [Fact]
    public void NotJson_SaysSo()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => ModelConfig.Parse("{ nope", "x/config.json"));
        Assert.Contains("x/config.json", error.Message);
        Assert.Contains("not valid JSON", error.Message);
    }

    [Fact]
    public void Load_FolderWithoutConfig_SaysWhatAFolderNeeds()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(_temp.Path));
        Assert.Contains("no config.json", error.Message);
    }

    [Fact]
    public void Load_FolderWithoutWeights_SaysWhichFilesAreExpected()
    {
        File.WriteAllText(_temp.File("config.json"), TinyCheckpoint.Config().ToJson());
        Mirage.Core.Tokenization.TokenizerJsonWriter.WriteByteLevel(_temp.Path, [], ["<s>", "</s>"], "<s>", "</s>");
        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(_temp.Path));
        Assert.Contains("neither model.safetensors nor model.safetensors.index.json", error.Message);
    }

    [Fact]
    public void Load_FolderWithoutTokenizer_SaysWhichFilesAreExpected()
    {
        File.WriteAllText(_temp.File("config.json"), TinyCheckpoint.Config().ToJson());
        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(_temp.Path));
        Assert.Contains("tokenizer.model", error.Message);
        Assert.Contains("tokenizer.json", error.Message);
    }

    [Fact]
    public void Load_IndexNamingAMissingShard_NamesIt()
    {
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(), new RandomCheckpointOptions { Shards = 2 });
        File.Delete(Path.Combine(directory, "model-00002-of-00002.safetensors"));
        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(directory));
        Assert.Contains("model-00002-of-00002.safetensors", error.Message);
    }

    [Fact]
    public void Load_UnknownDeviceOrFloat16OnCpu_FailsClearly()
    {
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        Assert.Contains("Unknown device 'tpu'", Assert.Throws<MirageException>(() => LanguageModel.Load(directory, new ComputeOptions { Device = "tpu" })).Message);
        Assert.Contains("float16 is not supported on CPU", Assert.Throws<MirageException>(() => LanguageModel.Load(directory, new ComputeOptions { DType = TorchSharp.torch.ScalarType.Float16 })).Message);
        Assert.Contains("choose one of auto, float32, bfloat16", Assert.Throws<MirageException>(() => ComputeOptions.ParseDType("int8")).Message);
    }

    [Fact]
    public void Load_SymlinkedFiles_AsInTheHubCache_GiveTheSameModel()
    {
        // The hub's layout: snapshots/<commit>/NAME is a relative link to blobs/<hash>.
        var original = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(), new RandomCheckpointOptions { Shards = 2 });
        var blobs = Directory.CreateDirectory(Path.Combine(_temp.Path, "hub", "blobs")).FullName;
        var snapshot = Directory.CreateDirectory(Path.Combine(_temp.Path, "hub", "snapshots", "0123abc")).FullName;
        foreach (var file in Directory.GetFiles(original))
        {
            var blob = Path.Combine(blobs, Guid.NewGuid().ToString("N"));
            File.Copy(file, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        using var linked = TinyCheckpoint.Load(snapshot);
        using var direct = TinyCheckpoint.Load(original);
        var ids = TinyCheckpoint.RandomIds(12, 3);
        Assert.Equal(0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(direct, ids), TinyCheckpoint.Logits(linked, ids)));
    }

    [Fact]
    public void Phi3LongRope_ReadsAsTransformersComputesIt()
    {
        // Phi-4-mini's fields: a top-level original context, "longrope" factors for the rotated three quarters of each head.
        var factors = string.Join(", ", Enumerable.Repeat("1.5", 6));
        var config = ModelConfig.Parse($$"""
            {"architectures": ["Phi3ForCausalLM"], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1, "num_attention_heads": 4,
             "vocab_size": 16, "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "partial_rotary_factor": 0.75,
             "rope_scaling": {"type": "longrope", "short_factor": [{{factors}}], "long_factor": [{{factors}}]} }
            """);
        Assert.Equal(12, config.RotaryDim);
        Assert.Equal(("longrope", 32.0, 4096), (config.RopeScaling!.Type, config.RopeScaling.Factor, config.RopeScaling.OriginalMaxPositionEmbeddings));
        Assert.Equal(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), config.RopeScaling.AttentionFactor, 12);
        var wrong = Assert.Throws<InvalidCheckpointException>(() => ModelConfig.Parse(config.ToJson().Replace("\"partial_rotary_factor\": 0.75", "\"partial_rotary_factor\": 1")));
        Assert.Contains("holds 6 factors; 16 rotated dimensions need 8", wrong.Message);
        Assert.Equal(config.RopeScaling.AttentionFactor, ModelConfig.Parse(config.ToJson()).RopeScaling!.AttentionFactor);
    }

    [Fact]
    public void ToJson_RoundTripsEveryField()
    {
        var config = TinyCheckpoint.Config("MistralForCausalLM") with
        {
            SlidingWindows = [8, null],
            RopeScaling = new RopeScaling("linear", 2),
            TieWordEmbeddings = true,
            MlpBias = true,
            EosTokenIds = [260, 261],
        };
        var back = ModelConfig.Parse(config.ToJson());
        Assert.Equal(config with { SlidingWindows = [], EosTokenIds = [] }, back with { SlidingWindows = [], EosTokenIds = [] });
        Assert.Equal(config.SlidingWindows, back.SlidingWindows);
        Assert.Equal(config.EosTokenIds, back.EosTokenIds);
    }
}
