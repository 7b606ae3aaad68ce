using Mirage.Core.Tokenization;
using Mirage.Core.Tokenization.Jinja;

namespace Mirage.Core.Tests.Tokenization;

/// <summary>Real chat templates (as published in tokenizer_config.json files) against transformers' documented output.</summary>
public sealed class ChatTemplateTests
{
    private static readonly TokenizerSettings Llama2Tokens = new(true, false, "<s>", "</s>", null, null);

    private const string Zephyr = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

    private const string ChatMl = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    private const string Llama2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    [Fact]
    public void Zephyr_TrimsBlocksAsTransformersDoes()
    {
        var text = new ChatTemplate(Zephyr, Llama2Tokens).Render([new("system", "Be brief."), new("user", "Hi?")]);
        Assert.Equal("<|system|>\nBe brief.</s>\n<|user|>\nHi?</s>\n<|assistant|>\n", text);
    }

    [Fact]
    public void ChatMl_AddsDefaultSystemAndGenerationPrompt()
    {
        var text = new ChatTemplate(ChatMl, Llama2Tokens).Render([new("user", "Hi")]);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", text);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n", new ChatTemplate(ChatMl, Llama2Tokens).Render([new("user", "Hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama2_FoldsTheSystemPromptAndChecksAlternation()
    {
        var template = new ChatTemplate(Llama2, Llama2Tokens);
        // strip() applies to the combined content, so the user text keeps its leading space.
        Assert.Equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi? [/INST]", template.Render([new("system", "Be brief."), new("user", " Hi? ")]));
        Assert.Equal("<s>[INST] A [/INST] B </s><s>[INST] C [/INST]", template.Render([new("user", "A"), new("assistant", "B"), new("user", "C")]));
        var error = Assert.Throws<MirageException>(() => template.Render([new("user", "A"), new("user", "B")]));
        Assert.Contains("Conversation roles must alternate", error.Message);
    }

    [Theory]
    [InlineData("{{ 'a' ~ 1 ~ none }}", "a1None")]
    [InlineData("{{ [1, 2, 3] | length }}{{ 'x' if 2 > 1 else 'y' }}{{ 7 // 2 }}{{ 'ab'[1:] }}", "3x3b")]
    [InlineData("{% set ns = namespace(found=false) %}{% for x in [1, 2] %}{% set ns.found = true %}{% endfor %}{{ ns.found }}", "True")]
    [InlineData("{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}{{ missing is defined }}{{ missing }}", "a=1False")]
    [InlineData("{%- if true -%}\n  yes  \n{%- endif -%}!", "yes!")]
    [InlineData("{# note #}{% for x in [] %}a{% else %}empty{% endfor %}{{ 'A,B'.split(',') | join('+') }}", "emptyA+B")]
    public void Expressions_AndWhitespaceControl(string source, string expected) =>
        Assert.Equal(expected, JinjaTemplate.Parse(source).Render(new Dictionary<string, object?>()));

    [Theory]
    [InlineData("{% macro f() %}{% endmacro %}", "statement 'macro' is not supported")]
    [InlineData("{% if x %}", "expected '{% endif %}'")]
    [InlineData("{{ x | shuffle }}", "filter 'shuffle' is not supported")]
    public void Unsupported_FailsNamingTheConstruct(string source, string message) =>
        Assert.Contains(message, Assert.Throws<MirageException>(() => JinjaTemplate.Parse(source).Render(new Dictionary<string, object?> { ["x"] = "v" })).Message);
}
