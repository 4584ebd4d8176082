// Unit tests of llmctl's Jinja-subset interpreter: expressions, filters,
// tests, statements, whitespace control and error positions. Expected
// strings are what Jinja 3.1 renders with trim_blocks and lstrip_blocks on
// (transformers' chat-template environment).
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "runtime/tokenizer/chat_template.h"
#include "runtime/tokenizer/jinja_template.h"

using llmctl::tokenizer::ChatRenderOptions;
using llmctl::tokenizer::ChatTemplate;
namespace jinja = llmctl::tokenizer::jinja;

namespace {

// Renders `source` with `vars` (a JSON object) as the template's variables.
std::string render(const std::string& source, const std::string& vars = "{}") {
  auto t = jinja::Template::parse(source, "t");
  REQUIRE_MESSAGE(t.is_ok(), t.status().to_string());
  jinja::RenderContext ctx;
  jinja::Value v = jinja::Value::from_json(nlohmann::ordered_json::parse(vars));
  ctx.variables = *v.dict;
  auto r = (*t)->render(ctx);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return r.value();
}

// The error message of a template that fails to parse or render.
std::string error_of(const std::string& source, const std::string& vars = "{}") {
  auto t = jinja::Template::parse(source, "t");
  if (!t.is_ok()) return t.status().message();
  jinja::RenderContext ctx;
  ctx.variables = *jinja::Value::from_json(nlohmann::ordered_json::parse(vars)).dict;
  auto r = (*t)->render(ctx);
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

}  // namespace

TEST_CASE("expressions: arithmetic, comparison, logic, precedence") {
  CHECK(render("{{ 1 + 2 * 3 }}") == "7");
  CHECK(render("{{ (1 + 2) * 3 }}") == "9");
  CHECK(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}") == "3 -4 1 2 3.5 1024");
  CHECK(render("{{ 1 ~ 2 ~ 'a' }}") == "12a");
  CHECK(render("{{ 'a' + 'b' | upper }}") == "aB");  // filters bind tighter than +
  CHECK(render("{{ 1 < 2 and 2 <= 2 and not 3 == 4 }}") == "True");
  CHECK(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}") == "True False");
  CHECK(render("{{ none or 'x' }} {{ 0 and 1 }}") == "x 0");
  CHECK(render("{{ 'yes' if x else 'no' }}|{{ 'y' if x }}|", R"({"x": false})") == "no||");
  CHECK(render("{{ 1 == 1.0 }} {{ true == 1 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 1.5e16 }}") ==
        "True True 0.30000000000000004 1e-05 1.5e+16");
  CHECK(render("{{ 'b' in 'abc' }} {{ 2 not in [1, 3] }} {{ 'k' in {'k': 1} }}") == "True True True");
  CHECK(render("{{ -x }} {{ - 2 ** 2 }}", R"({"x": 3})") == "-3 4");  // Jinja: unary minus binds tighter than **
}

TEST_CASE("literals and Python-style printing") {
  CHECK(render("{{ [1, 'a', none, true, 2.0] }}") == "[1, 'a', None, True, 2.0]");
  CHECK(render("{{ {'a': 1, 'b': [\"it's\"]} }}") == "{'a': 1, 'b': [\"it's\"]}");
  CHECK(render("{{ (1,) }} {{ (1, 2) }} {{ () }}") == "(1,) (1, 2) ()");
  CHECK(render("{{ 'a\\n\\t\\u00e9\\x41' }}") == "a\n\té" "A");
  CHECK(render("{{ 'ab' 'cd' }}") == "abcd");
  CHECK(render("{{ missing }}|{{ missing is defined }}") == "|False");
}

TEST_CASE("subscripts and slices follow Python") {
  const char* vars = R"({"l": [0, 1, 2, 3, 4], "s": "héllo", "d": {"k": "v"}})";
  CHECK(render("{{ l[1:3] }} {{ l[::-1] }} {{ l[-2:] }} {{ l[::2] }} {{ l[3:0:-1] }}", vars) ==
        "[1, 2] [4, 3, 2, 1, 0] [3, 4] [0, 2, 4] [3, 2, 1]");
  CHECK(render("{{ s[1] }} {{ s[:-1] }} {{ s[::-1] }} {{ l[-1] }} {{ l.0 }}", vars) == "é héll olléh 4 0");
  CHECK(render("{{ d.k }} {{ d['k'] }} {{ d.missing }}|{{ l[10] }}|", vars) == "v v ||");
}

TEST_CASE("string methods") {
  CHECK(render("{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\na'.lstrip('\\n') }}|{{ 'a  '.rstrip() }}") ==
        "x|a|a|a");
  CHECK(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a<b>c'.split('<b>')[-1] }}") ==
        "['a', 'b', '', 'c'] ['a', 'b'] c");
  CHECK(render("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }}") == "True True");
  CHECK(render("{{ 'aaa'.replace('a', 'b', 2) }} {{ 'Hi There'.upper() }} {{ 'Hi'.lower() }} {{ 'hello world'.title() }}") ==
        "bba HI THERE hi Hello World");
  CHECK(render("{{ '-'.join(['a', 'b']) }} {{ 'abc'.find('c') }}") == "a-b 2");
}

TEST_CASE("dict methods, items and sandbox refusal of mutation") {
  const char* vars = R"({"d": {"b": 1, "a": 2}})";
  CHECK(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", vars) == "b=1;a=2;");
  CHECK(render("{{ d.keys() | list }} {{ d.values() | list }} {{ d.get('a') }} {{ d.get('z', 9) }} {{ d.get('z') }}",
               vars) == "['b', 'a'] [1, 2] 2 9 None");
  CHECK(error_of("{% set l = [] %}{{ l.append(1) }}").find("access to attribute 'append' of 'list' object is unsafe") !=
        std::string::npos);
}

TEST_CASE("filters") {
  const char* vars = R"({"msgs": [{"role": "user", "n": 2}, {"role": "bot", "n": 1}, {"role": "user", "n": 3}]})";
  CHECK(render("{{ '  x ' | trim }}|{{ [1,2,3] | length }}|{{ 'abc' | count }}|{{ none | string }}") == "x|3|3|None");
  CHECK(render("{{ x | default('d') }} {{ '' | default('d', true) }} {{ 0 | d('z') }}") == "d d 0");
  CHECK(render("{{ [1, 2] | join(', ') }} {{ [1, 2] | first }} {{ [1, 2] | last }} {{ 'ab' | list }}") ==
        "1, 2 1 2 ['a', 'b']");
  CHECK(render("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='n') | list }}", vars) == "[2, 3]");
  CHECK(render("{{ msgs | rejectattr('role', 'eq', 'user') | list | length }}", vars) == "1");
  CHECK(render("{{ [1, 2, 3, 4] | select('even') | list }} {{ [0, 1, ''] | reject | list }}") == "[2, 4] [0, '']");
  CHECK(render("{{ ['a', 'b'] | map('upper') | join }}") == "AB");
  CHECK(render("{{ '3' | int + 1 }} {{ 'x' | int }} {{ '2.5' | float }} {{ 3 | float }}") == "4 0 2.5 3.0");
  CHECK(render("{{ 'hello WORLD' | capitalize }} {{ 'ab' | replace('a', 'x') }} {{ 'a b' | title }}") ==
        "Hello world xb A B");
  CHECK(render("{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}") == "a\n  b\n\n  c|  a\n  b");
  CHECK(render("{{ {'b': 1, 'A': 2} | dictsort }} {{ [3, 1, 2] | sort }} {{ [1, 1, 2] | unique | list }}") ==
        "[('A', 2), ('b', 1)] [1, 2, 3] [1, 2]");
  CHECK(render("{{ {'a': 1} | items | list }} {{ [1, 2] | sum }} {{ [3, 1] | min }} {{ [3, 1] | max }}") ==
        "[('a', 1)] 3 1 3");
}

TEST_CASE("tojson matches Python's json.dumps as transformers configures it") {
  const char* vars = R"({"v": {"z": "é\"\n", "a": [1, 2.0, null, true, 1e-7], "e": {}, "l": []}})";
  CHECK(render("{{ v | tojson }}", vars) ==
        R"({"z": "é\"\n", "a": [1, 2.0, null, true, 1e-07], "e": {}, "l": []})");
  CHECK(render("{{ v.a | tojson(indent=2) }}", vars) == "[\n  1,\n  2.0,\n  null,\n  true,\n  1e-07\n]");
  CHECK(render("{{ v | tojson(separators=(',', ':'), sort_keys=true) }}", vars) ==
        R"({"a":[1,2.0,null,true,1e-07],"e":{},"l":[],"z":"é\"\n"})");
  CHECK(render("{{ 'é<' | tojson(ensure_ascii=true) }}") == R"("\u00e9<")");
}

TEST_CASE("tests (is / is not)") {
  CHECK(render("{{ x is none }} {{ x is not none }} {{ y is defined }} {{ y is undefined }}", R"({"x": null})") ==
        "True False False True");
  CHECK(render("{{ 's' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 's' is sequence }} {{ 1 is number }}") ==
        "True True True True True");
  CHECK(render("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ true is boolean }} {{ 1.0 is float }}") ==
        "True False True True True");
  CHECK(render("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'a' is equalto 'a' }} {{ 2 is in [1, 2] }}") ==
        "True True True True True");
}

TEST_CASE("statements: for/loop, if/elif/else, set, namespace, macro, break/continue") {
  CHECK(render("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}"
               "{{ loop.last }}{{ loop.length }};{% endfor %}") ==
        "103TrueFalse3;212FalseFalse3;321FalseTrue3;");
  CHECK(render("{% for x in [] %}a{% else %}empty{% endfor %}") == "empty");
  CHECK(render("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.last }}{% endfor %}") == "2False4True");
  CHECK(render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}"
               "{{ x }}{% endfor %}") == "13");
  CHECK(render("{% if x == 1 %}a{% elif x == 2 %}b{% else %}c{% endif %}", R"({"x": 2})") == "b");
  CHECK(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}") == "1");  // loop scope
  CHECK(render("{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}") ==
        "4");
  CHECK(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}") == "21");
  CHECK(render("{% set blk %}in {{ 1 + 1 }}{% endset %}[{{ blk }}]") == "[in 2]");
  CHECK(render("{% macro greet(name, punct='!') %}hi {{ name }}{{ punct }}{% endmacro %}{{ greet('bo') }} "
               "{{ greet('al', punct='?') }}") == "hi bo! hi al?");
  CHECK(render("{% for i in range(3) %}{{ i }}{% endfor %}{{ range(1, 7, 2) | list }}") == "012[1, 3, 5]");
  CHECK(render("{% filter upper %}abc{% endfilter %}") == "ABC");
  CHECK(render("{% raw %}{{ not rendered }}{% endraw %}") == "{{ not rendered }}");
  CHECK(render("{% generation %}kept{% endgeneration %}") == "kept");
}

TEST_CASE("whitespace control as transformers' environment (trim_blocks, lstrip_blocks)") {
  CHECK(render("a\n  {% if true %}\n    b\n  {% endif %}\nc") == "a\n    b\nc");
  CHECK(render("a  {{- ' b ' -}}  c") == "a b c");
  CHECK(render("a\n{%- if true -%}\n  b\n{%- endif %}") == "ab");
  CHECK(render("{# comment #}\nx  {#- c -#}  y") == "xy");
  CHECK(render("  {%+ if true %}x{% endif %}") == "  x");
  CHECK(render("{% if true +%}\nx{% endif %}") == "\nx");
  CHECK(render("x {% if true %}y{% endif %}") == "x y");  // not at line start: kept
  CHECK(render("line\n") == "line");                     // one trailing newline is dropped
  CHECK(render("a\r\nb") == "a\nb");
}

TEST_CASE("undefined: printing is empty, attribute access is an error") {
  CHECK(render("[{{ nope }}]") == "[]");
  CHECK(render("{% for x in nope %}x{% endfor %}{{ nope | length }}") == "0");
  CHECK(error_of("{{ nope.attr }}") == "t:1:8: 'nope' is undefined");
  CHECK(error_of("{{ d.x.y }}", R"({"d": {}})") == "t:1:7: 'dict object' has no attribute 'x'");
  CHECK(error_of("{{ 'a' + x }}") == "t:1:8: 'x' is undefined");
}

TEST_CASE("errors name the template line and column") {
  CHECK(error_of("ok\n{% frobnicate %}") == "t:2:4: unsupported statement 'frobnicate'");
  CHECK(error_of("{{ 1 + }}") == "t:1:8: unexpected end of tag, expected an expression");
  CHECK(error_of("a\n  {% if x %}never closed") == "t:2:3: unexpected end of template, expected 'elif' or 'else' or 'endif' to close this tag");
  CHECK(error_of("{{ 'open }}") == "t:1:4: unterminated string literal");
  CHECK(error_of("{# open") == "t:1:1: Missing end of comment tag");
  CHECK(error_of("{{ x | nofilter }}") == "t:1:6: unknown filter 'nofilter'");
  CHECK(error_of("{{ 1 + 'a' }}") == "t:1:6: unsupported operand type(s) for +: 'int' and 'str'");
  CHECK(error_of("\n\n   {{ raise_exception('Roles must alternate') }}") ==
        "Roles must alternate (raised by t:3:7)");
  CHECK(error_of("{% set l = [] %}{% set l.x = 1 %}") == "t:1:17: cannot assign attribute on non-namespace object");
}

TEST_CASE("ChatTemplate: special tokens, kwargs, strftime_now and message normalization") {
  auto t = ChatTemplate::from_string(
      "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}|{{ m.reasoning_content }}|"
      "{{ 'content' in m }};{% endfor %}{{ strftime_now('%Y-%m-%d') }}{{ extra }}{{ eos_token }}",
      {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  REQUIRE(t.is_ok());
  ChatRenderOptions opts;
  opts.kwargs = nlohmann::ordered_json::parse(R"({"extra": "!", "eos_token": "<E>"})");
  opts.now = [] {
    std::tm tm{};
    tm.tm_year = 99;
    tm.tm_mon = 11;
    tm.tm_mday = 31;
    return tm;
  };
  auto r = t->render(nlohmann::ordered_json::parse(
                         R"([{"role": "user", "content": null}, {"role": "assistant", "content": "a", "reasoning": "r"}])"),
                     opts);
  REQUIRE(r.is_ok());
  CHECK(r.value() == "<s>user:||False;assistant:a|r|True;1999-12-31!<E>");
}

// Recursive loops, call blocks with caller(...) and %-formatting, against
// jinja2 itself: tests/fixtures/chat_template/generate_jinja_cases.py.
TEST_CASE("recursive loops, call blocks and %-formatting render as jinja2 does") {
  std::ifstream in(std::string(LLMCTL_SOURCE_DIR) + "/tests/fixtures/chat_template/jinja_cases.json");
  REQUIRE(in.good());
  const auto fixture = nlohmann::ordered_json::parse(in);
  REQUIRE(fixture["cases"].size() >= 40);
  for (const auto& c : fixture["cases"]) {
    const std::string source = c["template"].get<std::string>();
    INFO("template: " << source);
    auto t = jinja::Template::parse(source, "t");
    REQUIRE_MESSAGE(t.is_ok(), t.status().to_string());
    jinja::RenderContext ctx;
    ctx.variables = *jinja::Value::from_json(c["vars"]).dict;
    auto r = (*t)->render(ctx);
    if (c.contains("output")) {
      REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
      CHECK(r.value() == c["output"].get<std::string>());
      continue;
    }
    REQUIRE_FALSE(r.is_ok());
    std::string want = c["error"].get<std::string>();
    // Jinja names the anonymous macro behind caller() "None".
    if (want.rfind("macro None ", 0) == 0) want.replace(0, 10, "caller");
    CHECK_MESSAGE(r.status().message().find(want) != std::string::npos, r.status().message());
  }
}

TEST_CASE("runaway recursion over user data is an error, not a stack overflow") {
  // 300 levels of nesting, deeper than the interpreter allows.
  std::string nested = "[]";
  for (int i = 0; i < 300; ++i) nested = "[" + nested + "]";
  CHECK(error_of("{% for x in t recursive %}{{ loop(x) }}{% endfor %}", R"({"t": )" + nested + "}").find(
            "nested deeper than") != std::string::npos);
  CHECK(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("nested deeper than") !=
        std::string::npos);
}
