using System.Diagnostics;
using System.Text.Json;
using Mirage.Core.Models;
using Mirage.Core.Models.Llama;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mirage.Core.Training;

/// <summary>Optimiser settings for <see cref="CausalLmTrainer"/>.</summary>
public sealed record TrainerOptions
{
    /// <summary>Peak learning rate (AdamW).</summary>
    public double LearningRate { get; init; } = 3e-3;
    /// <summary>Linear warm-up steps before the cosine decay.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>Total steps of the schedule (cosine decays to 10% of the peak at this step).</summary>
    public int TotalSteps { get; init; } = 2000;
    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Gradient clipping by global norm.</summary>
    public double ClipNorm { get; init; } = 1.0;
    /// <summary>Seed for the initial weights.</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>
    /// The dtype of the forward and backward passes: float32, or bfloat16 with float32 master
    /// weights and optimiser state (mixed precision).
    /// </summary>
    public ScalarType ComputeDtype { get; init; } = ScalarType.Float32;
}

/// <summary>
/// Trains a Llama-architecture model from scratch on (prompt, target) sequences with a masked
/// next-token loss on the target tokens, on the CPU. Checkpoints are ordinary Hugging Face folders
/// (config.json + float32 model.safetensors), so they load through <see cref="LanguageModel.Load"/>.
/// </summary>
/// <remarks>
/// With a bfloat16 <see cref="TrainerOptions.ComputeDtype"/> the model computes in bfloat16 (several
/// times float32's matmul throughput on CPUs with AVX512-BF16) while AdamW updates float32 master
/// copies of the weights: bfloat16 alone would round most small updates away.
/// </remarks>
public sealed class CausalLmTrainer : IDisposable
{
    private readonly LlamaForCausalLM _model;
    private readonly IReadOnlyList<(string Name, Parameter Compute, Parameter Master)> _parameters;
    private readonly optim.Optimizer _optimizer;
    private readonly TrainerOptions _options;

    private CausalLmTrainer(ModelConfig config, TrainerOptions options, int step, Action<LlamaForCausalLM> initialise)
    {
        if (options.ComputeDtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new MirageException($"Training computes in float32 or bfloat16, not {options.ComputeDtype}.");
        Config = config;
        _options = options;
        Step = step;
        _model = new LlamaForCausalLM(config, ScalarType.Float32, CPU);
        initialise(_model);
        if (Mixed)
        {
            var masters = _model.parameters().Select(p => new Parameter(p.detach().clone())).ToList();
            _model.to(options.ComputeDtype);
            _parameters = _model.named_parameters().Select((p, i) => (p.name, p.parameter, masters[i])).ToList();
        }
        else
        {
            _parameters = _model.named_parameters().Select(p => (p.name, p.parameter, p.parameter)).ToList();
        }
        _optimizer = optim.AdamW(_parameters.Select(p => p.Master), options.LearningRate, weight_decay: options.WeightDecay);
    }

    private const int PaddingMultiple = 32;

    private bool Mixed => _options.ComputeDtype != ScalarType.Float32;

    /// <summary>The model's configuration.</summary>
    public ModelConfig Config { get; }

    /// <summary>Optimizer steps done so far.</summary>
    public int Step { get; private set; }

    /// <summary>Number of parameters.</summary>
    public long ParameterCount => _parameters.Sum(p => p.Master.NumberOfElements);

    /// <summary>A fresh model: normal(0, 0.02) weights, unit norms, zero biases.</summary>
    public static CausalLmTrainer Create(ModelConfig config, TrainerOptions options) => new(config, options, 0, model =>
    {
        using var _ = no_grad();
        using var generator = new Generator((ulong)options.Seed);
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                parameter.fill_(TorchScalars.One);
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
                parameter.zero_();
            else
                parameter.normal_(0, 0.02, generator);
        }
    });

    /// <summary>Continues from a checkpoint written by <see cref="Save"/> (weights and step; the optimiser's moments restart).</summary>
    public static CausalLmTrainer Resume(string directory, TrainerOptions options)
    {
        var config = ModelConfig.Load(directory);
        var statePath = Path.Combine(directory, "training_state.json");
        int step = File.Exists(statePath) ? JsonDocument.Parse(File.ReadAllText(statePath)).RootElement.GetProperty("step").GetInt32() : 0;
        return new CausalLmTrainer(config, options, step, model =>
        {
            var shards = CheckpointLoader.Open(CheckpointLoader.FindWeightFiles(directory));
            try
            {
                CheckpointLoader.Load(model, shards, config);
            }
            finally
            {
                shards.ForEach(s => s.Dispose());
            }
        });
    }

    /// <summary>One optimiser step on a batch; returns the mean loss over target tokens.</summary>
    public TrainingProgress TrainStep(IReadOnlyList<TrainingExample> batch)
    {
        if (batch.Count == 0)
            throw new MirageException("A training batch needs at least one example.");
        // The first target token is predicted from the last prompt token, so both must exist.
        if (batch.Any(e => e.Prompt.Length == 0 || e.Target.Length == 0))
            throw new MirageException("Every training example needs a prompt of at least one token (a BOS token will do) and a target of at least one token.");
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        _model.train();
        int length = batch.Max(e => e.Prompt.Length + e.Target.Length);
        if (length > Config.MaxPositionEmbeddings)
            throw new MirageException($"A training sequence has {length} tokens, more than the model's {Config.MaxPositionEmbeddings}.");
        // Batches are padded to a few lengths: oneDNN caches compiled kernels per tensor shape, and
        // one cache entry for every distinct length made a bfloat16 run grow by megabytes per step.
        length = Math.Min(Config.MaxPositionEmbeddings, (length + PaddingMultiple - 1) / PaddingMultiple * PaddingMultiple);
        var ids = new long[batch.Count * length];
        var weights = new float[batch.Count * length];
        for (int b = 0; b < batch.Count; b++)
        {
            var sequence = batch[b].Prompt.Concat(batch[b].Target).ToArray();
            for (int i = 0; i < sequence.Length; i++)
                ids[b * length + i] = sequence[i];
            // Position i predicts token i + 1; only target tokens are learned.
            for (int i = batch[b].Prompt.Length - 1; i < sequence.Length - 1; i++)
                weights[b * length + i] = 1;
        }
        var input = tensor(ids, [batch.Count, length]);
        var mask = tensor(weights, [batch.Count, length]);
        var positions = TorchScalars.Range(length).unsqueeze(0).expand(batch.Count, -1);
        // Right padding needs no mask: causal attention keeps it from reaching real tokens.
        using var output = _model.Forward(new ForwardRequest(_model.Embed(input), positions));
        var logits = output.Logits.narrow(1, 0, length - 1);                              // [B, T-1, V]
        var targets = input.narrow(1, 1, length - 1);                                     // [B, T-1]
        var losses = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1), reduction: nn.Reduction.None);
        var m = mask.narrow(1, 0, length - 1).reshape(-1);
        var loss = (losses * m).sum() / m.sum();

        double rate = LearningRate(Step);
        foreach (var group in _optimizer.ParamGroups)
            group.LearningRate = rate;
        _model.zero_grad();
        loss.backward();
        if (Mixed)
        {
            foreach (var (_, compute, master) in _parameters)
                master.grad = compute.grad!.to(ScalarType.Float32);
        }
        nn.utils.clip_grad_norm_(_parameters.Select(p => p.Master), _options.ClipNorm);
        _optimizer.step();
        if (Mixed)
        {
            using var _ = no_grad();
            foreach (var (_, compute, master) in _parameters)
                compute.copy_(master);
        }
        Step++;
        return new TrainingProgress(Step, loss.item<float>(), batch.Sum(e => e.Prompt.Length + e.Target.Length) / clock.Elapsed.TotalSeconds, rate);
    }

    private double LearningRate(int step)
    {
        if (step < _options.WarmupSteps)
            return _options.LearningRate * (step + 1) / _options.WarmupSteps;
        double progress = Math.Min(1, (step - _options.WarmupSteps) / (double)Math.Max(1, _options.TotalSteps - _options.WarmupSteps));
        return _options.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    /// <summary>Writes config.json, model.safetensors and the step count (add the tokenizer files beside them).</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "config.json"), (Config with { TorchDtype = "float32" }).ToJson());
        var tensors = _parameters.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Master.detach())).ToList();
        CheckpointWriter.WriteWeights(directory, tensors);
        File.WriteAllText(Path.Combine(directory, "training_state.json"), JsonSerializer.Serialize(new { step = Step }));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _optimizer.Dispose();
        if (Mixed)
        {
            foreach (var (_, _, master) in _parameters)
                master.Dispose();
        }
        _model.Dispose();
    }
}
