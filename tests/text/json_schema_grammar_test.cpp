// Structured outputs' grammars: the byte recognizer and the JSON Schema compiler. A text is
// accepted when every byte is and the state is then complete; prefixes of valid texts stay alive.
#include <gtest/gtest.h>

#include "core/error.h"
#include "text/json_schema_grammar.h"

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
  EXPECT_TRUE(s.complete());   // "ab" is a sentence
  EXPECT_FALSE(s.closed());    // and "abc7" may still come
  EXPECT_FALSE(s.accept("x"));
  EXPECT_TRUE(s.accept("c"));  // a failed byte left the state as it was
  EXPECT_FALSE(s.complete());
  EXPECT_FALSE(s.accept("c7x"));  // all or nothing
  EXPECT_TRUE(s.accept("7"));
  EXPECT_TRUE(s.closed());
}

TEST(JsonSchemaGrammar, JsonModeTakesAnyObjectAndOnlyObjects) {
  const Grammar g = json_object_grammar();
  for (const char* ok : {"{}", "{ }", R"({"a": 1})", R"({"a":[1,-2.5e+3,{"b":null}],"c":"x\"y\u00e9 é","d":true})",
                         "{\n  \"a\": {\n    \"b\": []\n  }\n}"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"[1]", "1", R"({"a" 1})", R"({"a":1,})", R"({"a":01})", R"({"a":"\q"})", "{'a':1}",
                          R"({"a":"line
break"})", R"({"a":1}})"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  EXPECT_FALSE(accepts(g, "{\"a\":\"\xff\"}"));  // not UTF-8
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
  EXPECT_TRUE(accepts(schema(R"({"type": "object", "additionalProperties": {"type": "integer"}})"), R"({"a":1,"b":2})"));
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
}
