using Mirage.Core.Flow;
using Mirage.Core.Models.Safetensors;
using Mirage.Core.Tests.Models;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Flow;

/// <summary>The logit lens reads the model's own distribution at the last layer, and promotions are plain dot products.</summary>
public sealed class LogitLensTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("LlamaForCausalLM", "")]
    [InlineData("Gemma2ForCausalLM", ", \"attn_logit_softcapping\": 5.0, \"final_logit_softcapping\": 3.0, \"query_pre_attn_scalar\": 8")]
    public void TheLastLayersLens_IsTheModelsNextTokenDistribution(string architecture, string extra)
    {
        var config = TinyCheckpoint.FamilyConfig(architecture, extra);
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        int[] ids = TinyCheckpoint.RandomIds(7, 2);
        var logits = TinyCheckpoint.Logits(model, ids);

        var readings = LogitLens.AcrossLayers(model, ids, position: 4, k: 5);

        Assert.Equal(["A0_4", "I0_4", "A1_4", "I1_4"], readings.Select(r => r.Node));
        var row = Enumerable.Range(0, config.VocabSize).Select(v => logits[4, v]).ToArray();
        double max = row.Max(), sum = row.Sum(z => Math.Exp(z - max));
        var expected = row.Select((z, v) => (Id: v, P: Math.Exp(z - max) / sum)).OrderByDescending(p => p.P).Take(5).ToList();
        Assert.Equal(expected.Select(p => p.Id), readings[^1].Top.Select(t => t.Id));
        for (int i = 0; i < 5; i++)
            Assert.Equal(expected[i].P, readings[^1].Top[i].Value, 1e-12);
        // An earlier block reads differently: the lens shows the prediction forming.
        Assert.NotEqual(readings[0].Top.Select(t => t.Value), readings[^1].Top.Select(t => t.Value));
    }

    [Fact]
    public void WhatAVectorPromotes_IsItsDotProductWithEachUnembeddingRow()
    {
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        using var model = TinyCheckpoint.Load(directory);
        var vector = Enumerable.Range(0, 32).Select(i => Math.Sin(i * 1.7)).ToArray();

        var promotions = LogitLens.Promote(model, tensor(vector), k: 3);

        using var file = SafetensorsFile.Open(Path.Combine(directory, "model.safetensors"));
        var rows = file.Read(file.Tensors.ContainsKey("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight", ScalarType.Float64).data<double>().ToArray();
        var scores = Enumerable.Range(0, 264).Select(v => (Id: v, Score: Enumerable.Range(0, 32).Sum(c => rows[v * 32 + c] * vector[c]))).ToList();
        Assert.Equal(scores.OrderByDescending(s => s.Score).Take(3).Select(s => s.Id), promotions.Promoted.Select(t => t.Id));
        Assert.Equal(scores.OrderBy(s => s.Score).Take(3).Select(s => s.Id), promotions.Suppressed.Select(t => t.Id));
        Assert.Equal(scores.Max(s => s.Score), promotions.Promoted[0].Value, 1e-12);
    }
}
