using Mirage.Core;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tokenization;
using Mirage.Core.Training;
using Mirage.Eval.Data;
using Mirage.Eval.Reader;
using Mirage.Tests;

namespace Mirage.Eval.Tests.Reader;

public sealed class ReaderTrainingTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void BpeTrainer_LearnsFrequentWords_AndTheTokenizerRoundTripsAnyText()
    {
        var corpus = Enumerable.Repeat("Varnholm is a city. Varnholm is old.", 20).Append("rare words once");
        var merges = ByteLevelBpeTrainer.Train(corpus, 40);
        TokenizerJsonWriter.WriteByteLevel(_temp.Path, merges, ["<s>", "</s>"], "<s>", "</s>");
        var tokenizer = TextTokenizer.Load(_temp.Path);
        Assert.Contains(tokenizer.Encode("Varnholm", addSpecialTokens: false), t => t.Piece.Length >= 4);
        foreach (var text in new[] { "Varnholm is a city.", "ünïcödé 日本語 🎉 \t\n", "" })
            Assert.Equal(text, tokenizer.Decode(tokenizer.EncodeIds(text)));
        Assert.Equal(merges, ByteLevelBpeTrainer.Train(corpus, 40)); // deterministic
    }

    [Fact]
    public void ReaderTokenizer_KeepsEveryNameWordAndValueWhole()
    {
        ReaderTraining.TrainTokenizer(_temp.Path, seed: 1, merges: new ReaderTrainingOptions { OutputDirectory = "" }.Merges);
        var tokenizer = TextTokenizer.Load(_temp.Path);
        var split = ReaderDataGenerator.SeenWords.Where(w => tokenizer.EncodeIds(" " + w, addSpecialTokens: false).Length != 1).ToList();
        Assert.True(split.Count == 0, $"split into several tokens: {string.Join(", ", split)}");
    }

    [Fact]
    public void ShortRun_LowersTheLoss_AndRoundTripsThroughSaveAndLoad()
    {
        var log = new StringWriter();
        var directory = Path.Combine(_temp.Path, "reader");
        var options = new ReaderTrainingOptions { OutputDirectory = directory, Steps = 12, BatchSize = 4, Merges = 200, Hidden = 64, Layers = 2, EvalEvery = 12, EvalItems = 2 };
        ReaderTraining.Run(options, log);
        var losses = log.ToString().Split('\n').Where(l => l.StartsWith("step ", StringComparison.Ordinal) && l.Contains("loss")).Select(l => double.Parse(l.Split("loss ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(2, losses.Count);
        Assert.True(losses[1] < losses[0], $"loss went from {losses[0]} to {losses[1]}");
        Assert.Contains("held-out exact match", log.ToString());

        // The saved folder loads through the ordinary checkpoint path, and resuming continues the step count.
        using (var model = LanguageModel.Load(directory))
        {
            Assert.Equal("LlamaForCausalLM", model.Config.Architecture);
            Assert.Equal("bpe-byte-level", model.Tokenizer.Kind);
            var example = ReaderTraining.Example(model.Tokenizer, new PromptTemplate(), new ReaderDataGenerator(3, DataSplit.Test).Generate(1).Single());
            Assert.Equal(example.Target.Length, model.ScoreContinuation(example.Prompt, example.Target).Length);
        }
        using var resumed = CausalLmTrainer.Resume(directory, new TrainerOptions());
        Assert.Equal(12, resumed.Step);

        // Without a prompt token nothing predicts the first target token; without a target nothing is learned: a clear error, no step taken.
        Assert.Throws<MirageException>(() => resumed.TrainStep([new TrainingExample([], [5, 6])]));
        Assert.Throws<MirageException>(() => resumed.TrainStep([new TrainingExample([1, 5], [])]));
        Assert.Equal(12, resumed.Step);
    }

    [Fact]
    public void Config_TakesTheHeadCount_AndRefusesOneTheWidthDoesNotDivide()
    {
        var reader = new ReaderTrainingOptions { OutputDirectory = _temp.Path, Hidden = 128 };
        var standard = ReaderTraining.Config(reader, 300, 298, 299);
        Assert.Equal((4, 32), (standard.NumHeads, standard.HeadDim));
        var wide = ReaderTraining.Config(reader with { Heads = 2 }, 300, 298, 299);
        Assert.Equal((2, 2, 64), (wide.NumHeads, wide.NumKeyValueHeads, wide.HeadDim));
        var error = Assert.Throws<MirageException>(() => ReaderTraining.Config(reader with { Heads = 3 }, 300, 298, 299));
        Assert.Contains("3 attention heads", error.Message);
    }

    [Fact]
    public void AnswerChecker_NeedsEveryFactInOneSentence()
    {
        var item = new ReaderDataGenerator(1, DataSplit.Test).Generate(10).First(i => i.Facts!.OfType<Fact>().Count() == 2);
        Assert.True(AnswerChecker.StatesAllFacts(item.Output, item));
        var facts = item.Facts!.OfType<Fact>().ToList();
        Assert.False(AnswerChecker.StatesAllFacts(item.Output.Replace(facts[1].Value, "Nowhere"), item));
    }
}
