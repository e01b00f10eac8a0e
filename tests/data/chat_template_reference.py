#!/usr/bin/env python3
"""Reference renderer for tests/test_chat_template.cpp (provenance of its expected strings).

Renders chat templates with Python jinja2 3.1.x exactly as Hugging Face transformers'
apply_chat_template does (transformers/utils/chat_template_utils.py):
  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[jinja2.ext.loopcontrols])
  filters["tojson"]  = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)
  globals raise_exception (raises TemplateError) and strftime_now,
  render(messages=..., tools=None, documents=None, add_generation_prompt=..., bos_token=...,
         eos_token=..., **extra)
and rewrites the block between the GENERATED markers in tests/test_chat_template.cpp with the
templates it used (verbatim, as C++ raw string literals) and the outputs jinja2 produced.

Not run by the test suite. Regenerate with:
  CONTRAIL_DATA=/work/shared python3 tests/data/chat_template_reference.py --write
(without --write it only prints the generated block).

Templates: shipped ones are read from the shared data at generation time (the C++ test reads the
same files at test time); the others are embedded below exactly as published in the model
authors' tokenizer_config.json "chat_template" (JSON-decoded).
"""
import json
import os
import re
import struct
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_CPP = os.path.join(HERE, "..", "test_chat_template.cpp")
TEMPLATES_H = os.path.join(HERE, "..", "chat_templates.h")
DATA = os.environ.get("CONTRAIL_DATA", os.path.join(HERE, "..", "..", "..", "shared"))

# ---- templates not shipped in the shared data (verbatim, JSON-decoded) ---------------------------

EMBEDDED = {
    # meta-llama/Llama-2-7b-chat-hf tokenizer_config.json (same for 13b/70b chat)
    "kLlama2Chat": r"""{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}""",
    # meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json (the JSON's \n are real newlines)
    "kLlama3Instruct": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    # mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json (original release)
    "kMistralV01Instruct": r"""{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}""",
    # mistralai/Mistral-7B-Instruct-v0.1 / Mixtral-8x7B-Instruct-v0.1 later template (system support)
    "kMistralV01InstructSys": r"""{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
""",
    # Qwen/Qwen2-7B-Instruct tokenizer_config.json (the JSON's \n are real newlines)
    "kQwen2Instruct": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    # ChatML, teknium/OpenHermes-2.5-Mistral-7B (newlines written as \n escapes inside the literals)
    "kChatML": r"""{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}""",
}

# ---- shipped templates ------------------------------------------------------------------------------


def hf_config_template(rel):
    with open(os.path.join(DATA, rel), encoding="utf-8") as f:
        return json.load(f)["chat_template"]


def gguf_string(rel, key):
    data = open(os.path.join(DATA, rel), "rb").read()
    off = 4
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def u32():
        nonlocal off
        off += 4
        return struct.unpack_from("<I", data, off - 4)[0]

    def u64():
        nonlocal off
        off += 8
        return struct.unpack_from("<Q", data, off - 8)[0]

    def string():
        nonlocal off
        n = u64()
        off += n
        return data[off - n:off].decode("utf-8")

    def value(t):
        nonlocal off
        if t == 8:
            return string()
        if t == 9:
            et, n = u32(), u64()
            return [value(et) for _ in range(n)]
        off += sizes[t]
        return None

    assert data[:4] == b"GGUF"
    u32()
    u64()
    for _ in range(u64()):
        k, t = string(), u32()
        v = value(t)
        if k == key:
            return v
    raise KeyError(key)


SHIPPED = {
    # name in the C++ test -> (how the C++ test loads it, source)
    "gemma": hf_config_template("tokenizers/gemma/tokenizer_config.json"),
    "mistral-v0.3": hf_config_template("tokenizers/mistral-v0.3/tokenizer_config.json"),
    "phi-3": gguf_string("golden/tokenizers/vocab/ggml-vocab-phi-3.gguf", "tokenizer.chat_template"),
    "qwen2-gguf": gguf_string("golden/tokenizers/vocab/ggml-vocab-qwen2.gguf", "tokenizer.chat_template"),
}

# ---- the environment of transformers' apply_chat_template --------------------------------------------


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
ENV.filters["tojson"] = tojson
ENV.globals["raise_exception"] = raise_exception
ENV.globals["strftime_now"] = strftime_now


def render(source, messages, add_generation_prompt=True, bos="", eos="", extra=None):
    """("ok", text) or ("raise", message) for raise_exception or ("error", text) for other errors."""
    try:
        tmpl = ENV.from_string(source)
        ctx = dict(messages=messages, tools=None, documents=None, add_generation_prompt=add_generation_prompt,
                   bos_token=bos, eos_token=eos)
        ctx.update(extra or {})
        return "ok", tmpl.render(**ctx)
    except TemplateError as e:
        if type(e) is TemplateError:
            return "raise", str(e.message)
        return "error", f"{type(e).__name__}: {e}"
    except Exception as e:  # TypeError etc. from Python operations
        return "error", f"{type(e).__name__}: {e}"


# ---- conversations -------------------------------------------------------------------------------------

SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello!"}
A1 = {"role": "assistant", "content": "   Hi there, how can I help?  "}
U2 = {"role": "user", "content": " What's 2+2? Réponds en français, s'il te plaît 🙂\n"}
CONVS = {
    "sys_user_asst_user": [SYS, U1, A1, U2],
    "user_asst_user": [U1, A1, U2],
    "sys_user": [SYS, U1],
    "user_user": [U1, dict(U2)],                # breaks alternation
    "asst_first": [A1, U1],                      # breaks alternation
    "sys_only_assistant": [SYS, A1],             # breaks alternation after system
    "with_tool_role": [U1, {"role": "tool", "content": "42"}],
}

TOKENS = {  # bos, eos as each model's tokenizer defines them
    "kLlama2Chat": ("<s>", "</s>"),
    "kLlama3Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "kMistralV01Instruct": ("<s>", "</s>"),
    "kMistralV01InstructSys": ("<s>", "</s>"),
    "kQwen2Instruct": ("", "<|im_end|>"),
    "kChatML": ("<s>", "<|im_end|>"),
    "gemma": ("<bos>", "<eos>"),
    "mistral-v0.3": ("<s>", "</s>"),
    "phi-3": ("<s>", "<|endoftext|>"),
    "qwen2-gguf": ("", "<|im_end|>"),
}

FAMILY_CASES = []  # (template, conversation, add_generation_prompt)
for name in list(EMBEDDED) + list(SHIPPED):
    for conv in ("sys_user_asst_user", "user_asst_user", "sys_user"):
        for agp in (True, False):
            FAMILY_CASES.append((name, conv, agp))
    for conv in ("user_user", "asst_first", "sys_only_assistant", "with_tool_role"):
        FAMILY_CASES.append((name, conv, True))

# Mistral v0.3 with tools (its template supports them): tools in the context, a tool call and a
# tool result as message extras.
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — «quoted» \"text\"",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                       "required": ["city"]},
        "return": {"type": "number"},
    },
}, {
    "type": "function",
    "function": {"name": "now", "description": "Current time", "parameters": {"type": "object", "properties": {}}},
}]
TOOL_CONV = [
    SYS,
    {"role": "user", "content": "Weather in Zürich?"},
    {"role": "assistant", "content": "", "extra": {"tool_calls": [
        {"id": "abc123def", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}]}},
    {"role": "tool", "content": "", "extra": {"content": {"temperature": 21.5, "sky": "clear"}, "tool_call_id": "abc123def"}},
    {"role": "assistant", "content": "It is 21.5 °C and clear."},
    {"role": "user", "content": "Thanks!"},
]
BAD_TOOL_CONV = [
    {"role": "user", "content": "Weather?"},
    {"role": "assistant", "content": "", "extra": {"tool_calls": [
        {"id": "short", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}},
]


def to_hf_messages(conv):
    out = []
    for m in conv:
        d = {"role": m["role"], "content": m["content"]}
        d.update(m.get("extra", {}))
        out.append(d)
    return out


def extras_json(conv):
    return [json.dumps(m["extra"], ensure_ascii=False) if "extra" in m else "" for m in conv]


# ---- small templates: filters, tests, methods, scoping, undefined, whitespace --------------------------

SNIPPET_CTX = {
    "d": {"b": 2, "a": 1, "c": [1, 2, {"x": "y"}]},
    "people": [{"name": "bob", "age": 30}, {"name": "Alice", "age": 25}, {"name": "carol", "age": 35, "tag": "x"}],
    "nums": [3, 1, 4, 1, 5, 9, 2, 6],
    "s": "  Hello World, hello JINJA  ",
    "uni": "héllo wörld",
    "flag": True,
    "nothing": None,
}
SNIPPETS = [
    ("trim", "[{{ s|trim }}][{{ 'xxaxx'|trim('x') }}][{{ '\t a \n'|trim }}]"),
    ("length", "{{ messages|length }} {{ uni|length }} {{ d|length }} {{ ''|length }} {{ nums|count }}"),
    ("tojson_basic", "{{ d|tojson }}|{{ people[0]|tojson }}|{{ 'a<b>&\\'\"é🙂'|tojson }}|{{ [1.0, 2.5, none, true, false]|tojson }}"),
    ("tojson_indent", "{{ d|tojson(indent=2) }}\n{{ {}|tojson(indent=2) }}{{ []|tojson(indent=4) }}"),
    ("tojson_sort_sep", "{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}"),
    ("tojson_tools", "{{ tools|tojson }}"),
    ("items", "{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d.items() %}{{ k }};{% endfor %}|{{ d.keys()|list }}|{{ d.values()|list|length }}"),
    ("dict_get", "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d['c'][2].x }} {{ d.c.2.x }}"),
    ("selectattr_map", "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }}"),
    ("selectattr_forms", "{{ people|selectattr('tag', 'defined')|map(attribute='name')|list }} {{ people|rejectattr('age', 'gt', 28)|map(attribute='name')|list }} {{ people|selectattr('age')|list|length }}"),
    ("map_filter", "{{ people|map(attribute='name')|map('upper')|join(',') }} {{ people|map(attribute='missing', default='?')|join }}"),
    ("select_tests", "{{ nums|select('odd')|list }} {{ nums|reject('even')|list }} {{ nums|select('gt', 3)|list }}"),
    ("sort_unique", "{{ nums|sort }} {{ nums|sort(reverse=true) }} {{ people|sort(attribute='name')|map(attribute='name')|join(',') }} {{ nums|unique|list }} {{ ['b', 'A', 'a', 'B']|unique|list }}"),
    ("dictsort", "{% for k, v in d|dictsort %}{{ k }}{% endfor %} {{ d|dictsort(reverse=true)|map('first')|join }}"),
    ("min_max_sum", "{{ nums|min }} {{ nums|max }} {{ nums|sum }} {{ people|sum(attribute='age') }} {{ people|max(attribute='age') }}"),
    ("first_last", "{{ nums|first }} {{ nums|last }} {{ 'abc'|first }} {{ (messages|last).role }}"),
    ("str_strip", "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xyhixy'.strip('xy') }}][{{ '--a--'.lstrip('-') }}]"),
    ("str_affix", "{{ s.strip().startswith('Hello') }} {{ s.startswith('Hello') }} {{ 'abc'.endswith('bc') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.endswith('') }}"),
    ("str_split", "{{ 'a,b,,c'.split(',') }} {{ '  a  b c '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'k=v=w'.split('=')[1] }}"),
    ("str_case", "{{ 'hello wORLD'.title() }}|{{ 'hello wORLD'|title }}|{{ uni.upper() }}|{{ 'ÀB'.lower() }}|{{ 'hello'|capitalize }}|{{ \"they're bill's-friends\".title() }}|{{ \"they're bill's-friends\"|title }}"),
    ("str_misc", "{{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '', 1) }} {{ 'a-b-c'|replace('-', '_') }} {{ 'hello'.find('l') }} {{ 'hello'.count('l') }} {{ ', '.join(['x', 'y']) }} {{ '12'.isdigit() }}"),
    ("loop_vars", "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
    ("loop_cycle_prev", "{% for n in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}"),
    ("loop_filter_else", "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }} {% endfor %}{% for x in [] %}x{% else %}empty{% endfor %}"),
    ("loop_break_continue", "{% for n in nums %}{% if n == 1 %}{% continue %}{% endif %}{% if n == 9 %}{% break %}{% endif %}{{ n }}{% endfor %}"),
    ("loop_scope", "{% set x = 'outer' %}{% for n in [1, 2] %}{% set x = 'inner' ~ n %}{{ x }} {% endfor %}{{ x }}"),
    ("loop_scope_persist", "{% for n in [1, 2, 3] %}{% if n == 1 %}{% set y = 'one' %}{% endif %}[{{ y }}]{% endfor %}"),
    ("namespace", "{% set ns = namespace(found=false, n=0, items=[]) %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }} {{ ns.n }} {{ ns.items }}"),
    ("slicing", "{{ 'hello'[::-1] }} {{ nums[1:4] }} {{ nums[::-2] }} {{ nums[-2:] }} {{ uni[1:4] }} {{ uni[::-1] }} {{ messages[1:]|length }} {{ nums[:-6] }} {{ 'abc'[5:] }}|"),
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 / 4 }} {{ 0.1 + 0.2 }} {{ 10 / 5 }} {{ 3 * 'ab' }} {{ [0] * 3 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 2.0 ** 0.5 }} {{ -3|abs }}"),
    ("printing", "{{ none }} {{ true }} {{ false }} {{ [1, 'a', none, 2.0] }} {{ {'a': 1, 'b': [true]} }} {{ (1, 2) }} {{ \"it's\" }} {{ ['it\\'s'] }} {{ 42.0 }} {{ nothing }}"),
    ("concat_cmp", "{{ 1 ~ 'a' ~ none ~ true }} {{ 1 < 2 < 3 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} {{ 'ell' in 'hello' }} {{ 'a' in d }} {{ 3 in nums }} {{ 'x' not in d }} {{ 1 == 1.0 }} {{ none == none }}"),
    ("tests", "{{ d is mapping }} {{ nums is iterable }} {{ 's' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ none is none }} {{ true is boolean }} {{ 4 is divisibleby 2 }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ '123' is lower }} {{ nums is sequence }} {{ 5 is odd }} {{ 1 is sameas 1 }} {{ 2 is in nums }} {{ 'x' is eq 'x' }}"),
    ("macro", "{% macro tag(name, body='none', close=true) %}<{{ name }}>{{ body }}{% if close %}</{{ name }}>{% endif %}{% endmacro %}{{ tag('a') }}{{ tag('b', 'x') }}{{ tag('c', close=false) }}{{ tag(body='y', name='d') }}"),
    ("set_block_filter", "{% set x %}  Hello {{ messages[0].role }}  {% endset %}[{{ x|trim }}]{% filter upper %}shout {{ 1 + 1 }}{% endfilter %}"),
    ("set_tuple", "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"),
    ("defaults", "{{ missing|default('dflt') }} {{ ''|default('empty', true) }} {{ ''|default('not-used') }}| {{ none|default('x') }} {{ missing|d('d') }}"),
    ("string_int_float", "{{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ '2.5'|float }} {{ 3|float }} {{ 42|string ~ '!' }} {{ 3.7|round }} {{ 3.14159|round(2) }} {{ 2.5|round }} {{ 3.2|round(0, 'ceil') }}"),
    ("list_reverse_join", "{{ 'abc'|list }} {{ nums|reverse|list }} {{ 'abc'|reverse }} {{ [1, 2, 3]|join('-') }} {{ people|join(', ', attribute='name') }}"),
    ("indent_wordcount", "{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'x\n\ny'|indent(width='> ', blank=true) }}|{{ 'one two  three'|wordcount }}"),
    ("whitespace", "A\n  {% if true %}\n    B\n  {% endif %}\nC {%- if true %} D {% endif -%} E\n{# comment #}\nF {{- ' G ' -}} H\n  {%+ if true %}I{% endif %}\n"),
    ("whitespace_lstrip_comment", "x\n    {# indented comment #}\ny\n\t{% set z = 1 %}\n{{ z }}   \n"),
    ("cond_expr", "{{ 'yes' if flag else 'no' }} {{ 'yes' if not flag else 'no' }} [{{ 'a' if false }}] {{ (1 if flag else 2) + 1 }}"),
    ("string_escapes", "{{ 'tab\\there' }}|{{ \"q\\\"q\" }}|{{ 'u\\u00e9' }}|{{ 'x\\x41' }}|{{ 'a' 'b' }}|{{ 'back\\\\slash' }}"),
    # undefined semantics
    ("namespace_print", "{{ namespace(a=1, b='x') }} {% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"),
    ("tuples", "{{ (1,) }} {{ () }} {{ d.items()|list }} {{ d|items|first }} {{ d|dictsort|first }} {{ (1, 2) == [1, 2] }} {{ (1, 2) == (1, 2) }} {{ (1, 2)|list }} {{ ((1, 2) + (3,)) }} {{ (1, 2)[1:] }} {{ (1, 2)|tojson }}"),
    ("undef_filters", "[{{ missing|replace('a', 'b') }}][{{ missing|wordcount }}][{{ missing|sort }}][{{ missing|sum }}][{{ missing|unique|list }}][{{ missing|map('upper')|list }}][{{ missing|selectattr('x')|list }}][{{ missing|min }}][{{ missing|string }}][{{ missing|first }}]"),
    ("undef_filter_errors_indent", "{{ missing|indent }}"),
    ("undef_filter_errors_int", "{{ missing|int }}"),
    ("undef_filter_errors_dictsort", "{{ missing|dictsort }}"),
    ("undef_filter_errors_round", "{{ missing|round }}"),
    ("macro_scopes", "{% set g = 'G' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}{% for x in [1, 2] %}{% macro n() %}{{ x }}{% endmacro %}{{ n() }}{% endfor %}{% set g = 'late' %}{{ m() }}{% for x in [3] %}{% macro r(k) %}{{ k }}{% if k > 0 %}{{ r(k - 1) }}{% endif %}{% endmacro %}{{ r(x) }}{% endfor %}"),
    ("if_set_visible", "{% if true %}{% set v = 'set in if' %}{% endif %}{{ v }} {% for m in messages %}{% if loop.last %}{% set last_role = m.role %}{% endif %}{% endfor %}[{{ last_role }}]"),
    ("content_ops", "{{ messages[0]['content'][:7] }}|{{ messages[0].content.split(' ')|length }}|{{ messages[2].content|trim|length }}|{{ (messages|map(attribute='role')|list)[::-1]|join(' ') }}"),
    ("is_not_chains", "{{ messages[0].tool_calls is not defined and messages[0].role == 'system' }} {{ not nothing is none }} {{ 'a' if nothing is none else 'b' }} {{ messages|selectattr('role', 'in', ['user', 'system'])|list|length }}"),
    ("undef_print", "[{{ missing }}][{{ messages[0].nope }}][{{ messages[99] }}][{{ d.zz }}][{{ missing ~ 'x' }}]"),
    ("undef_tests", "{{ missing is defined }} {{ missing is undefined }} {{ messages[0].nope is defined }} {{ d.a is defined }} {{ missing is none }} {{ nothing is none }} {{ nothing is defined }}"),
    ("undef_iter_len", "{% for x in missing %}x{% else %}none{% endfor %} {{ missing|length }} {{ missing|list }} {% if missing %}t{% else %}f{% endif %} {% if not missing %}nf{% endif %}"),
    ("undef_compare", "{{ missing == none }} {{ missing != 'a' }} {{ 'a' in missing }} {{ missing|trim }}| {{ missing|upper }}|{{ missing|join(',') }}|{{ missing or 'alt' }} {{ missing and 'x' }}|"),
    ("undef_attr_error", "{{ missing.attr }}"),
    ("undef_add_error", "{{ missing + 1 }}"),
    ("undef_item_error", "{{ messages[99].role }}"),
    ("undef_call_error", "{{ missing() }}"),
    ("undef_lt_error", "{{ missing < 1 }}"),
    ("undef_tojson_error", "{{ missing|tojson }}"),
    # other runtime errors
    ("type_error_add", "{{ 1 + 'a' }}"),
    ("type_error_sort", "{{ [1, 'a']|sort }}"),
    ("raise_in_macro", "{% macro m(x) %}{{ raise_exception('bad ' ~ x) }}{% endmacro %}before{{ m(42) }}"),
]


def cpp_string(s):
    """A C++ string literal (ordinary, UTF-8 bytes escaped) for s."""
    out = ['"']
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append('\\n"\n      "')
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif 0x20 <= b < 0x7F:
            if c == "?":
                out.append("\\?")  # no trigraphs
            else:
                out.append(c)
        else:
            out.append("\\%03o" % b)
    out.append('"')
    text = "".join(out)
    return text.replace('\n      ""', "")


def raw_literal(s):
    assert ")tpl\"" not in s
    return 'R"tpl(' + s + ')tpl"'


def main():
    lines = []
    w = lines.append
    w("// Generated by tests/data/chat_template_reference.py from Python jinja2 %s; do not edit." % jinja2.__version__)
    w("// The templates (kLlama2Chat, ...) are in chat_templates.h.")
    w("// Expected renders of the family templates (see FAMILY_CASES in the script).")
    w("const FamilyCase kFamilyCases[] = {")
    for name, conv, agp in FAMILY_CASES:
        src = EMBEDDED.get(name) or SHIPPED[name]
        bos, eos = TOKENS[name]
        kind, text = render(src, to_hf_messages([dict(m) for m in _conv(conv)]), agp, bos, eos)
        w("    {%s, %s, %s, %s, %s, %s, Expect::%s,\n     %s}," % (
            cpp_string(name), cpp_string(conv), "true" if agp else "false", cpp_string(bos), cpp_string(eos),
            "true" if name in EMBEDDED else "false", {"ok": "Text", "raise": "Raise", "error": "Error"}[kind],
            cpp_string(text)))
    w("};")
    w("")
    w("// Mistral v0.3 with tools (tools in extra_context_json, tool calls/results as message extras).")
    hf_extra = {"tools": TOOLS}
    for label, conv in (("kMistralToolsExpected", TOOL_CONV), ("kMistralBadToolIdExpected", BAD_TOOL_CONV)):
        kind, text = render(SHIPPED["mistral-v0.3"], to_hf_messages(conv), True, "<s>", "</s>", hf_extra)
        w("// %s" % kind)
        w("const char* const %s = %s;" % (label, cpp_string(text)))
    w("const char* const kMistralToolsJson = %s;" % cpp_string(json.dumps({"tools": TOOLS}, ensure_ascii=False)))
    for label, conv in (("kToolConvExtras", TOOL_CONV), ("kBadToolConvExtras", BAD_TOOL_CONV)):
        w("const char* const %s[] = {%s};" % (label, ", ".join(cpp_string(x) for x in extras_json(conv))))
    w("")
    w("// Small templates rendered with messages = sys_user_asst_user, bos <s>, eos </s>,")
    w("// add_generation_prompt true and kSnippetContextJson.")
    w("const char* const kSnippetContextJson = %s;" % cpp_string(json.dumps(dict(SNIPPET_CTX, tools=TOOLS), ensure_ascii=False)))
    w("const SnippetCase kSnippets[] = {")
    for name, src in SNIPPETS:
        kind, text = render(src, to_hf_messages(CONVS["sys_user_asst_user"]), True, "<s>", "</s>", dict(SNIPPET_CTX, tools=TOOLS))
        w("    {%s,\n     %s,\n     Expect::%s, %s}," % (cpp_string(name), cpp_string(src),
                                                       {"ok": "Text", "raise": "Raise", "error": "Error"}[kind], cpp_string(text)))
    w("};")
    w("")
    w("// The conversations of FAMILY_CASES and the snippets.")
    w("const ConvMessage kConvMessages[] = {")
    for cname, conv in CONVS.items():
        for m in conv:
            w("    {%s, %s, %s}," % (cpp_string(cname), cpp_string(m["role"]), cpp_string(m["content"])))
    w("};")
    block = "\n".join(lines) + "\n"

    header = [
        "// Generated by tests/data/chat_template_reference.py; do not edit.",
        "// Chat templates published by the model authors and not shipped in the shared data, verbatim",
        "// (test_chat_template.cpp checks their renders against jinja2; test_chat_injection.cpp attacks them).",
        "#pragma once",
        "",
        "namespace contrail {",
        "",
        "// clang-format off",
    ]
    for name, src in EMBEDDED.items():
        header.append("inline constexpr const char* %s = %s;" % (name, raw_literal(src)))
    header += ["// clang-format on", "", "}  // namespace contrail", ""]

    if "--write" in sys.argv:
        open(TEMPLATES_H, "w", encoding="utf-8").write("\n".join(header))
        cpp = open(TEST_CPP, encoding="utf-8").read()
        begin, end = "// BEGIN GENERATED\n", "// END GENERATED\n"
        i, j = cpp.index(begin) + len(begin), cpp.index(end)
        open(TEST_CPP, "w", encoding="utf-8").write(cpp[:i] + block + cpp[j:])
    else:
        sys.stdout.write(block)


def _conv(name):
    return CONVS[name]


if __name__ == "__main__":
    main()
