#include "text/json_schema_grammar.h"

#include <map>
#include <set>
#include <string>

#include "core/error.h"

namespace dsinfer {
namespace {

using json = nlohmann::ordered_json;
using Seq = Grammar::Sequence;
using E = GrammarElement;

constexpr int kMaxWhitespace = 20;     // bytes of whitespace in a row
constexpr int64_t kMaxCounted = 4096;  // the largest minItems / maxItems / length spelled out

void append(Seq& s, std::string_view text) {
  for (char c : text) s.push_back(E::bytes(std::string_view(&c, 1)));
}

class SchemaCompiler {
 public:
  SchemaCompiler(Grammar& g, const json& root) : g_(g), root_(root) {}

  int compile() { return value(root_, "#"); }
  // Any JSON object (JSON mode).
  int any_object() { return object_of(any()); }

 private:
  // A rule with these alternatives.
  int rule(std::vector<Seq> alternatives) {
    const int r = g_.add_rule();
    for (Seq& a : alternatives) g_.add_alternative(r, std::move(a));
    return r;
  }

  int ws() {
    if (ws_ >= 0) return ws_;
    int next = rule({Seq{}});
    for (int i = 0; i < kMaxWhitespace; ++i) next = rule({Seq{}, Seq{E::bytes(" \t\n\r"), E::ref(next)}});
    return ws_ = next;
  }

  // One character of a JSON string: unescaped (UTF-8, well formed) or an escape.
  int string_char() {
    if (char_ >= 0) return char_;
    const E cont = E::range(0x80, 0xbf), hex = E::range('0', '9').add('a', 'f').add('A', 'F');
    E plain = E::range(0x20, 0x7f);
    plain.set['"' >> 6] &= ~(uint64_t{1} << ('"' & 63));
    plain.set['\\' >> 6] &= ~(uint64_t{1} << ('\\' & 63));
    // Well-formed UTF-8 only: no overlong forms, surrogates or code points past U+10FFFF.
    return char_ = rule(
               {Seq{plain}, Seq{E::range(0xc2, 0xdf), cont}, Seq{E::bytes("\xe0"), E::range(0xa0, 0xbf), cont},
                Seq{E::range(0xe1, 0xec), cont, cont}, Seq{E::bytes("\xed"), E::range(0x80, 0x9f), cont},
                Seq{E::range(0xee, 0xef), cont, cont}, Seq{E::bytes("\xf0"), E::range(0x90, 0xbf), cont, cont},
                Seq{E::range(0xf1, 0xf3), cont, cont, cont}, Seq{E::bytes("\xf4"), E::range(0x80, 0x8f), cont, cont},
                Seq{E::bytes("\\"), E::bytes("\"\\/bfnrt")}, Seq{E::bytes("\\"), E::bytes("u"), hex, hex, hex, hex}});
  }

  // Between min and max (-1: no bound) copies of `item` (its elements), each after the first
  // preceded by `separator`.
  int repeat(const Seq& item, const Seq& separator, int64_t min, int64_t max) {
    const bool unbounded = max < 0;
    const int64_t top = unbounded ? std::max<int64_t>(min, 1) : max;
    auto then = [&](int next) {  // separator, item, then `next`
      Seq s = separator;
      s.insert(s.end(), item.begin(), item.end());
      s.push_back(E::ref(next));
      return s;
    };
    // after[k]: what may follow k items; unbounded, the last loops.
    std::vector<int> after(static_cast<size_t>(top) + 1);
    for (int64_t k = top; k >= 1; --k) {
      if (unbounded && k == top) {
        after[k] = g_.add_rule();
        g_.add_alternative(after[k], then(after[k]));
        g_.add_alternative(after[k], Seq{});
        continue;
      }
      std::vector<Seq> alts;
      if (k < top) alts.push_back(then(after[k + 1]));
      if (k >= min) alts.push_back(Seq{});
      after[k] = rule(std::move(alts));
    }
    std::vector<Seq> first;
    if (top >= 1) {
      Seq s = item;
      s.push_back(E::ref(after[1]));
      first.push_back(std::move(s));
    }
    if (min == 0) first.push_back(Seq{});
    return rule(std::move(first));
  }

  int string_rule(int64_t min_length, int64_t max_length) {
    Seq s;
    append(s, "\"");
    s.push_back(E::ref(repeat(Seq{E::ref(string_char())}, Seq{}, min_length, max_length)));
    append(s, "\"");
    return rule({s});
  }

  int any_string() { return string_ >= 0 ? string_ : string_ = string_rule(0, -1); }

  int integer_part() {
    if (int_ >= 0) return int_;
    const int digits = repeat(Seq{E::range('0', '9')}, Seq{}, 0, -1);
    return int_ =
               rule({Seq{E::bytes("-"), E::bytes("0")}, Seq{E::bytes("0")},
                     Seq{E::bytes("-"), E::range('1', '9'), E::ref(digits)}, Seq{E::range('1', '9'), E::ref(digits)}});
  }

  int number() {
    if (number_ >= 0) return number_;
    const int digits = repeat(Seq{E::range('0', '9')}, Seq{}, 1, -1);
    const int frac = rule({Seq{}, Seq{E::bytes("."), E::ref(digits)}});
    const int exp =
        rule({Seq{}, Seq{E::bytes("eE"), E::ref(digits)}, Seq{E::bytes("eE"), E::bytes("+-"), E::ref(digits)}});
    return number_ = rule({Seq{E::ref(integer_part()), E::ref(frac), E::ref(exp)}});
  }

  int any() {
    if (any_ >= 0) return any_;
    any_ = g_.add_rule();  // recursive: objects and arrays hold values
    for (int r : {object_of(any_), array_of(any_, 0, -1), any_string(), number(), g_.literal("true"),
                  g_.literal("false"), g_.literal("null")})
      g_.add_alternative(any_, Seq{E::ref(r)});
    return any_;
  }

  // '{' ws ( '}' | member (ws ',' ws member)* ws '}' ), members of any key and `value` values.
  int object_of(int value) {
    Seq member{E::ref(any_string()), E::ref(ws())};
    append(member, ":");
    member.push_back(E::ref(ws()));
    member.push_back(E::ref(value));
    Seq sep{E::ref(ws())};
    append(sep, ",");
    sep.push_back(E::ref(ws()));
    return bracketed("{", "}", member, sep, 0, -1);
  }

  int array_of(int item, int64_t min, int64_t max) {
    Seq sep{E::ref(ws())};
    append(sep, ",");
    sep.push_back(E::ref(ws()));
    return bracketed("[", "]", Seq{E::ref(item)}, sep, min, max);
  }

  // open ws ( close | items ws close ), with no two whitespace rules side by side.
  int bracketed(std::string_view open, std::string_view close, const Seq& item, const Seq& sep, int64_t min,
                int64_t max) {
    Seq head;
    append(head, open);
    head.push_back(E::ref(ws()));
    std::vector<Seq> alts;
    if (min == 0) {
      Seq empty = head;
      append(empty, close);
      alts.push_back(std::move(empty));
    }
    if (max != 0) {
      Seq full = head;
      full.push_back(E::ref(repeat(item, sep, std::max<int64_t>(min, 1), max)));
      full.push_back(E::ref(ws()));
      append(full, close);
      alts.push_back(std::move(full));
    }
    return rule(std::move(alts));
  }

  // An object of the schema's properties, in order, the required ones always.
  int object_with(const json& props, const std::set<std::string>& required, const std::string& path) {
    std::vector<std::pair<std::string, bool>> keys;
    std::vector<int> values;
    for (auto it = props.begin(); it != props.end(); ++it) {
      keys.emplace_back(it.key(), required.count(it.key()) > 0);
      values.push_back(value(it.value(), path + "/properties/" + it.key()));
    }
    for (const std::string& r : required)
      if (!props.contains(r)) fail("JSON schema at ", path, ": required property '", r, "' is not in its properties");
    const size_t n = keys.size();
    auto member = [&](size_t i) {
      Seq m;
      append(m, json(keys[i].first).dump());
      m.push_back(E::ref(ws()));
      append(m, ":");
      m.push_back(E::ref(ws()));
      m.push_back(E::ref(values[i]));
      return m;
    };
    // after[i]: a member was written, properties i.. remain; first[i]: none written yet.
    std::vector<int> after(n + 1), first(n + 1);
    after[n] = rule({Seq{}});
    first[n] = rule({});
    for (size_t i = n; i-- > 0;) {
      Seq next{E::ref(ws())};
      append(next, ",");
      next.push_back(E::ref(ws()));
      Seq m = member(i);
      next.insert(next.end(), m.begin(), m.end());
      next.push_back(E::ref(after[i + 1]));
      std::vector<Seq> a{next};
      Seq f = m;
      f.push_back(E::ref(after[i + 1]));
      std::vector<Seq> b{f};
      if (!keys[i].second) a.push_back(Seq{E::ref(after[i + 1])}), b.push_back(Seq{E::ref(first[i + 1])});
      after[i] = rule(std::move(a));
      first[i] = rule(std::move(b));
    }
    Seq head;
    append(head, "{");
    head.push_back(E::ref(ws()));
    std::vector<Seq> alts;
    if (required.empty()) {
      Seq empty = head;
      append(empty, "}");
      alts.push_back(std::move(empty));
    }
    Seq full = head;
    full.push_back(E::ref(first[0]));
    full.push_back(E::ref(ws()));
    append(full, "}");
    alts.push_back(std::move(full));
    return rule(std::move(alts));
  }

  static int64_t count(const json& s, const char* key, int64_t fallback, const std::string& path) {
    if (!s.contains(key)) return fallback;
    if (!s[key].is_number_integer() || s[key].get<int64_t>() < 0 || s[key].get<int64_t>() > kMaxCounted)
      fail("JSON schema at ", path, ": ", key, " must be an integer 0..", kMaxCounted);
    return s[key].get<int64_t>();
  }

  // [min, max] of a count (max -1: none), checked in order.
  static std::pair<int64_t, int64_t> bounds(const json& s, const char* min_key, const char* max_key,
                                            const std::string& path) {
    const int64_t min = count(s, min_key, 0, path), max = count(s, max_key, -1, path);
    if (max >= 0 && min > max) fail("JSON schema at ", path, ": ", min_key, " ", min, " exceeds ", max_key, " ", max);
    return {min, max};
  }

  int typed(const std::string& type, const json& s, const std::string& path) {
    if (type == "string") {
      const auto [min, max] = bounds(s, "minLength", "maxLength", path);
      return min == 0 && max < 0 ? any_string() : string_rule(min, max);
    }
    if (type == "number") return number();
    if (type == "integer") return integer_part();
    if (type == "boolean") return rule({Seq{E::ref(g_.literal("true"))}, Seq{E::ref(g_.literal("false"))}});
    if (type == "null") return g_.literal("null");
    if (type == "array") {
      const int item = s.contains("items") ? value(s["items"], path + "/items") : any();
      const auto [min, max] = bounds(s, "minItems", "maxItems", path);
      return array_of(item, min, max);
    }
    if (type == "object") {
      if (s.contains("properties")) {
        std::set<std::string> required;
        for (const json& r : s.value("required", json::array())) {
          if (!r.is_string()) fail("JSON schema at ", path, ": required must list property names");
          required.insert(r.get<std::string>());
        }
        if (!s["properties"].is_object()) fail("JSON schema at ", path, ": properties must be an object");
        return object_with(s["properties"], required, path);
      }
      const json extra = s.value("additionalProperties", json(true));
      if (extra == json(false)) return rule({Seq{E::bytes("{"), E::ref(ws()), E::bytes("}")}});
      return object_of(value(extra, path + "/additionalProperties"));
    }
    fail("JSON schema at ", path, ": unknown type '", type, "'");
  }

  static bool annotation(const std::string& key) {
    static const std::set<std::string> keys = {
        "title",     "description",      "default",        "examples",    "format",     "$schema",
        "$id",       "$comment",         "$defs",          "definitions", "deprecated", "readOnly",
        "writeOnly", "contentMediaType", "contentEncoding"};
    return keys.count(key) > 0;
  }

  // Every keyword is one the compiler enforces or an annotation; a keyword that decides the value
  // alone ($ref, enum, const, anyOf, oneOf, allOf) has no other beside it but `type` for enum and
  // const (whose values are then kept to the type), so nothing given is left unenforced.
  void check_keywords(const json& s, const std::string& path) {
    static const std::set<std::string> handled = {"type",      "properties", "required", "additionalProperties",
                                                  "items",     "minItems",   "maxItems", "minLength",
                                                  "maxLength", "enum",       "const",    "anyOf",
                                                  "oneOf",     "allOf",      "$ref"};
    static const std::set<std::string> alone = {"$ref", "enum", "const", "anyOf", "oneOf", "allOf"};
    std::vector<std::string> assertions;
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (annotation(it.key())) continue;
      if (!handled.count(it.key()))
        fail("JSON schema at ", path, ": keyword '", it.key(), "' is not supported (it would not be enforced)");
      assertions.push_back(it.key());
    }
    for (const std::string& a : assertions) {
      if (!alone.count(a)) continue;
      for (const std::string& b : assertions)
        if (b != a && !((a == "enum" || a == "const") && b == "type"))
          fail("JSON schema at ", path, ": '", a, "' beside '", b, "' is not supported (only one would be enforced)");
    }
    if (s.contains("required") && !s.contains("properties"))
      fail("JSON schema at ", path, ": 'required' needs the properties it names");
  }

  // The enum / const values of a schema that also gives a type, kept to that type.
  static bool of_type(const json& v, const json& type) {
    if (type.is_array()) {
      for (const json& t : type)
        if (of_type(v, t)) return true;
      return false;
    }
    const std::string t = type.is_string() ? type.get<std::string>() : "";
    return (t == "string" && v.is_string()) || (t == "integer" && v.is_number_integer()) ||
           (t == "number" && v.is_number()) || (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null()) ||
           (t == "array" && v.is_array()) || (t == "object" && v.is_object());
  }

  int value(const json& s, const std::string& path) {
    if (s == json(true) || (s.is_object() && s.empty())) return any();
    if (!s.is_object()) fail("JSON schema at ", path, ": expected an object or true, got ", s.dump());
    check_keywords(s, path);
    if (s.contains("$ref")) return reference(s["$ref"], path);
    if (s.contains("const") || s.contains("enum")) {
      const json values = s.contains("const") ? json::array({s["const"]}) : s["enum"];
      if (!values.is_array() || values.empty()) fail("JSON schema at ", path, ": enum must be a non-empty array");
      std::vector<Seq> alts;
      for (const json& v : values)
        if (!s.contains("type") || of_type(v, s["type"])) alts.push_back(Seq{E::ref(g_.literal(v.dump()))});
      if (alts.empty()) fail("JSON schema at ", path, ": no enum / const value is of its type");
      return rule(std::move(alts));
    }
    for (const char* key : {"anyOf", "oneOf"})
      if (s.contains(key)) {
        if (!s[key].is_array() || s[key].empty())
          fail("JSON schema at ", path, ": ", key, " must be a non-empty array");
        std::vector<Seq> alts;
        for (size_t i = 0; i < s[key].size(); ++i)
          alts.push_back(Seq{E::ref(value(s[key][i], path + "/" + key + "/" + std::to_string(i)))});
        return rule(std::move(alts));
      }
    if (s.contains("allOf")) {
      if (!s["allOf"].is_array() || s["allOf"].size() != 1)
        fail("JSON schema at ", path, ": allOf is supported with one schema only");
      return value(s["allOf"][0], path + "/allOf/0");
    }
    if (!s.contains("type")) {
      if (s.contains("properties") || s.contains("additionalProperties")) return typed("object", s, path);
      if (s.contains("items")) return typed("array", s, path);
      return any();
    }
    if (s["type"].is_string()) return typed(s["type"].get<std::string>(), s, path);
    if (!s["type"].is_array() || s["type"].empty()) fail("JSON schema at ", path, ": type must be a string or a list");
    std::vector<Seq> alts;
    for (const json& t : s["type"]) {
      if (!t.is_string()) fail("JSON schema at ", path, ": type must list type names");
      alts.push_back(Seq{E::ref(typed(t.get<std::string>(), s, path))});
    }
    return rule(std::move(alts));
  }

  int reference(const json& ref, const std::string& path) {
    if (!ref.is_string() || ref.get<std::string>().rfind('#', 0) != 0)
      fail("JSON schema at ", path, ": $ref must point into the document ('#/...'), got ", ref.dump());
    const std::string target = ref.get<std::string>();
    if (auto it = refs_.find(target); it != refs_.end()) return it->second;
    const int r = g_.add_rule();  // before compiling the target, which may refer back to it
    refs_[target] = r;
    const json* resolved = nullptr;
    try {
      const json::json_pointer pointer(target.substr(1));
      if (root_.contains(pointer)) resolved = &root_.at(pointer);
    } catch (const json::exception&) {  // not a JSON pointer
    }
    if (!resolved) fail("JSON schema at ", path, ": $ref ", target, " points nowhere");
    g_.add_alternative(r, Seq{E::ref(value(*resolved, target))});
    return r;
  }

  Grammar& g_;
  const json& root_;
  std::map<std::string, int> refs_;
  int ws_ = -1, char_ = -1, string_ = -1, int_ = -1, number_ = -1, any_ = -1;
};

}  // namespace

int add_json_schema(Grammar& g, const nlohmann::ordered_json& schema) { return SchemaCompiler(g, schema).compile(); }

Grammar json_schema_grammar(const nlohmann::ordered_json& schema) {
  Grammar g;
  g.set_root(add_json_schema(g, schema));
  g.check();
  return g;
}

Grammar json_object_grammar() {
  const json none;
  Grammar g;
  g.set_root(SchemaCompiler(g, none).any_object());
  g.check();
  return g;
}

}  // namespace dsinfer
