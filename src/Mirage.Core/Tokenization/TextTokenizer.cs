using Mirage.Core.Models;

namespace Mirage.Core.Tokenization;

/// <summary>
/// A checkpoint's tokenizer: SentencePiece <c>tokenizer.model</c> or Hugging Face
/// <c>tokenizer.json</c> (BPE), with BOS/EOS and special tokens from <c>tokenizer_config.json</c>.
/// Every token carries its character span in the input text.
/// </summary>
public sealed class TextTokenizer
{
    private readonly ITokenizerBackend _backend;

    internal TextTokenizer(ITokenizerBackend backend, TokenizerSettings settings, int? bosId, IReadOnlyList<int> eosIds, bool addBos)
    {
        _backend = backend;
        Settings = settings;
        BosId = bosId;
        EosIds = eosIds;
        AddBos = addBos;
        (_chatTemplate, _chatTemplateError) = Compile(settings);
    }

    private readonly ChatTemplate? _chatTemplate;
    private readonly MirageException? _chatTemplateError;

    // A template past the renderer's limits refuses the whole model: it comes from a hostile or
    // broken file. One that uses a construct the renderer lacks fails only when a prompt needs it,
    // so plain prompts still work with that model.
    private static (ChatTemplate?, MirageException?) Compile(TokenizerSettings settings)
    {
        if (settings.ChatTemplate is null)
            return (null, null);
        try
        {
            var template = new ChatTemplate(settings.ChatTemplate, settings);
            template.CheckRenders();
            return (template, null);
        }
        catch (MirageException e) when (e is not ChatTemplateLimitException)
        {
            return (null, e);
        }
    }

    /// <summary>The tokenizer format: <c>sentencepiece</c>, <c>bpe-byte-level</c> or <c>bpe-sentencepiece</c>.</summary>
    public string Kind => _backend.Kind;

    /// <summary>Number of token ids, special tokens included.</summary>
    public int VocabSize => _backend.VocabSize;

    /// <summary>Special and added tokens by text.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => _backend.SpecialTokens;

    /// <summary>
    /// The fewest tokens <paramref name="characters"/> characters of text can encode to (no token
    /// stands for more text than the longest vocabulary entry): a bound known before tokenizing,
    /// so a text that cannot fit a context is refused without the work of encoding it.
    /// </summary>
    public long MinimumTokens(long characters) => (characters + _backend.LongestToken - 1) / Math.Max(1, _backend.LongestToken);

    /// <summary>The settings read from <c>tokenizer_config.json</c>.</summary>
    public TokenizerSettings Settings { get; }

    /// <summary>The beginning-of-sequence id, if the model has one.</summary>
    public int? BosId { get; }

    /// <summary>Ids that end generation.</summary>
    public IReadOnlyList<int> EosIds { get; }

    /// <summary>Whether <see cref="Encode"/> prepends BOS when asked to add special tokens.</summary>
    public bool AddBos { get; }

    /// <summary>
    /// Loads the tokenizer of a checkpoint folder. A SentencePiece <c>tokenizer.model</c> is
    /// preferred when present; otherwise <c>tokenizer.json</c>.
    /// </summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="configEosIds">EOS ids from the model config, added to the tokenizer's own.</param>
    /// <param name="configBosId">BOS id from the model config, used when the tokenizer names none.</param>
    public static TextTokenizer Load(string directory, IReadOnlyList<int>? configEosIds = null, int? configBosId = null)
    {
        var settings = TokenizerSettings.Load(directory);
        var modelPath = Path.Combine(directory, "tokenizer.model");
        var jsonPath = Path.Combine(directory, "tokenizer.json");
        ITokenizerBackend backend = File.Exists(modelPath) ? new SentencePieceBackend(modelPath)
            : File.Exists(jsonPath) ? new HuggingFaceBpeBackend(jsonPath)
            : throw new InvalidCheckpointException($"'{directory}' has no tokenizer: expected tokenizer.model (SentencePiece) or tokenizer.json.");

        int? bosId = (settings.BosToken is null ? null : backend.IdOf(settings.BosToken)) ?? configBosId
            ?? (backend is SentencePieceBackend ? backend.IdOf("<s>") : null);
        var eosIds = new List<int>();
        if (settings.EosToken is not null && backend.IdOf(settings.EosToken) is int eos)
            eosIds.Add(eos);
        eosIds.AddRange((configEosIds ?? []).Where(id => !eosIds.Contains(id)));
        if (eosIds.Count == 0 && backend is SentencePieceBackend && backend.IdOf("</s>") is int sentencePieceEos)
            eosIds.Add(sentencePieceEos);

        bool addBos = bosId is not null && (settings.AddBos ?? AddsBosByDefault(backend, jsonPath, settings.BosToken));
        return new TextTokenizer(backend, settings, bosId, eosIds, addBos);
    }

    // Llama 2 (SentencePiece) adds BOS unless told otherwise; byte-level models such as Llama 3
    // add it through the post-processor of tokenizer.json when it names the BOS token.
    private static bool AddsBosByDefault(ITokenizerBackend backend, string jsonPath, string? bosToken)
    {
        if (backend is SentencePieceBackend)
            return true;
        if (bosToken is null || !File.Exists(jsonPath))
            return false;
        var text = ModelFiles.ReadText(jsonPath);
        int at = text.IndexOf("\"post_processor\"", StringComparison.Ordinal);
        return at >= 0 && text.IndexOf($"\"{bosToken}\"", at, StringComparison.Ordinal) >= 0;
    }

    /// <summary>Encodes text; with <paramref name="addSpecialTokens"/>, BOS (and EOS if configured) are added with empty spans.</summary>
    public IReadOnlyList<TextToken> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<TextToken>();
        if (addSpecialTokens && AddBos && BosId is int bos)
            tokens.Add(new TextToken(bos, Settings.BosToken ?? "<s>", 0, 0));
        tokens.AddRange(_backend.Encode(text).Select(t => WithoutLeadingSpaces(text, t)));
        if (addSpecialTokens && Settings.AddEos && EosIds.Count > 0)
            tokens.Add(new TextToken(EosIds[0], Settings.EosToken ?? "</s>", text.Length, text.Length));
        return tokens;
    }

    // A word's separating spaces are not part of what its token shows; an all-space token keeps them.
    internal static TextToken WithoutLeadingSpaces(string text, TextToken token)
    {
        int start = token.Start;
        while (start < token.End && text[start] == ' ')
            start++;
        return start < token.End ? token with { Start = start } : token;
    }

    /// <summary>
    /// Encodes text that follows a prompt (an answer), without special tokens; offsets refer to
    /// <paramref name="text"/>. SentencePiece-style tokenizers always mark a word start with their
    /// '▁' prefix; byte-level ones get an explicit leading space when it follows a space.
    /// </summary>
    /// <param name="text">The continuation.</param>
    /// <param name="afterSpace">Whether the continuation follows a space (plain prompts ending in
    /// "Answer:") rather than directly (a chat template's assistant header ending in a newline).</param>
    public IReadOnlyList<TextToken> EncodeContinuation(string text, bool afterSpace = true)
    {
        if (Kind != "bpe-byte-level" || !afterSpace)
            return Encode(text, addSpecialTokens: false);
        return Encode(" " + text, addSpecialTokens: false)
            .Select(t => t with { Start = Math.Max(0, t.Start - 1), End = Math.Max(0, t.End - 1) })
            .ToList();
    }

    /// <summary>Encodes text to ids only.</summary>
    public int[] EncodeIds(string text, bool addSpecialTokens = true) => Encode(text, addSpecialTokens).Select(t => t.Id).ToArray();

    /// <summary>Decodes ids to text, leaving special tokens out by default.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) => _backend.Decode(ids, skipSpecialTokens);

    /// <summary>
    /// The text that <paramref name="continuation"/> adds after <paramref name="prompt"/>. Decoding
    /// the continuation alone would lose a leading space (SentencePiece strips it), so this decodes
    /// it after the prompt's last token and returns the difference.
    /// </summary>
    public string DecodeContinuation(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation)
    {
        int[] anchor = prompt.Count > 0 ? [prompt[^1]] : [];
        var before = Decode(anchor);
        var after = Decode(anchor.Concat(continuation));
        return after.StartsWith(before, StringComparison.Ordinal) ? after[before.Length..] : Decode(continuation);
    }

    /// <summary>The model's chat template, compiled, or null when it has none.</summary>
    /// <exception cref="MirageException">The model has a template this renderer cannot compile.</exception>
    public ChatTemplate? ChatTemplate => _chatTemplateError is { } error ? throw new MirageException(error.Message, error) : _chatTemplate;

    /// <summary>The id of a token or special token, if the vocabulary has it.</summary>
    public int? IdOf(string token) => _backend.IdOf(token);
}
