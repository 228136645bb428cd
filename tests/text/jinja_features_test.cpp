// Jinja features one by one. The expected strings are what Jinja2 3.1 renders with the
// environment transformers uses for chat templates (trim_blocks, lstrip_blocks, loop
// controls, its tojson), produced once with Python and pasted here.
#include <gtest/gtest.h>

#include "jinja_helpers.h"

namespace {

TEST(JinjaFeatures, Literals) {
  EXPECT_EQ(render_jinja(R"J({{ 'a' ~ "b" }}|{{ 42 }}|{{ 1.5 }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 2.0 }}|{{ -0.0 }})J", R"J({})J"),
            R"J(ab|42|1.5|1e+20|1e-05|2.0|-0.0)J");
  EXPECT_EQ(render_jinja(R"J({{ none }}|{{ true }}|{{ False }}|{{ [1, 'a', none, true, 1.0] }}|{{ {'k': 'v', 'n': [1]} }})J", R"J({})J"),
            R"J(None|True|False|[1, 'a', None, True, 1.0]|{'k': 'v', 'n': [1]})J");
  EXPECT_EQ(render_jinja(R"J({{ '\u00e9\n\t\x41' }}|{{ "it's" }}|{{ ['it\'s', "a\"b"] }}|{{ (1, 2) }}|{{ ('a',) }})J", R"J({})J"),
            R"J(é
	A|it's|["it's", 'a"b']|(1, 2)|('a',))J");
  EXPECT_EQ(render_jinja(R"J({{ 'ab' 'cd' }}|{{ 1_000 }})J", R"J({})J"),
            R"J(abcd|1000)J");
}

TEST(JinjaFeatures, Operators) {
  EXPECT_EQ(render_jinja(R"J({{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 4 / 2 }} {{ 1.5 * 2 }} {{ 1 + true }})J", R"J({})J"),
            R"J(3.5 3 -4 2 1024 2.0 3.0 2)J");
  EXPECT_EQ(render_jinja(R"J({{ 'a' * 3 }} {{ [1, 2] + [3] }} {{ 'a' ~ 1 ~ none }} {{ 'x' + 'y' }})J", R"J({})J"),
            R"J(aaa [1, 2, 3] a1None xy)J");
  EXPECT_EQ(render_jinja(R"J({{ 1 == 1.0 }} {{ 'a' == 1 }} {{ [1] == [1] }} {{ none == none }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 3 >= 3 }} {{ 2 != 2 }})J", R"J({})J"),
            R"J(True False True True True True True False)J");
  EXPECT_EQ(render_jinja(R"J({{ 'a' in 'cat' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'a' not in 'b' }} {{ 'x' in u }})J", R"J({})J"),
            R"J(True True True True False)J");
  EXPECT_EQ(render_jinja(R"J({{ not true }} {{ true and 'x' }} {{ false or 'y' }} {{ 0 or none }} {{ '' and 1 }} {{ - 2 }} {{ -x }})J", R"J({"x": 3})J"),
            R"J(False x y None  -2 -3)J");
  EXPECT_EQ(render_jinja(R"J({{ 'yes' if a else 'no' }}|{{ 'only' if a }}|{{ 1 if b else 2 if a else 3 }})J", R"J({"a": true, "b": false})J"),
            R"J(yes|only|2)J");
  EXPECT_EQ(render_jinja(R"J({{ '%s and %d' % ('a', 3) }}|{{ '%s!' % 'x' }})J", R"J({})J"),
            R"J(a and 3|x!)J");
  EXPECT_EQ(render_jinja(R"J({{ 3 > 2 > 1 }} {{ 1 < 3 < 2 }} {{ 1 == 1 == 1 }} {{ not a == b }} {{ a or b and c }} {{ 'x' if c else 'z' | upper }})J", R"J({"a": 1, "b": 2, "c": 0})J"),
            R"J(True False True True 1 Z)J");
  EXPECT_EQ(render_jinja(R"J({{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 'a' ~ (1 + 2) }} {{ 2 * 3 ~ 'x' }} {{ 10 // 3 * 3 + 10 % 3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 0.1 + 0.2 }})J", R"J({})J"),
            R"J(4 64 a3 6x 10 3.0 0.5 0.30000000000000004)J");
}

TEST(JinjaFeatures, Access) {
  EXPECT_EQ(render_jinja(R"J({{ m.role }}|{{ m['role'] }}|{{ m.missing }}|{{ m.missing is defined }}|{{ d['items'] }})J", R"J({"m": {"role": "user"}, "d": {"items": 3}})J"),
            R"J(user|user||False|3)J");
  EXPECT_EQ(render_jinja(R"J({{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[5] is defined }})J", R"J({"l": [1, 2, 3]})J"),
            R"J(1 3 [2, 3] [1, 2] [3, 2, 1] [1, 3] False)J");
  EXPECT_EQ(render_jinja(R"J({{ s[1] }} {{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }} {{ s|length }})J", R"J({"s": "héllo"})J"),
            R"J(é o él olléh 5)J");
  EXPECT_EQ(render_jinja(R"J({{ none.x }}|{{ 'abc'.x }}|{{ n.a.b }})J", R"J({"n": {"a": {"b": "deep"}}})J"),
            R"J(||deep)J");
  EXPECT_EQ(render_jinja(R"J({{ 'abc'[5:] }}|{{ 'abc'[-10:2] }}|{{ [1][5:] }}|{{ 'abc'[::-2] }}|{{ 'abcdef'[4:1:-1] }}|{{ [1, 2, 3, 4, 5][-1:-4:-2] }}|{{ range(10)[2:5] | list }})J", R"J({})J"),
            R"J(|ab|[]|ca|edc|[5, 3]|[2, 3, 4])J");
  EXPECT_EQ(render_jinja(R"J({{ (ms | selectattr('role', 'equalto', 'user') | list | last).content }}|{{ m.tool_calls | length }} {{ m.content is none }})J", R"J({"ms": [{"role": "user", "content": "1"}, {"role": "user", "content": "2"}, {"role": "a", "content": "3"}], "m": {"role": "assistant", "content": null, "tool_calls": [{"a": 1}]}})J"),
            R"J(2|1 True)J");
}

TEST(JinjaFeatures, StringMethods) {
  EXPECT_EQ(render_jinja(R"J({{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a.b.c'.rsplit('.', 1) }})J", R"J({})J"),
            R"J(['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a.b', 'c'])J");
  EXPECT_EQ(render_jinja(R"J([{{ '  x '.strip() }}] [{{ 'xxaxx'.strip('x') }}] [{{ '\n\nx\n'.lstrip('\n') }}] [{{ ' x '.rstrip() }}])J", R"J({})J"),
            R"J([x] [a] [x
] [ x])J");
  EXPECT_EQ(render_jinja(R"J({{ 'abc'.startswith('a') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.endswith('bc') }})J", R"J({})J"),
            R"J(True True True)J");
  EXPECT_EQ(render_jinja(R"J({{ 'Hello World'.lower() }} {{ 'hi'.upper() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'ÉCOLE'.lower() }})J", R"J({})J"),
            R"J(hello world HI Hello World Hello école)J");
  EXPECT_EQ(render_jinja(R"J({{ 'aXa'.replace('a', 'b') }} {{ 'abc'.find('c') }} {{ 'abca'.count('a') }} {{ '-'.join(['a', 'b']) }} {{ '1'.isdigit() }})J", R"J({})J"),
            R"J(bXb 2 2 a-b True)J");
  EXPECT_EQ(render_jinja(R"J({{ '{} and {}'.format(1, 'b') }}|{{ 'a\nb'.splitlines() }})J", R"J({})J"),
            R"J(1 and b|['a', 'b'])J");
  EXPECT_EQ(render_jinja(R"J({{ c.split('</think>')[-1].lstrip('\n') }}|{{ c.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }})J", R"J({"c": "<think>\nreason\n</think>\n\nanswer"})J"),
            R"J(answer|reason)J");
}

TEST(JinjaFeatures, DictMethods) {
  EXPECT_EQ(render_jinja(R"J({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.get('a') }}|{{ d.get('z', 5) }}|{{ d.get('z') }})J", R"J({"d": {"b": 1, "a": 2}})J"),
            R"J(b=1;a=2;|['b', 'a']|[1, 2]|2|5|None)J");
}

TEST(JinjaFeatures, Filters) {
  EXPECT_EQ(render_jinja(R"J({{ ' x ' | trim }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ [1, 2] | first }}|{{ [1, 2] | last }}|{{ [1, 2, 3] | length }}|{{ {'a': 1} | count }})J", R"J({})J"),
            R"J(x|ABC|abc|1|2|3|1)J");
  EXPECT_EQ(render_jinja(R"J({{ ['a', 'b'] | join('-') }}|{{ [1, 2] | join }}|{{ 'aXa' | replace('a', 'b') }}|{{ 5 | string }}|{{ [1] | string }})J", R"J({})J"),
            R"J(a-b|12|bXb|5|[1])J");
  EXPECT_EQ(render_jinja(R"J({{ x | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ none | default('d') }}|{{ x | d('e') }})J", R"J({})J"),
            R"J(d||d|None|e)J");
  EXPECT_EQ(render_jinja(R"J({{ d | items | list }}|{{ d | dictsort }}|{{ d | list }})J", R"J({"d": {"b": 1, "a": 2}})J"),
            R"J([('b', 1), ('a', 2)]|[('a', 2), ('b', 1)]|['b', 'a'])J");
  EXPECT_EQ(render_jinja(R"J({{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ [3, 1, 2] | reverse | list }}|{{ [1, 2, 3] | sum }}|{{ [1, 5, 3] | max }}|{{ [4, 2] | min }})J", R"J({})J"),
            R"J([1, 2, 3]|[3, 2, 1]|[2, 1, 3]|6|5|2)J");
  EXPECT_EQ(render_jinja(R"J({{ ['b', 'a', 'b'] | unique | list }}|{{ 'ab' | list }}|{{ 3.7 | int }}|{{ '12' | int }}|{{ 3 | float }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }})J", R"J({})J"),
            R"J(['b', 'a']|['a', 'b']|3|12|3.0|3|2.57|2.0)J");
  EXPECT_EQ(render_jinja(R"J({{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n' | indent(4, blank=true) }})J", R"J({})J"),
            R"J(a
  b

  c|  a
  b|a
    )J");
  EXPECT_EQ(render_jinja(R"J({{ '<a href="x">&' | e }}|{{ 'hello big world' | wordcount }}|{{ 'hello' | capitalize }}|{{ 'a b' | title }})J", R"J({})J"),
            R"J(&lt;a href=&#34;x&#34;&gt;&amp;|3|Hello|A B)J");
  EXPECT_EQ(render_jinja(R"J({{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|{{ ms | rejectattr('role', 'equalto', 'user') | list | length }}|{{ ms | selectattr('x') | list }})J", R"J({"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c", "x": 1}]})J"),
            R"J(a,c|1|[{'role': 'user', 'content': 'c', 'x': 1}])J");
  EXPECT_EQ(render_jinja(R"J({{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3] | reject('odd') | list }}|{{ ['a', 'B'] | map('upper') | list }}|{{ ['x', 'code'] | reject('equalto', 'code') | join(', ') }})J", R"J({})J"),
            R"J([1, 3]|[2]|['A', 'B']|x)J");
  EXPECT_EQ(render_jinja(R"J({{ t | tojson }}|{{ 'é"\n<' | tojson }}|{{ none | tojson }}|{{ [1.0, true, 1e20] | tojson }})J", R"J({"t": {"b": 1, "a": [1, 2.5, "x"]}})J"),
            R"J({"b": 1, "a": [1, 2.5, "x"]}|"é\"\n<"|null|[1.0, true, 1e+20])J");
  EXPECT_EQ(render_jinja(R"J({{ t | tojson(indent=2) }}|{{ t | tojson(sort_keys=true) }}|{{ t | tojson(separators=(',', ':')) }}|{{ 'é' | tojson(ensure_ascii=true) }})J", R"J({"t": {"b": {"c": [1]}, "a": []}})J"),
            R"J({
  "b": {
    "c": [
      1
    ]
  },
  "a": []
}|{"a": [], "b": {"c": [1]}}|{"b":{"c":[1]},"a":[]}|"\u00e9")J");
  EXPECT_EQ(render_jinja(R"J({{ x | attr('a') }}|{{ [[1, 2], [3]] | map('length') | list }})J", R"J({"x": {"a": 5}})J"),
            R"J(|[2, 1])J");
}

TEST(JinjaFeatures, Tests) {
  EXPECT_EQ(render_jinja(R"J({{ 'x' is string }} {{ 1 is number }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ [] is sequence }} {{ none is none }} {{ 1 is integer }} {{ 1.0 is float }})J", R"J({})J"),
            R"J(True True True True True True True True True)J");
  EXPECT_EQ(render_jinja(R"J({{ true is boolean }} {{ 3 is odd }} {{ 4 is even }} {{ 4 is divisibleby 2 }} {{ x is not defined }} {{ x is undefined }} {{ 'ab' is lower }} {{ 'AB' is upper }})J", R"J({})J"),
            R"J(True True True True True True True True)J");
  EXPECT_EQ(render_jinja(R"J({{ 2 is eq 2 }} {{ 2 is equalto 3 }} {{ 2 is gt 1 }} {{ 2 is ge 3 }} {{ 2 is ne 3 }} {{ 2 is lt 3 }} {{ 'a' is in ['a'] }} {{ none is sameas none }})J", R"J({})J"),
            R"J(True False True False True True True True)J");
  EXPECT_EQ(render_jinja(R"J({{ not x is defined }} {{ c is none }} {{ c is not none }} {{ x is iterable }} {{ 1 is iterable }} {{ f is callable }} {{ true is true }} {{ 0 is false }})J", R"J({"c": null})J"),
            R"J(True True False True False True True False)J");
}

TEST(JinjaFeatures, Loops) {
  EXPECT_EQ(render_jinja(R"J({% for a in [3, 1, 2] if a > 1 %}{{ loop.index }}/{{ loop.length }}{{ loop.first }}{{ loop.last }};{% endfor %})J", R"J({})J"),
            R"J(1/2TrueFalse;2/2FalseTrue;)J");
  EXPECT_EQ(render_jinja(R"J({% for x in [1, 2, 3] %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.previtem }}-{{ loop.nextitem }}{{ loop.cycle('a', 'b') }};{% endfor %})J", R"J({})J"),
            R"J(032-2a;1211-3b;2102-a;)J");
  EXPECT_EQ(render_jinja(R"J({% for a in [] %}x{% else %}empty{% endfor %}|{% for a in none_list %}x{% endfor %})J", R"J({})J"),
            R"J(empty|)J");
  EXPECT_EQ(render_jinja(R"J({% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}|{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}|{% for c in 'ab' %}{{ c }}.{% endfor %})J", R"J({})J"),
            R"J(1234|xy|a.b.)J");
  EXPECT_EQ(render_jinja(R"J({% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}|{{ range(1, 7, 2) | list }})J", R"J({})J"),
            R"J(02|[1, 3, 5])J");
  EXPECT_EQ(render_jinja(R"J({% for m in messages[::-1] %}{% set index = (messages|length - 1) - loop.index0 %}{{ index }}{{ m }}{% endfor %})J", R"J({"messages": ["a", "b", "c"]})J"),
            R"J(2c1b0a)J");
  EXPECT_EQ(render_jinja(R"J({% for i in [1, 2] %}{% for j in [1, 2] %}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %})J", R"J({})J"),
            R"J(121;122;)J");
}

TEST(JinjaFeatures, Scoping) {
  EXPECT_EQ(render_jinja(R"J({% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }})J", R"J({})J"),
            R"J(231)J");
  EXPECT_EQ(render_jinja(R"J({% for i in [1, 2] %}{% if i == 2 %}[{{ y }}]{% endif %}{% set y = i %}{% endfor %})J", R"J({})J"),
            R"J([])J");
  EXPECT_EQ(render_jinja(R"J({% if true %}{% set z = 5 %}{% endif %}{{ z }})J", R"J({})J"),
            R"J(5)J");
  EXPECT_EQ(render_jinja(R"J({% set ns = namespace(a=1, b='x') %}{% for i in [1, 2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }})J", R"J({})J"),
            R"J(4x)J");
  EXPECT_EQ(render_jinja(R"J({% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set x %}inner{{ 1 }}{% endset %}[{{ x }}])J", R"J({})J"),
            R"J(12|[inner1])J");
  EXPECT_EQ(render_jinja(R"J({% set messages = messages[1:] %}{{ messages }})J", R"J({"messages": [1, 2, 3]})J"),
            R"J([2, 3])J");
}

TEST(JinjaFeatures, Macros) {
  EXPECT_EQ(render_jinja(R"J({% macro m(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(1, b=2) }}{{ m('x', 'y') }})J", R"J({})J"),
            R"J([1B][12][xy])J");
  EXPECT_EQ(render_jinja(R"J({% set g = 'G' %}{% macro show() %}{{ g }}{{ loop_var }}{% endmacro %}{% for loop_var in [1] %}{{ show() }}{% endfor %})J", R"J({})J"),
            R"J(G)J");
  EXPECT_EQ(render_jinja(R"J({% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }})J", R"J({})J"),
            R"J(3210)J");
}

TEST(JinjaFeatures, Whitespace) {
  EXPECT_EQ(render_jinja(R"J(  {% if true %}
  x
  {% endif %}
  y)J", R"J({})J"),
            R"J(  x
  y)J");
  EXPECT_EQ(render_jinja(R"J(a  {%- if true -%}  b  {%- endif -%}  c)J", R"J({})J"),
            R"J(abc)J");
  EXPECT_EQ(render_jinja(R"J({# c #}
x {#- c2 -#} y
)J", R"J({})J"),
            R"J(xy)J");
  EXPECT_EQ(render_jinja(R"J({% for m in ms %}
{{ m }}
{% endfor %}
)J", R"J({"ms": [1, 2]})J"),
            R"J(1
2
)J");
  EXPECT_EQ(render_jinja(R"J(a
  {%+ if true %}b{% endif +%}
c)J", R"J({})J"),
            R"J(a
  b
c)J");
  EXPECT_EQ(render_jinja(R"J({% raw %}{{ not rendered }}{% endraw %}|{%- raw -%}  {% x %}  {%- endraw %}|)J", R"J({})J"),
            R"J({{ not rendered }}|{% x %}|)J");
  EXPECT_EQ(render_jinja(R"J({{- '  a  ' -}}   
  {{ 'b' }}
)J", R"J({})J"),
            R"J(  a  b)J");
  EXPECT_EQ(render_jinja(R"J(	{% if true %}
	x
	{% endif %}
  {# c #}
  y {% if true %}z{% endif %}
)J", R"J({})J"),
            R"J(	x
  y z)J");
  EXPECT_EQ(render_jinja(R"J({%- for m in messages -%}
  {{- m.role }}: {{ m.content -}}
{%- endfor -%})J", R"J({"messages": [{"role": "u", "content": " a "}, {"role": "b", "content": "c"}]})J"),
            R"J(u:  a b: c)J");
}

TEST(JinjaFeatures, Globals) {
  EXPECT_EQ(render_jinja(R"J({{ namespace(a=1).a }}|{{ dict(a=1, b=2) }}|{{ range(3) | list }})J", R"J({})J"),
            R"J(1|{'a': 1, 'b': 2}|[0, 1, 2])J");
}

}  // namespace
