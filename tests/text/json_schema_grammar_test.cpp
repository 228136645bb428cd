// Structured outputs' grammars: the byte recognizer and the JSON Schema compiler. A text is
// accepted when every byte is and the state is then complete; prefixes of valid texts stay alive.
#include "text/json_schema_grammar.h"

#include <gtest/gtest.h>

#include "core/error.h"

using namespace dsinfer;
using json = nlohmann::ordered_json;

namespace {

bool accepts(const Grammar& g, std::string_view text) {
  GrammarState s(g);
  return s.accept(text) && s.complete();
}

// Every prefix of `text` is alive (the recognizer never rejects a text that can still become valid).
bool prefixes_alive(const Grammar& g, std::string_view text) {
  GrammarState s(g);
  for (char c : text)
    if (!s.accept(static_cast<uint8_t>(c))) return false;
  return true;
}

Grammar schema(const char* text) { return json_schema_grammar(json::parse(text)); }

std::string error_of(const char* text) {
  try {
    schema(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Grammar, RecognizesByteByByteAndKeepsEveryWay) {
  Grammar g;
  const int ab = g.literal("ab"), abc = g.literal("abc");
  const int root = g.add_rule();
  g.add_alternative(root, {GrammarElement::ref(ab)});
  g.add_alternative(root, {GrammarElement::ref(abc), GrammarElement::range('0', '9')});
  g.set_root(root);
  GrammarState s(g);
  EXPECT_TRUE(s.accept("ab"));
  EXPECT_TRUE(s.complete());  // "ab" is a sentence
  EXPECT_FALSE(s.closed());   // and "abc7" may still come
  EXPECT_FALSE(s.accept("x"));
  EXPECT_TRUE(s.accept("c"));  // a failed byte left the state as it was
  EXPECT_FALSE(s.complete());
  EXPECT_FALSE(s.accept("c7x"));  // all or nothing
  EXPECT_TRUE(s.accept("7"));
  EXPECT_TRUE(s.closed());
  // Up to 3 whitespace bytes before the texts (a reasoning model's blank lines after </think>).
  const Grammar lead = g.with_leading_whitespace(3);
  GrammarState l(lead);
  EXPECT_TRUE(l.accept(" \n ab") && l.complete());
  EXPECT_FALSE(GrammarState(lead).accept("    ab"));
  EXPECT_NO_THROW(lead.check());
}

TEST(JsonSchemaGrammar, JsonModeTakesAnyObjectAndOnlyObjects) {
  const Grammar g = json_object_grammar();
  for (const char* ok : {"{}", "{ }", R"({"a": 1})", R"({"a":[1,-2.5e+3,{"b":null}],"c":"x\"y\u00e9 é","d":true})",
                         "{\n  \"a\": {\n    \"b\": []\n  }\n}"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"[1]", "1", R"({"a" 1})", R"({"a":1,})", R"({"a":01})", R"({"a":"\q"})", "{'a':1}",
                          R"({"a":"line
break"})",
                          R"({"a":1}})"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  EXPECT_FALSE(accepts(g, "{\"a\":\"\xff\"}"));          // not UTF-8
  EXPECT_FALSE(accepts(g, "{\"a\":\"\xe0\x80\x80\"}"));  // overlong
  EXPECT_FALSE(accepts(g, "{\"a\":\"\xed\xa0\x80\"}"));  // a surrogate
  EXPECT_TRUE(accepts(g, "{\"a\":\"\xf0\x9f\x98\x80\", \"n\": [-0, 1e5, 0.5, -1.25E-3]}"));
  EXPECT_TRUE(prefixes_alive(g, R"({"a": [1, {"b": "c)"));
  // Whitespace runs are bounded, so a model cannot pad forever.
  EXPECT_TRUE(accepts(g, "{" + std::string(20, ' ') + "}"));
  EXPECT_FALSE(accepts(g, "{" + std::string(21, ' ') + "}"));
}

TEST(JsonSchemaGrammar, PropertiesInOrderTheRequiredOnesAlways) {
  const Grammar g = schema(R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                               "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]})");
  for (const char* ok : {R"({"name": "x"})", R"({"name":"x","age":3})", R"({"name":"x","tags":["a","b"]})",
                         R"({"name": "x", "age": -40, "tags": []})"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"{}", R"({"age":3})", R"({"age":3,"name":"x"})", R"({"name":"x","age":3.5})",
                          R"({"name":"x","other":1})", R"({"name":7})", R"({"name":"x","tags":[1]})"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  GrammarState s(g);
  ASSERT_TRUE(s.accept(R"({"name":"x"})"));
  EXPECT_TRUE(s.closed());  // the object is done: only the end may follow
  // All optional: the empty object, and any of them skipped in the middle.
  const Grammar optional = schema(R"({"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {}}})");
  for (const char* ok : {"{}", R"({"a":1,"c":null})", R"({"b":2})", R"({"a":1,"b":2,"c":[]})"})
    EXPECT_TRUE(accepts(optional, ok)) << ok;
  EXPECT_FALSE(accepts(optional, R"({"c":1,"a":1})"));
}

TEST(JsonSchemaGrammar, ValuesCountsAndChoices) {
  EXPECT_TRUE(accepts(schema(R"({"enum": ["red", 2, null, {"a": [true]}]})"), R"({"a":[true]})"));
  EXPECT_FALSE(accepts(schema(R"({"enum": ["red", 2]})"), R"("blue")"));
  EXPECT_TRUE(accepts(schema(R"({"const": "yes"})"), R"("yes")"));
  const Grammar either = schema(R"({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]})");
  EXPECT_TRUE(accepts(either, "12"));
  EXPECT_TRUE(accepts(either, R"("ab")"));
  EXPECT_FALSE(accepts(either, R"("abc")"));
  EXPECT_FALSE(accepts(either, "1.5"));
  const Grammar nullable = schema(R"({"type": ["number", "null"]})");
  EXPECT_TRUE(accepts(nullable, "null"));
  EXPECT_TRUE(accepts(nullable, "0.25"));
  const Grammar pair = schema(R"({"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 3})");
  EXPECT_FALSE(accepts(pair, "[true]"));
  EXPECT_TRUE(accepts(pair, "[true, false]"));
  EXPECT_TRUE(accepts(pair, "[true,false,true]"));
  EXPECT_FALSE(accepts(pair, "[true,false,true,true]"));
  const Grammar word = schema(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_FALSE(accepts(word, R"("a")"));
  EXPECT_TRUE(accepts(word, R"("é\n")"));  // characters, not bytes
  EXPECT_FALSE(accepts(word, R"("abcd")"));
  EXPECT_TRUE(accepts(schema(R"({"type": "array", "minItems": 1})"), R"([1, "a", {}])"));
  EXPECT_FALSE(accepts(schema(R"({"type": "array", "minItems": 1})"), "[]"));
  EXPECT_TRUE(accepts(schema("{}"), "[1]"));
  EXPECT_TRUE(
      accepts(schema(R"({"type": "object", "additionalProperties": {"type": "integer"}})"), R"({"a":1,"b":2})"));
  EXPECT_FALSE(accepts(schema(R"({"type": "object", "additionalProperties": {"type": "integer"}})"), R"({"a":"1"})"));
}

TEST(JsonSchemaGrammar, ReferencesRecurse) {
  const Grammar tree = schema(R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
      "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
      "required": ["v"]}}})");
  EXPECT_TRUE(accepts(tree, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4}]}]})"));
  EXPECT_FALSE(accepts(tree, R"({"v":1,"kids":[{"kids":[]}]})"));
}

TEST(JsonSchemaGrammar, RefusesWhatItWouldNotEnforce) {
  EXPECT_NE(error_of(R"({"type": "string", "pattern": "^a"})").find("'pattern'"), std::string::npos);
  EXPECT_NE(error_of(R"({"properties": {"n": {"type": "integer", "minimum": 0}}})").find("#/properties/n"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"properties": {"a": {}}, "required": ["b"]})").find("'b'"), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref": "#/$defs/none"})").find("points nowhere"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": "array", "minItems": 3, "maxItems": 2})").find("exceeds"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": "tuple"})").find("unknown type"), std::string::npos);
  EXPECT_NE(error_of("false").find("expected an object"), std::string::npos);
  EXPECT_EQ(error_of(R"({"title": "T", "description": "d", "type": "string", "format": "date"})"), "");
  EXPECT_NE(error_of(R"({"$ref": "#foo"})").find("points nowhere"), std::string::npos);
  // What would be left unenforced beside a keyword that decides alone.
  EXPECT_NE(error_of(R"({"type": "object", "properties": {"a": {}}, "anyOf": [{"required": ["a"]}]})").find("beside"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"$ref": "#/$defs/a", "minItems": 1, "$defs": {"a": {}}})").find("beside"), std::string::npos);
  EXPECT_NE(error_of(R"({"required": ["a"]})").find("properties"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": "string", "enum": [1, 2]})").find("of its type"), std::string::npos);
  EXPECT_TRUE(accepts(schema(R"({"type": "string", "enum": ["a", 1]})"), R"("a")"));
  EXPECT_FALSE(accepts(schema(R"({"type": "string", "enum": ["a", 1]})"), "1"));
}

// Schemas the recognizer could not follow are refused up front, not left to hang a request.
TEST(JsonSchemaGrammar, RefusesLeftRecursionAndRunawayAmbiguity) {
  EXPECT_NE(error_of(R"({"$ref": "#"})").find("itself"), std::string::npos);
  EXPECT_NE(error_of(R"({"anyOf": [{"$ref": "#"}, {"type": "null"}]})").find("itself"), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}})")
                .find("itself"),
            std::string::npos);
  // Recursion through a value is fine.
  EXPECT_EQ(error_of(R"({"anyOf": [{"type": "array", "items": {"$ref": "#"}}, {"type": "null"}]})"), "");
  // 40 levels of two identical branches: 2^40 ways to expand the start.
  json defs = json::object();
  for (int i = 0; i < 40; ++i) {
    const json next = {{"$ref", "#/$defs/a" + std::to_string(i + 1)}};
    defs["a" + std::to_string(i)] = {{"anyOf", {next, next}}};
  }
  defs["a40"] = {{"type", "null"}};
  const Grammar g = json_schema_grammar({{"$ref", "#/$defs/a0"}, {"$defs", defs}});
  EXPECT_THROW(GrammarState{g}, Error);
}
