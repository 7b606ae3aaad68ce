using System.CommandLine;
using Mirage.Core.Models;
using Mirage.Eval.Reader;

namespace Mirage.Eval.Cli;

/// <summary><c>mirage-eval train-reader</c>: train the small reader model on generated data (resumable).</summary>
internal static class TrainReaderCommand
{
    public static Command Create(TextWriter output)
    {
        var directory = new Option<string>("--out") { Description = "Output folder (a Hugging Face checkpoint; resumed if it holds one).", Required = true };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => 3000 };
        var batch = new Option<int>("--batch") { Description = "Items per step.", DefaultValueFactory = _ => 16 };
        var rate = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 3e-3 };
        var seed = new Option<int>("--seed") { Description = "Seed for data and weights.", DefaultValueFactory = _ => 1 };
        var hidden = new Option<int>("--hidden") { Description = "Model width.", DefaultValueFactory = _ => 128 };
        var layers = new Option<int>("--layers") { Description = "Decoder layers.", DefaultValueFactory = _ => 2 };
        var heads = new Option<int?>("--heads") { Description = "Attention heads; the width must divide evenly into them (default: one per 32 dimensions)." };
        heads.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--heads must be at least 1."); });
        var merges = new Option<int>("--merges") { Description = "BPE merges for the tokenizer.", DefaultValueFactory = _ => 1000 };
        var evalEvery = new Option<int>("--eval-every") { Description = "Held-out evaluation and checkpoint interval (steps).", DefaultValueFactory = _ => 250 };
        var evalItems = new Option<int>("--eval-items") { Description = "Held-out items per evaluation.", DefaultValueFactory = _ => 50 };
        var dtype = new Option<string>("--dtype") { Description = "Compute dtype: float32, or bfloat16 (float32 master weights; faster matmuls on CPUs with AVX512-BF16, attention no faster: see the README).", DefaultValueFactory = _ => "float32" };
        dtype.AcceptOnlyFromAmong("float32", "bfloat16");
        var wrongTwice = new Option<double>("--wrong-twice-rate") { Description = "Share of training items where a wrong value occurs twice and the right one once, so counting occurrences stops paying (0 to 1).", DefaultValueFactory = _ => 0 };
        wrongTwice.Validators.Add(r => { if (r.GetValueOrDefault<double>() is < 0 or > 1) r.AddError("--wrong-twice-rate must be between 0 and 1."); });
        var wrongTwiceFrom = new Option<int>("--wrong-twice-from") { Description = "First step that draws --wrong-twice-rate items; earlier steps train on the plain mix (the model learns to copy values first).", DefaultValueFactory = _ => 0 };
        wrongTwiceFrom.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--wrong-twice-from must be 0 or more."); });
        var abstain = new Option<double>("--abstain-rate") { Description = "Share of training items whose asked entity's facts are missing and whose answer says so, so taking the only value in sight stops paying (0 to 1).", DefaultValueFactory = _ => 0 };
        abstain.Validators.Add(r => { if (r.GetValueOrDefault<double>() is < 0 or > 1) r.AddError("--abstain-rate must be between 0 and 1."); });
        var fresh = new Option<bool>("--fresh") { Description = "Start over even if --out holds a checkpoint." };
        foreach (var positive in new[] { steps, batch, hidden, layers, evalEvery, evalItems })
            positive.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError($"{r.Option.Name} must be at least 1."); });

        var command = new Command("train-reader", "Train Mirage's small reader model on generated passages and questions.");
        foreach (var option in new Option[] { directory, steps, batch, rate, seed, hidden, layers, heads, merges, evalEvery, evalItems, dtype, wrongTwice, wrongTwiceFrom, abstain, fresh })
            command.Options.Add(option);
        command.SetAction((parse, cancellationToken) =>
        {
            ReaderTraining.Run(new ReaderTrainingOptions
            {
                OutputDirectory = parse.GetRequiredValue(directory),
                Steps = parse.GetValue(steps),
                BatchSize = parse.GetValue(batch),
                LearningRate = parse.GetValue(rate),
                Seed = parse.GetValue(seed),
                Hidden = parse.GetValue(hidden),
                Layers = parse.GetValue(layers),
                Heads = parse.GetValue(heads),
                Merges = parse.GetValue(merges),
                EvalEvery = parse.GetValue(evalEvery),
                EvalItems = parse.GetValue(evalItems),
                ComputeDtype = ComputeOptions.ParseDType(parse.GetValue(dtype)!) ?? TorchSharp.torch.ScalarType.Float32,
                WrongTwiceRate = parse.GetValue(wrongTwice),
                WrongTwiceFromStep = parse.GetValue(wrongTwiceFrom),
                AbstainRate = parse.GetValue(abstain),
                Resume = !parse.GetValue(fresh),
            }, output, cancellationToken);
            return Task.FromResult(0);
        });
        return command;
    }
}
