using System.Text;
using System.Text.Json.Nodes;
using Mirage.Core.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models;

/// <summary>
/// Damaged checkpoints, as users and attackers hand them over: each is refused with one
/// <see cref="InvalidCheckpointException"/> that names the file and the field, before any
/// allocation the file cannot back; and no random byte flip makes loading fail any other way.
/// </summary>
public sealed class DamagedCheckpointTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static void EditConfig(string directory, Action<JsonObject> edit)
    {
        var path = Path.Combine(directory, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    // Rewrites the JSON header of a safetensors file, keeping its data.
    private static void EditHeader(string path, Func<string, string> edit) => EditHeaderBytes(path, h => Encoding.UTF8.GetBytes(edit(Encoding.UTF8.GetString(h))));

    private static void EditHeaderBytes(string path, Func<byte[], byte[]> edit)
    {
        var bytes = File.ReadAllBytes(path);
        int length = (int)BitConverter.ToUInt64(bytes, 0);
        var header = edit(bytes[8..(8 + length)]);
        using var stream = new FileStream(path, FileMode.Create);
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        stream.Write(header);
        stream.Write(bytes, 8 + length, bytes.Length - 8 - length);
    }

    public static TheoryData<string, string, string> Damage => new()
    {
        { "architectures:[5]", "config.json", "'architectures' must be a list of strings, got [5]" },
        { "torch_dtype:5", "config.json", "'torch_dtype' must be a string, got 5" },
        { "rope_type:3", "config.json", "'rope_scaling.rope_type' must be a string, got 3" },
        { "layer_types:[1,2]", "config.json", "'layer_types' must be a list of strings" },
        { "eos_token_id:[\"x\"]", "config.json", "'eos_token_id' must be an integer, got \"x\"" },
        { "eos_token_id:[null]", "config.json", "'eos_token_id' must be a token id or a list of token ids" },
        { "num_key_value_heads:0", "config.json", "'num_key_value_heads' must be positive, got 0" },
        { "num_key_value_heads:-2", "config.json", "'num_key_value_heads' must be positive, got -2" },
        { "head_dim:0", "config.json", "'head_dim' must be positive, got 0" },
        { "head_dim:-8", "config.json", "'head_dim' must be positive, got -8" },
        { "hidden_size:1000000000", "config.json", "describes" },
        { "vocab_size:1000000000", "config.json", "but the weight files hold" },
        { "intermediate_size:1000000000", "config.json", "but the weight files hold" },
        { "num_hidden_layers:1000000", "config.json", "'num_hidden_layers' is 1,000,000, beyond any real checkpoint" },
        { "head_dim:100000000", "config.json", "but the weight files hold" },
        { "max_position_embeddings:0", "config.json", "'max_position_embeddings' must be positive, got 0" },
        { "max_position_embeddings:-1", "config.json", "'max_position_embeddings' must be positive, got -1" },
        { "rope_theta:0", "config.json", "'rope_theta' must be above 0, got 0" },
        { "rope_factor:0", "config.json", "'rope_scaling.factor' must be above 0, got 0" },
        { "rms_norm_eps:-1", "config.json", "'rms_norm_eps' must be at least 0, got -1" },
        { "sliding_window:-4", "config.json", "'sliding_window' must be positive or null, got -4" },
        { "generation_config:not json", "generation_config.json", "is not valid JSON" },
        { "safetensors:invalid utf-8 name", "model.safetensors", "not valid" },
        { "safetensors:offsets as strings", "model.safetensors", "'data_offsets' must be two integers" },
        { "safetensors:duplicated key", "model.safetensors", "appears twice in the header" },
        { "index:weight_map value 5", "model.safetensors.index.json", "must be a shard file name, got 5" },
        { "index:shard outside the folder", "model.safetensors.index.json", "is not a file name in the checkpoint folder" },
        { "weights:all NaN", "model.safetensors", "holds NaN or infinite values" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void ADamagedCheckpoint_IsRefusedNamingTheFileAndTheField(string damage, string file, string expected)
    {
        bool sharded = damage.StartsWith("index:", StringComparison.Ordinal);
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(), new RandomCheckpointOptions { Shards = sharded ? 2 : 1 });
        var weights = Path.Combine(directory, "model.safetensors");
        var (what, value) = (damage[..damage.IndexOf(':')], damage[(damage.IndexOf(':') + 1)..]);
        switch (what)
        {
            case "rope_type":
                EditConfig(directory, c => c["rope_scaling"] = new JsonObject { ["rope_type"] = 3, ["factor"] = 2 });
                break;
            case "rope_factor":
                EditConfig(directory, c => c["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 0 });
                break;
            case "layer_types":
                EditConfig(directory, c => { c["sliding_window"] = 4; c["layer_types"] = JsonNode.Parse(value); });
                break;
            case "generation_config":
                File.WriteAllText(Path.Combine(directory, "generation_config.json"), value);
                break;
            case "safetensors" when value == "invalid utf-8 name":
                EditHeaderBytes(weights, h =>
                {
                    int at = Encoding.UTF8.GetString(h).IndexOf("model.norm.weight", StringComparison.Ordinal);
                    h[at] = 0xFF;
                    return h;
                });
                break;
            case "safetensors" when value == "offsets as strings":
                EditHeader(weights, h => System.Text.RegularExpressions.Regex.Replace(h, @"""data_offsets"":\[(\d+),(\d+)\]", @"""data_offsets"":[""$1"",""$2""]"));
                break;
            case "safetensors":
                EditHeader(weights, h => h.Insert(1, System.Text.RegularExpressions.Regex.Match(h, @"""model\.norm\.weight"":\{[^}]*\}").Value + ","));
                break;
            case "index":
                var index = Path.Combine(directory, "model.safetensors.index.json");
                var json = JsonNode.Parse(File.ReadAllText(index))!;
                json["weight_map"]!["model.norm.weight"] = value == "weight_map value 5" ? 5 : "../../etc/passwd";
                File.WriteAllText(index, json.ToJsonString());
                break;
            case "weights":
                var bytes = File.ReadAllBytes(weights);
                int dataStart = 8 + (int)BitConverter.ToUInt64(bytes, 0);
                Array.Fill(bytes, (byte)0xFF, dataStart, bytes.Length - dataStart);
                File.WriteAllBytes(weights, bytes);
                break;
            default:
                EditConfig(directory, c => c[what] = JsonNode.Parse(value));
                break;
        }

        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(directory));
        Assert.Contains(Path.Combine(directory, file), error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain("\n", error.Message);
    }

    [Fact]
    public void RandomByteFlips_AreRefusedCleanly_OrLoad()
    {
        var pristine = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(), name: "pristine");
        var files = new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" }.Where(f => File.Exists(Path.Combine(pristine, f))).ToArray();
        var random = new Random(19);
        var outcomes = new Dictionary<string, int>();
        for (int trial = 0; trial < 120; trial++)
        {
            var directory = Path.Combine(_temp.Path, $"flip-{trial}");
            Directory.CreateDirectory(directory);
            foreach (var f in Directory.GetFiles(pristine))
                File.Copy(f, Path.Combine(directory, Path.GetFileName(f)));
            var target = Path.Combine(directory, files[trial % files.Length]);
            var bytes = File.ReadAllBytes(target);
            // Flips land in the safetensors header most of the time: that is where structure is.
            int limit = target.EndsWith(".safetensors", StringComparison.Ordinal) && random.Next(4) > 0 ? Math.Min(bytes.Length, 8 + (int)BitConverter.ToUInt64(bytes, 0)) : bytes.Length;
            for (int flips = random.Next(1, 4); flips > 0; flips--)
                bytes[random.Next(limit)] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(target, bytes);
            try
            {
                using var model = LanguageModel.Load(directory, new ComputeOptions { DType = TorchSharp.torch.ScalarType.Float32 });
                outcomes["loaded"] = outcomes.GetValueOrDefault("loaded") + 1;
            }
            catch (MirageException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                outcomes["refused"] = outcomes.GetValueOrDefault("refused") + 1;
            }
            catch (Exception e)
            {
                Assert.Fail($"A flip in {Path.GetFileName(target)} (trial {trial}) failed with {e.GetType().Name}, not a clear refusal: {e.Message}");
            }
        }
        Assert.True(outcomes.GetValueOrDefault("refused") > 10, string.Join(", ", outcomes));
    }
}
