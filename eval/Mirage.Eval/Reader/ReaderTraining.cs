using System.Diagnostics;
using Mirage.Core;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tokenization;
using Mirage.Core.Training;
using Mirage.Eval.Data;

namespace Mirage.Eval.Reader;

/// <summary>Settings of a reader training run.</summary>
public sealed record ReaderTrainingOptions
{
    /// <summary>Where the model (and its checkpoints) are written.</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 3000;
    /// <summary>Items per step.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 3e-3;
    /// <summary>Seed for data and weights.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>BPE merges learned for the tokenizer.</summary>
    public int Merges { get; init; } = 1000;
    /// <summary>Width of the model.</summary>
    public int Hidden { get; init; } = 128;
    /// <summary>Decoder layers.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Attention heads (each also a key/value head); by default one per 32 dimensions of <see cref="Hidden"/>.</summary>
    public int? Heads { get; init; }
    /// <summary>Held-out evaluation (and checkpoint) every this many steps.</summary>
    public int EvalEvery { get; init; } = 250;
    /// <summary>Held-out items generated at each evaluation.</summary>
    public int EvalItems { get; init; } = 50;
    /// <summary>Dtype of the forward and backward passes (bfloat16 keeps float32 master weights).</summary>
    public TorchSharp.torch.ScalarType ComputeDtype { get; init; } = TorchSharp.torch.ScalarType.Float32;
    /// <summary>Share of training items drawn as <see cref="ValueRepetition.WrongTwice"/> (see <see cref="ReaderDataShape.WrongTwiceRate"/>).</summary>
    public double WrongTwiceRate { get; init; }
    /// <summary>Share of training items whose main facts are missing and whose answer says so (see <see cref="ReaderDataShape.AbstainRate"/>).</summary>
    public double AbstainRate { get; init; }
    /// <summary>First step whose items follow <see cref="WrongTwiceRate"/>; earlier steps train on the plain mix.</summary>
    public int WrongTwiceFromStep { get; init; }
    /// <summary>Continue from the checkpoint in <see cref="OutputDirectory"/> if there is one.</summary>
    public bool Resume { get; init; } = true;
}

/// <summary>
/// Trains Mirage's reader: a small Llama that answers questions from MIRAGE-style passage blocks.
/// Tokenizer: byte-level BPE learned on generated training text (any input encodes). Data: fresh
/// generated items every step (the prompt is the default <see cref="PromptTemplate"/>, the target
/// the answer plus EOS). Progress lines report step, loss, tokens/s, ETA and held-out exact match.
/// </summary>
public static class ReaderTraining
{
    /// <summary>Runs (or resumes) training; writes progress lines to <paramref name="log"/>.</summary>
    public static void Run(ReaderTrainingOptions options, TextWriter log, CancellationToken cancellationToken = default)
    {
        var directory = options.OutputDirectory;
        Directory.CreateDirectory(directory);
        bool resuming = options.Resume && File.Exists(Path.Combine(directory, "training_state.json"));
        if (!resuming)
            log.WriteLine($"tokenizer: byte-level BPE, {options.Merges} merges, {TrainTokenizer(directory, options.Seed, options.Merges)} ids");
        var tokenizer = TextTokenizer.Load(directory);
        var trainerOptions = new TrainerOptions { LearningRate = options.LearningRate, TotalSteps = options.Steps, Seed = options.Seed, ComputeDtype = options.ComputeDtype, WarmupSteps = Math.Min(200, options.Steps / 10 + 1) };
        using var trainer = resuming ? CausalLmTrainer.Resume(directory, trainerOptions) : CausalLmTrainer.Create(Config(options, tokenizer.VocabSize, tokenizer.BosId!.Value, tokenizer.EosIds[0]), trainerOptions);
        log.WriteLine($"{(resuming ? $"resuming at step {trainer.Step}" : "new model")}: {trainer.ParameterCount:N0} parameters, vocabulary {tokenizer.VocabSize}, batch {options.BatchSize}, {options.Steps} steps, wrong-twice items {options.WrongTwiceRate:P0}{(options.WrongTwiceFromStep > 0 ? $" from step {options.WrongTwiceFromStep}" : "")}, abstaining items {options.AbstainRate:P0}, computing in {options.ComputeDtype}");

        var template = new PromptTemplate();
        var items = TrainingItems(options).Skip(trainer.Step * options.BatchSize).GetEnumerator();
        var clock = Stopwatch.StartNew();
        int startStep = trainer.Step;
        double smoothed = double.NaN;
        while (trainer.Step < options.Steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = new List<TrainingExample>();
            while (batch.Count < options.BatchSize && items.MoveNext())
                batch.Add(Example(tokenizer, template, items.Current));
            var progress = trainer.TrainStep(batch);
            smoothed = double.IsNaN(smoothed) ? progress.Loss : 0.95 * smoothed + 0.05 * progress.Loss;
            if (progress.Step % 10 == 0 || progress.Step == options.Steps)
            {
                double perStep = clock.Elapsed.TotalSeconds / (progress.Step - startStep);
                var eta = TimeSpan.FromSeconds(perStep * (options.Steps - progress.Step));
                log.WriteLine($"step {progress.Step}/{options.Steps}  loss {smoothed:F3}  {progress.TokensPerSecond:F0} tok/s  lr {progress.LearningRate:G2}  eta {eta:hh\\:mm\\:ss}");
            }
            if (progress.Step % options.EvalEvery == 0 || progress.Step == options.Steps)
            {
                trainer.Save(directory);
                var (exact, total) = Evaluate(directory, options.Seed, options.EvalItems);
                log.WriteLine($"step {progress.Step}: held-out exact match {exact}/{total} ({(double)exact / total:P0}); checkpoint saved");
            }
        }
    }

    // Training mixes easy items (one or two passages) with full-size ones: the short ones teach
    // the name-to-value lookup quickly, the long ones keep it working among distractors. Half
    // the questions ask for every attribute: more lookups per (costly) pass over the passages.
    // In half the items every distractor is a similar name stating the asked relations, so a
    // lookup by relation alone earns nothing and the value must be bound to the whole name.
    // Wrong-twice items only help once the model copies values: mixed in from step 0 they delay
    // copying by thousands of steps (see the README), hence the switch-over step. Items after it
    // are those a run resumed there with the rate would see, so one run reproduces two chained ones.
    /// <summary>The endless stream of training items for <paramref name="options"/>, the same for a seed (a resumed run skips what it has seen).</summary>
    public static IEnumerable<AlceItem> TrainingItems(ReaderTrainingOptions options)
    {
        int plainItems = options.WrongTwiceFromStep * options.BatchSize;
        return Stream(0).Take(plainItems).Concat(Stream(options.WrongTwiceRate).Skip(plainItems));

        IEnumerable<AlceItem> Stream(double wrongTwiceRate) =>
            new ReaderDataGenerator(options.Seed, DataSplit.Train, new ReaderDataShape
            {
                MinPassages = 1, AskAllAttributesRate = 0.5, SameRelationDistractorRate = 0.5, WrongTwiceRate = wrongTwiceRate, AbstainRate = options.AbstainRate,
            }).Generate(int.MaxValue);
    }

    /// <summary>A training example: the rendered prompt, then the answer and EOS as the target.</summary>
    public static TrainingExample Example(TextTokenizer tokenizer, PromptTemplate template, AlceItem item)
    {
        var prompt = tokenizer.EncodeIds(Prompt(template, item));
        var target = tokenizer.EncodeContinuation(item.Output).Select(t => t.Id).Append(tokenizer.EosIds[0]).ToArray();
        return new TrainingExample(prompt, target);
    }

    /// <summary>Greedy answers of the saved model on fresh test items: how many state every fact right.</summary>
    public static (int Exact, int Total) Evaluate(string directory, int seed, int count)
    {
        var score = Score(directory, new ReaderDataGenerator(seed + 1000, DataSplit.Test).Generate(count));
        return (score.Exact, score.Items);
    }

    /// <summary>Greedy answers of the model in <paramref name="directory"/> on <paramref name="items"/>, scored fact by fact; <paramref name="answered"/> sees each answer.</summary>
    public static ReaderScore Score(string directory, IEnumerable<AlceItem> items, Action<AlceItem, string>? answered = null)
    {
        using var model = LanguageModel.Load(directory);
        var template = new PromptTemplate();
        var score = new ReaderScore(0, 0, 0, 0, 0, 0, 0);
        foreach (var item in items)
        {
            var answer = model.Generate(Prompt(template, item), new GenerationOptions { MaxTokens = 64, StopStrings = ["\n"] }).Text;
            score = AnswerChecker.Add(score, answer, item);
            answered?.Invoke(item, answer);
        }
        return score;
    }

    /// <summary>The with-context prompt of an item, as the reader sees it in training and at inference.</summary>
    public static string Prompt(PromptTemplate template, AlceItem item) =>
        template.Render(item.Question, item.ToPassages(), withContext: true).Text;

    /// <summary>Learns the reader's byte-level BPE on generated training text and writes it to <paramref name="directory"/>; returns the vocabulary size.</summary>
    public static int TrainTokenizer(string directory, int seed, int merges)
    {
        var template = new PromptTemplate();
        var corpus = new ReaderDataGenerator(seed + 7, DataSplit.Train).Generate(2000)
            .Select(i => Prompt(template, i) + " " + i.Output);
        return TokenizerJsonWriter.WriteByteLevel(directory, ByteLevelBpeTrainer.Train(corpus, merges), ["<s>", "</s>"], "<s>", "</s>");
    }

    /// <summary>The reader's architecture for <paramref name="options"/> and a tokenizer's vocabulary and special ids.</summary>
    public static ModelConfig Config(ReaderTrainingOptions options, int vocabularySize, int bosId, int eosId)
    {
        int heads = options.Heads ?? Math.Max(1, options.Hidden / 32);
        if (heads < 1 || options.Hidden % heads != 0)
            throw new MirageException($"The model width ({options.Hidden}) must divide evenly into {heads} attention heads.");
        return ModelConfig.Parse($$"""
        {
          "architectures": ["LlamaForCausalLM"], "hidden_size": {{options.Hidden}}, "intermediate_size": {{options.Hidden * 3}},
          "num_hidden_layers": {{options.Layers}}, "num_attention_heads": {{heads}}, "num_key_value_heads": {{heads}},
          "vocab_size": {{vocabularySize}}, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000,
          "tie_word_embeddings": true, "bos_token_id": {{bosId}}, "eos_token_id": {{eosId}}
        }
        """);
    }
}
