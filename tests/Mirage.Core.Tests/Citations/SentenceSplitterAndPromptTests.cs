using Mirage.Core.Citations;

namespace Mirage.Core.Tests.Citations;

public sealed class SentenceSplitterAndPromptTests
{
    [Fact]
    public void Split_OnTerminatorsAndLineBreaks_WithOffsetsIntoTheAnswer()
    {
        const string answer = "  Paris is the capital (of France). It has 2.1 million people!\nSee \"Doc 2.\" Really?  ";
        var sentences = SentenceSplitter.Split(answer);
        Assert.Equal(["Paris is the capital (of France).", "It has 2.1 million people!", "See \"Doc 2.\"", "Really?"], sentences.Select(s => s.Text));
        Assert.All(sentences, s => Assert.Equal(s.Text, answer[s.Start..s.End]));
    }

    [Theory]
    [InlineData("Dr. Smith went to the U.S. in 1990. He stayed.", "Dr. Smith went to the U.S. in 1990.|He stayed.")]
    [InlineData("It costs 3.5 dollars. Prices rose by 2.25%. Done.", "It costs 3.5 dollars.|Prices rose by 2.25%.|Done.")]
    [InlineData("J. R. R. Tolkien wrote it. Mr. J. Smith read it.", "J. R. R. Tolkien wrote it.|Mr. J. Smith read it.")]
    [InlineData("Use tools, e.g. a hammer. It works, i.e. it is fine.", "Use tools, e.g. a hammer.|It works, i.e. it is fine.")]
    [InlineData("See No. 5 and Fig. 2 from Jan. 3. That is all.", "See No. 5 and Fig. 2 from Jan. 3.|That is all.")]
    [InlineData("Read https://example.org/a.b.html today. Then www.x.com. Next.", "Read https://example.org/a.b.html today.|Then www.x.com.|Next.")]
    [InlineData("He said \"Stop.\" Then he left. 'Why?' she asked.", "He said \"Stop.\"|Then he left.|'Why?' she asked.")]
    [InlineData("1. Buy milk.\n2. Buy bread.\n- Pay.", "1. Buy milk.|2. Buy bread.|- Pay.")]
    [InlineData("1. Buy milk. 2. Buy bread.", "1. Buy milk.|2. Buy bread.")]
    [InlineData("Wait... what happened? Nothing… Really!", "Wait... what happened?|Nothing…|Really!")]
    [InlineData("It lives in the U.S. It is big.", "It lives in the U.S.|It is big.")]
    [InlineData("The Smith et al. study found it. (See Chapter 2.) Good.", "The Smith et al. study found it.|(See Chapter 2.)|Good.")]
    [InlineData("She got a grade of A. Then she left.", "She got a grade of A.|Then she left.")]
    [InlineData("We chose Plan B. It worked.", "We chose Plan B.|It worked.")]
    [InlineData("Vitamin C. The rest was water.", "Vitamin C.|The rest was water.")]
    [InlineData("John F. Kennedy spoke. E. Smith listened.", "John F. Kennedy spoke.|E. Smith listened.")]
    [InlineData("He went to the U.S. Embassy in Paris. It was closed.", "He went to the U.S. Embassy in Paris.|It was closed.")]
    [InlineData("The U.K. Parliament met. The U.K. It is.", "The U.K. Parliament met.|The U.K.|It is.")]
    [InlineData("Am 3. Oktober 1990 kam die Einheit. Am 9. November fiel die Mauer.", "Am 3. Oktober 1990 kam die Einheit.|Am 9. November fiel die Mauer.")]
    [InlineData("He was born in 1990. Then he moved.", "He was born in 1990.|Then he moved.")]
    [InlineData("巴黎是首都。它很大！真的吗？是的", "巴黎是首都。|它很大！|真的吗？|是的")]
    [InlineData("a. Cool it. b. Serve it.", "a. Cool it.|b. Serve it.")]
    [InlineData("Steps: a) Cool it. b) Serve it.", "Steps: a) Cool it.|b) Serve it.")]
    [InlineData("It said \"go.\" a. First.", "It said \"go.\"|a. First.")]
    public void Split_KeepsAbbreviationsDecimalsInitialsUrlsAndListMarkers_WithExactOffsets(string answer, string expected)
    {
        var sentences = SentenceSplitter.Split(answer);
        Assert.Equal(expected.Split('|'), sentences.Select(s => s.Text));
        Assert.All(sentences, s => Assert.Equal(s.Text, answer[s.Start..s.End]));
    }

    [Fact]
    public void Split_TextWithoutTerminator_IsOneSentence()
    {
        Assert.Equal(["no terminator here"], SentenceSplitter.Split("no terminator here").Select(s => s.Text));
        Assert.Empty(SentenceSplitter.Split("   "));
    }

    [Fact]
    public void DefaultPrompt_IsMirageStyle_AndNoContextDropsTheBlock()
    {
        var template = new PromptTemplate();
        Passage[] passages = [new("x", "Paris", "Paris is in France."), new("y", null, "Rome is in Italy.")];
        var with = template.Render("Where is Paris?", passages, withContext: true);
        Assert.Equal(PromptTemplate.DefaultInstruction + "\n\nDocument [1](Title: Paris): Paris is in France.\nDocument [2]: Rome is in Italy.\n\nQuestion: Where is Paris?\nAnswer:", with.Text);
        Assert.Equal("Document [1](Title: Paris): Paris is in France.", with.Text[with.PassageRanges[0].Start..with.PassageRanges[0].End]);
        Assert.Equal("Document [2]: Rome is in Italy.", with.Text[with.PassageRanges[1].Start..with.PassageRanges[1].End]);
        Assert.Equal(["Paris is in France.", "Rome is in Italy."], with.PassageRanges.Select(r => with.Text[r.TextStart..r.TextEnd]));

        // The reference's rule: the block goes, the text around it stays as written.
        var without = template.Render("Where is Paris?", passages, withContext: false);
        Assert.Equal(PromptTemplate.DefaultInstruction + "\n\n\n\nQuestion: Where is Paris?\nAnswer:", without.Text);
        Assert.Empty(without.PassageRanges);
        var trimmed = (template with { NoContext = NoContextRule.Trim }).Render("Where is Paris?", passages, withContext: false);
        Assert.Equal(PromptTemplate.DefaultInstruction + "\n\nQuestion: Where is Paris?\nAnswer:", trimmed.Text);
    }

    [Fact]
    public void Placeholders_InTitlesQuestionsAndTexts_AreNeverSubstitutedAgain()
    {
        var template = new PromptTemplate { Instruction = "I {question}" };
        Passage[] passages = [new("x", "{text}{text}{index}", "body {title}"), new("y", null, "{question}")];
        var rendered = template.Render("q {passages} {text}", passages, withContext: true);
        Assert.Equal("I {question}\n\nDocument [1](Title: {text}{text}{index}): body {title}\nDocument [2]: {question}\n\nQuestion: q {passages} {text}\nAnswer:", rendered.Text);
        // A hostile title cannot multiply the prompt: its size is linear in the input.
        var body = new string('x', 100_000);
        var amplified = template.Render("q", [new("x", string.Concat(Enumerable.Repeat("{text}", 160)), body)], withContext: true);
        Assert.InRange(amplified.Text.Length, body.Length, body.Length + 2_000);
    }
}
