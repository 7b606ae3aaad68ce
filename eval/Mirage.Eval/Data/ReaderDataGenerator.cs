using System.Text;

namespace Mirage.Eval.Data;

/// <summary>Which part of the data an item belongs to.</summary>
public enum DataSplit
{
    /// <summary>Items the reader trains on.</summary>
    Train,
    /// <summary>Held-out items, with entities that never occur in training.</summary>
    Test,
}

/// <summary>Shape of generated items.</summary>
public sealed record ReaderDataShape
{
    /// <summary>Fewest passages per item (fact passages always stay, so small items may have more).</summary>
    public int MinPassages { get; init; } = 3;
    /// <summary>Most passages per item.</summary>
    public int MaxPassages { get; init; } = 6;
    /// <summary>
    /// Test items whose cities come from a held-out pool that no training item (and no tokenizer
    /// corpus) ever contains; every such item asks for a city. Flagged <c>unseen_values</c>.
    /// </summary>
    public bool UnseenValues { get; init; }

    /// <summary>
    /// Share of items whose question asks for every attribute of its entity (2-4 facts instead of
    /// 1-2): denser supervision for training, where each answer sentence is one more lookup to
    /// learn from at little extra cost. Test items keep the default 0.
    /// </summary>
    public double AskAllAttributesRate { get; init; }

    /// <summary>
    /// Share of items whose distractors are all similar names stating the asked attributes with
    /// other values, so looking a value up by its relation alone is right only by chance and the
    /// reader must bind it to the whole name. A training setting; test items keep the default 0.
    /// </summary>
    public double SameRelationDistractorRate { get; init; }

    /// <summary>Where asked values repeat; a probe of whether a reader binds values to names or counts them.</summary>
    public ValueRepetition Repetition { get; init; }

    /// <summary>
    /// Share of items drawn as <see cref="ValueRepetition.WrongTwice"/> whatever <see cref="Repetition"/>
    /// says. A training setting: as drawn, the value that occurs twice is nearly always the answer,
    /// and a reader learns to count; mixed with these items, counting loses and only binding a value
    /// to its whole name is always right. Test items keep the default 0.
    /// </summary>
    public double WrongTwiceRate { get; init; }

    /// <summary>
    /// Share of items whose main entity's facts are missing: its fact passage is left out, a passage
    /// of its own article that names it beside another entity stating the first asked value stays,
    /// and the answer says, per asked fact, that the passages do not say it. A training setting: as
    /// drawn, an answer always stands in the passages, and a reader learns to take the only value of
    /// the asked kind, whoever it belongs to. Test items keep the default 0.
    /// </summary>
    public double AbstainRate { get; init; }
}

/// <summary>Where an item's asked values occur besides their fact passages.</summary>
public enum ValueRepetition
{
    /// <summary>As drawn: a lexical trap repeats the first asked value in half the items, and a second copy of its fact in a fifth.</summary>
    AsDrawn,
    /// <summary>Every asked value occurs only in the passages that state its fact.</summary>
    GoldOnce,
    /// <summary>As <see cref="GoldOnce"/>, and one wrong value of the first asked relation (the similar name's) occurs twice: one more entity states it.</summary>
    WrongTwice,
}

/// <summary>
/// Generates reading-comprehension items about invented people and organisations, with exact gold
/// provenance, deterministically from a seed.
/// Design choices (recorded): names and values are drawn from fixed pools of invented words that
/// both splits share (so each is a familiar token to the reader), but whole entity names are split
/// by a hash, so no test entity is ever the subject of a training sentence, and hence no test fact
/// (which value belongs to which entity) occurs in training. A test organisation's name can occur
/// in training only as a value: some training person's employer. Accuracy on values never seen at
/// all is measured on a separate <see cref="ReaderDataShape.UnseenValues"/> set whose cities come
/// from a held-out pool.
/// </summary>
public sealed class ReaderDataGenerator
{
    private static readonly string[] Onsets = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s", "st", "t", "tr", "v", "z"];
    private static readonly string[] Vowels = ["a", "e", "i", "o", "u", "ai", "ei", "ou"];
    private static readonly string[] Codas = ["", "n", "r", "l", "s", "th", "m", "k"];
    private static readonly string[] OrgSuffixes = ["Labs", "Works", "Group", "Partners", "Foundry", "Systems"];
    private static readonly string[] Professions = ["baker", "pilot", "nurse", "teacher", "farmer", "painter", "chemist", "lawyer", "tailor", "sailor", "carpenter", "librarian", "dentist", "plumber", "architect", "poet", "surgeon", "jeweler", "miner", "weaver"];
    private static readonly string[] Industries = ["shipping", "textiles", "mining", "banking", "farming", "printing", "software", "brewing", "glassmaking", "publishing", "fishing", "insurance"];
    private static readonly string[] Fillers = ["I hope this helps.", "Let me know if you need more details.", "That is all the documents say."];

    // Word pools from a fixed seed, disjoint from each other, the same for every generator.
    private static readonly Pools Words = Pools.Create();

    private readonly Random _random;
    private readonly DataSplit _split;
    private readonly ReaderDataShape _shape;
    // Entity names already in the current item: each entity appears once.
    private readonly HashSet<string> _names = [];

    /// <summary>A generator for one split; the same seed, split and shape always give the same items.</summary>
    public ReaderDataGenerator(int seed, DataSplit split, ReaderDataShape? shape = null)
    {
        _shape = shape ?? new ReaderDataShape();
        if (_shape.MinPassages < 1 || _shape.MaxPassages < _shape.MinPassages)
            throw new ArgumentException($"Passages per item must satisfy 1 <= min <= max (got {_shape.MinPassages}..{_shape.MaxPassages}).", nameof(shape));
        if (_shape.AskAllAttributesRate is < 0 or > 1)
            throw new ArgumentException($"AskAllAttributesRate must be in [0, 1] (got {_shape.AskAllAttributesRate}).", nameof(shape));
        if (_shape.WrongTwiceRate is < 0 or > 1)
            throw new ArgumentException($"WrongTwiceRate must be in [0, 1] (got {_shape.WrongTwiceRate}).", nameof(shape));
        if (_shape.AbstainRate is < 0 or > 1)
            throw new ArgumentException($"AbstainRate must be in [0, 1] (got {_shape.AbstainRate}).", nameof(shape));
        if (_shape.UnseenValues && split == DataSplit.Train)
            throw new ArgumentException("Never-seen values are for test items only.", nameof(shape));
        // A fixed mix, not HashCode.Combine: that one is seeded per process, and items must repeat across runs.
        _random = new Random((int)(((uint)seed * 2654435761u) ^ (split == DataSplit.Train ? 17u : 29u) ^ (_shape.UnseenValues ? 0x5bd1e995u : 0u)) & int.MaxValue);
        _split = split;
    }

    private sealed record Pools(string[] FirstNames, string[] Surnames, string[] OrgWords, string[] Cities, string[] UnseenCities)
    {
        public static Pools Create()
        {
            var random = new Random(7);
            var used = new HashSet<string>();
            string[] Take(int count, Func<string> make)
            {
                var words = new List<string>();
                while (words.Count < count)
                {
                    var word = make();
                    if (used.Add(word))
                        words.Add(word);
                }
                return words.ToArray();
            }
            string City() => Capitalize(Word(random, 2)) + random.Next(4) switch { 0 => "holm", 1 => "ford", 2 => "mouth", _ => "ton" };
            return new Pools(
                Take(40, () => Capitalize(Word(random, 2))),
                Take(60, () => Capitalize(Word(random, 2))),
                Take(40, () => Capitalize(Word(random, 2))),
                Take(40, City),
                Take(12, City));
        }
    }

    /// <summary>Every name word and value a training item can contain (the reader's tokenizer keeps each whole).</summary>
    public static IReadOnlyList<string> SeenWords { get; } =
        [.. Words.FirstNames, .. Words.Surnames, .. Words.OrgWords, .. Words.Cities, .. OrgSuffixes, .. Professions, .. Industries];

    /// <summary>True when <paramref name="name"/> belongs to the test split's entities.</summary>
    public static bool IsTestName(string name)
    {
        uint hash = 2166136261;
        foreach (char c in name)
            hash = (hash ^ c) * 16777619;
        return hash % 10 == 0;
    }

    /// <summary>The items, numbered from 0, <paramref name="count"/> of them.</summary>
    public IEnumerable<AlceItem> Generate(int count)
    {
        for (int i = 0; i < count; i++)
            yield return Item(i);
    }

    private sealed record Entity(string Name, bool IsPerson, Dictionary<string, string> Attributes);

    private AlceItem Item(int index)
    {
        // Drawn only when enabled, so items stay as they were for a seed.
        var repetition = _shape.WrongTwiceRate > 0 && _random.NextDouble() < _shape.WrongTwiceRate ? ValueRepetition.WrongTwice : _shape.Repetition;
        // Repetition-controlled items are redrawn in the rare case that a distractor repeats an asked value by chance.
        while (true)
        {
            var item = Draw(index, repetition);
            if (repetition == ValueRepetition.AsDrawn || AskedValuesOnlyInGold(item))
                return item;
        }
    }

    private static bool AskedValuesOnlyInGold(AlceItem item) =>
        item.Facts!.Zip(item.GoldCitations!).All(pair => pair.First is not { } fact
            || Enumerable.Range(0, item.Docs.Count).Where(d => item.Docs[d].Text.Contains(fact.Value, StringComparison.Ordinal)).All(d => pair.Second.Contains(d)));

    private AlceItem Draw(int index, ValueRepetition repetition)
    {
        _names.Clear();
        // Drawn only when enabled, so items of the default shape stay as they were for a seed.
        bool abstain = _shape.AbstainRate > 0 && _random.NextDouble() < _shape.AbstainRate;
        bool repeatsAsDrawn = repetition == ValueRepetition.AsDrawn;
        bool unseen = _shape.UnseenValues;
        var main = NewEntity(person: _random.NextDouble() < 0.7);
        var second = _random.NextDouble() < 0.25 ? NewEntity(main.IsPerson) : null;

        // What is asked: one or two attributes of the main entity, or one attribute of two entities.
        // Never-seen-value items always ask for the city, the attribute whose values are held out.
        int count = _random.NextDouble() < _shape.AskAllAttributesRate ? main.Attributes.Count : second is null && _random.NextDouble() < 0.4 ? 2 : 1;
        var attributes = main.Attributes.Keys.OrderBy(a => unseen && a == "city" ? -1 : _random.Next()).Take(count).ToList();
        var asked = attributes.Select(a => (Entity: main, Attribute: a)).ToList();
        if (second is not null)
            asked.Add((second, attributes[0]));

        // Passages: one per asked entity holding its facts, sometimes a second copy of a fact,
        // then hard distractors: a similar name with other values, and a passage that mentions
        // the entity without the fact.
        var passages = new List<(string Title, List<string> Sentences)>();
        if (!abstain)
            passages.Add((main.Name, FactSentences(main, attributes)));
        if (second is not null)
            passages.Add((second.Name, FactSentences(second, [attributes[0]])));
        if (!abstain && _random.NextDouble() < 0.2 && repeatsAsDrawn)
            passages.Add(($"Notes on {main.Name}", [$"A local report covers {main.Name}.", Sentence(main, attributes[0])]));
        var similar = Similar(main);
        // Drawn only when enabled, so items of the default shape stay as they were for a seed.
        bool sameRelation = _shape.SameRelationDistractorRate > 0 && _random.NextDouble() < _shape.SameRelationDistractorRate;
        // The mentioning passage names the entity but holds none of its facts. Half the time it is
        // also a lexical trap: another chunk of the entity's own article (so the same title, as
        // chunked Wikipedia passages have) where another entity of the same kind shares the asked
        // value; it holds the entity's name and the value, only in different sentences.
        bool trap = abstain || _random.NextDouble() < 0.5;
        Entity other;
        do
            other = NewEntity(person: !trap || main.IsPerson);
        while (other.Attributes.Any(a => main.Attributes.ContainsValue(a.Value)));
        if (trap && repeatsAsDrawn)
            other.Attributes[attributes[0]] = main.Attributes[attributes[0]];
        var mention = other.IsPerson && main.IsPerson ? $"{other.Name} once met {main.Name} at a market." : $"{other.Name} once worked with {main.Name}.";
        var stated = Sentence(other, trap ? attributes[0] : other.IsPerson ? "profession" : "industry");
        bool wrongTwice = repetition == ValueRepetition.WrongTwice;
        var similarAttributes = sameRelation ? attributes : similar.Attributes.Keys.OrderBy(_ => _random.Next()).Take(2 + _random.Next(2)).ToList();
        if (wrongTwice && !similarAttributes.Contains(attributes[0]))
            similarAttributes = [attributes[0], .. similarAttributes.Take(similarAttributes.Count - 1)];
        var distractors = new List<(string Title, List<string> Sentences)>
        {
            (similar.Name, FactSentences(similar, similarAttributes)),
            (trap ? main.Name : other.Name, _random.Next(2) == 0 ? [mention, stated] : [stated, mention]),
        };
        if (abstain)
            distractors.Reverse(); // the trap is what an abstaining item is about: it always stays
        if (wrongTwice)
        {
            // The decoy: one more entity of the same kind, stating the similar name's value, so a wrong value occurs twice.
            var decoy = NewEntity(main.IsPerson);
            decoy.Attributes[attributes[0]] = similar.Attributes[attributes[0]];
            passages.Add((decoy.Name, [Sentence(decoy, attributes[0])]));
        }
        int total = _shape.MinPassages + _random.Next(_shape.MaxPassages - _shape.MinPassages + 1);
        while (passages.Count + distractors.Count < total)
        {
            var extra = sameRelation ? Similar(main) : NewEntity(_random.NextDouble() < 0.5);
            distractors.Add((extra.Name, FactSentences(extra, sameRelation ? attributes : extra.Attributes.Keys.OrderBy(_ => _random.Next()).Take(2).ToList())));
        }
        // Fact passages always stay; items of three or more passages (and decoy items) always carry the
        // similar name, abstaining items their trap.
        passages.AddRange(distractors.Take(Math.Max(total >= 3 || wrongTwice || abstain ? 1 : 0, total - passages.Count)));
        passages = passages.OrderBy(_ => _random.Next()).ToList();

        var answer = new List<string>();
        var gold = new List<int[]>();
        var facts = new List<Fact?>();
        foreach (var (entity, attribute) in asked)
        {
            if (abstain && entity == main)
            {
                answer.Add(Unstated(entity, attribute));
                gold.Add([]);
                facts.Add(null);
                continue;
            }
            var sentence = Sentence(entity, attribute);
            answer.Add(sentence);
            gold.Add(Enumerable.Range(0, passages.Count).Where(p => passages[p].Sentences.Contains(sentence)).ToArray());
            facts.Add(new Fact(entity.Name, attribute, entity.Attributes[attribute]));
        }
        if (_random.NextDouble() < 0.3)
        {
            answer.Add(Fillers[_random.Next(Fillers.Length)]);
            gold.Add([]);
            facts.Add(null);
        }

        var docs = passages.Select(p => new AlceDoc(p.Title, string.Join(" ", p.Sentences))).ToList();
        var prefix = _split == DataSplit.Train ? "train" : unseen ? "unseen" : "test";
        return new AlceItem($"{prefix}-{index:D6}", Question(asked), docs, string.Join(" ", answer), gold, facts, unseen);
    }

    private List<string> FactSentences(Entity entity, IReadOnlyList<string> attributes)
    {
        var sentences = attributes.Select(a => Sentence(entity, a)).ToList();
        if (_random.NextDouble() < 0.5)
            sentences.Insert(_random.Next(sentences.Count + 1), Filler(entity));
        return sentences;
    }

    private string Filler(Entity entity) => _random.Next(3) switch
    {
        0 => $"{entity.Name} is well known in the region.",
        1 => $"Many people have heard of {entity.Name}.",
        _ => $"{entity.Name} has a long history.",
    };

    private static string Sentence(Entity entity, string attribute) => (entity.IsPerson, attribute) switch
    {
        (true, "city") => $"{entity.Name} was born in {entity.Attributes[attribute]}.",
        (true, "profession") => $"{entity.Name} works as {Article(entity.Attributes[attribute])} {entity.Attributes[attribute]}.",
        (true, _) => $"{entity.Name} works for {entity.Attributes[attribute]}.",
        (false, "city") => $"{entity.Name} is based in {entity.Attributes[attribute]}.",
        (false, _) => $"{entity.Name} is in the {entity.Attributes[attribute]} industry.",
    };

    private static string Unstated(Entity entity, string attribute) => "The passages do not say " + (entity.IsPerson, attribute) switch
    {
        (true, "city") => $"where {entity.Name} was born.",
        (true, "profession") => $"what {entity.Name} does for a living.",
        (true, _) => $"which organisation {entity.Name} works for.",
        (false, "city") => $"where {entity.Name} is based.",
        (false, _) => $"what industry {entity.Name} is in.",
    };

    // The relations Sentence writes, read back: entity, relation phrase, value (and the industry suffix).
    private static readonly System.Text.RegularExpressions.Regex FactSentence = new(
        @"^(?<entity>.+?) (?:(?<city>was born in|is based in) (?<value>.+)|works as an? (?<profession>.+)|works for (?<employer>.+)|is in the (?<industry>.+) industry)\.$",
        System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>
    /// The fact a sentence of the generator's form states (its entity, attribute and value), or null
    /// for any other sentence: how a generated answer's sentence is matched to the passages stating its value.
    /// </summary>
    public static Fact? ReadFact(string sentence)
    {
        var match = FactSentence.Match(sentence.Trim());
        if (!match.Success)
            return null;
        foreach (var attribute in new[] { "city", "profession", "employer", "industry" })
        {
            if (match.Groups[attribute].Success)
                return new Fact(match.Groups["entity"].Value, attribute, attribute == "city" ? match.Groups["value"].Value : match.Groups[attribute].Value);
        }
        return null;
    }

    private static string Article(string noun) => "aeiou".Contains(noun[0]) ? "an" : "a";

    private static string Question(IReadOnlyList<(Entity Entity, string Attribute)> asked)
    {
        string Ask((Entity Entity, string Attribute) a) => (a.Entity.IsPerson, a.Attribute) switch
        {
            (true, "city") => $"where was {a.Entity.Name} born",
            (true, "profession") => $"what does {a.Entity.Name} do for a living",
            (true, _) => $"which organisation does {a.Entity.Name} work for",
            (false, "city") => $"where is {a.Entity.Name} based",
            (false, _) => $"what industry is {a.Entity.Name} in",
        };
        var text = string.Join(", and ", asked.Select(Ask)) + "?";
        return char.ToUpperInvariant(text[0]) + text[1..];
    }

    private Entity NewEntity(bool person)
    {
        string name;
        do
            name = SplitName(() => person ? $"{Pick(Words.FirstNames)} {Pick(Words.Surnames)}" : OrgName());
        while (!_names.Add(name));
        return new Entity(name, person, Attributes(person));
    }

    // Entity names obey the split: a test entity is never a training one.
    private string SplitName(Func<string> make)
    {
        string name;
        do
            name = make();
        while (IsTestName(name) != (_split == DataSplit.Test));
        return name;
    }

    private string OrgName() => $"{Pick(Words.OrgWords)} {Pick(OrgSuffixes)}";

    private Dictionary<string, string> Attributes(bool person)
    {
        var attributes = new Dictionary<string, string> { ["city"] = Pick(_shape.UnseenValues ? Words.UnseenCities : Words.Cities) };
        if (person)
        {
            attributes["profession"] = Pick(Professions);
            // Test employers are test-split organisations (never entities in training); training
            // employers range over every organisation name, so each employer a test item states is
            // a familiar value, as every city is. With training employers split too, the reader
            // learned the training word pairs as its prior and miswrote test pairs it was copying:
            // "Cimgun Labs", alone in the passages, came out as "Cimgun Foundry".
            attributes["employer"] = _split == DataSplit.Train ? OrgName() : SplitName(OrgName);
        }
        else
        {
            attributes["industry"] = Pick(Industries);
        }
        return attributes;
    }

    // A hard distractor: a name sharing one of its two words (same first name or surname; same
    // organisation word or suffix), the same attribute types, every value different. Variants are
    // tried in random order, those of the item's split first; a distractor from the other split
    // is harmless (its facts are never asked), and some test names have no in-split variant.
    private Entity Similar(Entity entity)
    {
        var words = entity.Name.Split(' ');
        var (firsts, seconds) = entity.IsPerson ? (Words.FirstNames, Words.Surnames) : (Words.OrgWords, OrgSuffixes);
        var variants = seconds.Where(w => w != words[1]).Select(w => $"{words[0]} {w}")
            .Concat(firsts.Where(w => w != words[0]).Select(w => $"{w} {words[1]}"))
            .OrderBy(name => IsTestName(name) == (_split == DataSplit.Test) ? 0 : 1)
            .ThenBy(_ => _random.Next())
            .Where(name => !_names.Contains(name));
        foreach (var name in variants)
        {
            for (int attempt = 0; attempt < 20; attempt++)
            {
                var attributes = Attributes(entity.IsPerson);
                if (!attributes.Any(a => entity.Attributes[a.Key] == a.Value))
                {
                    _names.Add(name);
                    return new Entity(name, entity.IsPerson, attributes);
                }
            }
        }
        throw new InvalidOperationException($"No similar name to '{entity.Name}' is free in this item.");
    }

    private string Pick(string[] pool) => pool[_random.Next(pool.Length)];

    private static string Word(Random random, int syllables)
    {
        var word = new StringBuilder();
        for (int s = 0; s < syllables; s++)
            word.Append(Onsets[random.Next(Onsets.Length)]).Append(Vowels[random.Next(Vowels.Length)]).Append(Codas[random.Next(Codas.Length)]);
        return word.ToString();
    }

    private static string Capitalize(string word) => char.ToUpperInvariant(word[0]) + word[1..];
}
