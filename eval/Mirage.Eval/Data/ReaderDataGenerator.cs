using System.Text;

namespace Mirage.Eval.Data;

/// <summary>Which part of the data an item belongs to.</summary>
public enum DataSplit { Train, Test }

/// <summary>
/// Generates reading-comprehension items about invented people and organisations, with exact gold
/// provenance, deterministically from a seed.
/// Design choices (recorded): entity names are split by a hash of the name, so no test entity, and
/// hence no test fact, ever occurs in training; value strings (cities, professions, industries)
/// are shared between splits, except a held-out fifth of the cities that only test items use
/// (flagged <c>unseen_values</c>), so accuracy on never-seen values can be reported separately.
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

    private readonly Random _random;
    private readonly DataSplit _split;
    private readonly string[] _cities;
    private readonly string[] _unseenCities;

    /// <summary>A generator for one split; the same seed and split always give the same items.</summary>
    public ReaderDataGenerator(int seed, DataSplit split)
    {
        _random = new Random(HashCode.Combine(seed, split == DataSplit.Train ? 17 : 29) & int.MaxValue);
        _split = split;
        // Cities come from a fixed-seed pool so both splits share them; the last fifth is test-only.
        var pool = new Random(7);
        var cities = Enumerable.Range(0, 50).Select(_ => Capitalize(Word(pool, 2)) + pool.Next(4) switch { 0 => "holm", 1 => "ford", 2 => "mouth", _ => "ton" })
            .Distinct().ToArray();
        _cities = cities[..(cities.Length * 4 / 5)];
        _unseenCities = cities[(cities.Length * 4 / 5)..];
    }

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
        bool unseen = _split == DataSplit.Test && _random.NextDouble() < 0.25;
        var main = NewEntity(person: _random.NextDouble() < 0.7, unseen);
        var second = _random.NextDouble() < 0.25 ? NewEntity(main.IsPerson, unseen) : null;

        // What is asked: one or two attributes of the main entity, or one attribute of two entities.
        var attributes = main.Attributes.Keys.OrderBy(_ => _random.Next()).Take(second is null && _random.NextDouble() < 0.4 ? 2 : 1).ToList();
        var asked = attributes.Select(a => (Entity: main, Attribute: a)).ToList();
        if (second is not null)
            asked.Add((second, attributes[0]));

        // Passages: one per asked entity holding its facts, sometimes a second copy of a fact,
        // then hard distractors: a similar name with other values, and a passage that mentions
        // the entity without the fact.
        var passages = new List<(string Title, List<string> Sentences)>
        {
            (main.Name, FactSentences(main, attributes)),
        };
        if (second is not null)
            passages.Add((second.Name, FactSentences(second, [attributes[0]])));
        if (_random.NextDouble() < 0.2)
            passages.Add(($"Notes on {main.Name}", [Sentence(main, attributes[0]), Filler(main)]));
        var similar = Similar(main, unseen);
        // The mentioning passage must not pair the entity's name with one of its values.
        Entity other;
        do
            other = NewEntity(person: true, unseen);
        while (other.Attributes.Any(a => main.Attributes.ContainsValue(a.Value)));
        var distractors = new List<(string Title, List<string> Sentences)>
        {
            (similar.Name, FactSentences(similar, similar.Attributes.Keys.OrderBy(_ => _random.Next()).Take(2 + _random.Next(2)).ToList())),
            (other.Name, [$"{other.Name} once met {main.Name} at a market.", Sentence(other, "profession")]),
        };
        int total = 3 + _random.Next(4);
        while (passages.Count + distractors.Count < total)
        {
            var extra = NewEntity(_random.NextDouble() < 0.5, unseen);
            distractors.Add((extra.Name, FactSentences(extra, extra.Attributes.Keys.OrderBy(_ => _random.Next()).Take(2).ToList())));
        }
        // Fact passages always stay; the similar-name distractor always comes along.
        passages.AddRange(distractors.Take(Math.Max(1, total - passages.Count)));
        passages = passages.OrderBy(_ => _random.Next()).ToList();

        var answer = new List<string>();
        var gold = new List<int[]>();
        var facts = new List<Fact?>();
        foreach (var (entity, attribute) in asked)
        {
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
        var prefix = _split == DataSplit.Train ? "train" : "test";
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
        (true, "profession") => $"{entity.Name} works as a {entity.Attributes[attribute]}.",
        (true, _) => $"{entity.Name} works for {entity.Attributes[attribute]}.",
        (false, "city") => $"{entity.Name} is based in {entity.Attributes[attribute]}.",
        (false, _) => $"{entity.Name} is in the {entity.Attributes[attribute]} industry.",
    };

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

    private Entity NewEntity(bool person, bool unseen)
    {
        string name;
        do
            name = person ? $"{Capitalize(Word(_random, 2))} {Capitalize(Word(_random, 2))}" : $"{Capitalize(Word(_random, 2))} {OrgSuffixes[_random.Next(OrgSuffixes.Length)]}";
        while (IsTestName(name) != (_split == DataSplit.Test));
        return new Entity(name, person, Attributes(person, unseen));
    }

    private Dictionary<string, string> Attributes(bool person, bool unseen)
    {
        var cities = unseen ? _unseenCities : _cities;
        var attributes = new Dictionary<string, string> { ["city"] = cities[_random.Next(cities.Length)] };
        if (person)
        {
            attributes["profession"] = Professions[_random.Next(Professions.Length)];
            attributes["employer"] = $"{Capitalize(Word(_random, 2))} {OrgSuffixes[_random.Next(OrgSuffixes.Length)]}";
        }
        else
        {
            attributes["industry"] = Industries[_random.Next(Industries.Length)];
        }
        return attributes;
    }

    // A hard distractor: a name one letter away, the same attribute types, every value different.
    // Any lower-case letter of the name may change, so some variant always falls in the right split.
    private Entity Similar(Entity entity, bool unseen)
    {
        for (int attempt = 0; attempt < 10_000; attempt++)
        {
            var chars = entity.Name.ToCharArray();
            int at = 1 + _random.Next(chars.Length - 1);
            if (!char.IsLower(chars[at]))
                continue;
            chars[at] = (char)('a' + _random.Next(26));
            var candidate = new Entity(new string(chars), entity.IsPerson, Attributes(entity.IsPerson, unseen));
            if (candidate.Name != entity.Name && !candidate.Attributes.Any(a => entity.Attributes[a.Key] == a.Value)
                && IsTestName(candidate.Name) == (_split == DataSplit.Test))
                return candidate;
        }
        throw new InvalidOperationException($"No one-letter variant of '{entity.Name}' fits the {_split} split.");
    }

    private static string Word(Random random, int syllables)
    {
        var word = new StringBuilder();
        for (int s = 0; s < syllables; s++)
            word.Append(Onsets[random.Next(Onsets.Length)]).Append(Vowels[random.Next(Vowels.Length)]).Append(Codas[random.Next(Codas.Length)]);
        return word.ToString();
    }

    private static string Capitalize(string word) => char.ToUpperInvariant(word[0]) + word[1..];
}
