// Values of the chat-template engine: Python's data model as Jinja2 sees it (None, bool, int,
// float, str, list/tuple, dict, callables, and Jinja's Undefined), with Python's str(),
// repr(), equality, ordering and truthiness, and json.dumps for the tojson filter.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace dsinfer::jinja {

class Value;

// A Python-level error (TypeError, UndefinedError, ...); the interpreter adds the template
// position when it reaches a node.
class ValueError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
};

// An insertion-ordered dict with string keys (as JSON objects and Python kwargs are). A
// namespace() object is a dict whose keys are its attributes; it is the one mutable value.
struct DictData {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct FunctionData {
  std::string name;
  std::function<Value(const CallArgs&)> call;
};

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() : v_(UndefinedData{}) {}  // Undefined
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}

  // Undefined that remembers why, for the error raised when it is used.
  static Value undefined(std::string hint) { return Value(UndefinedData{std::move(hint)}); }
  static Value none() { return Value(Storage(nullptr)); }
  static Value list(std::vector<Value> items, bool is_tuple = false);
  static Value dict(std::shared_ptr<DictData> d) { return Value(std::move(d)); }
  static Value function(std::string name, std::function<Value(const CallArgs&)> call);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_number() const { return kind() == Kind::Int || kind() == Kind::Float || kind() == Kind::Bool; }
  bool is_list() const { return kind() == Kind::List; }
  bool is_dict() const { return kind() == Kind::Dict; }

  bool as_bool() const { return std::get<bool>(v_); }
  // Int or Bool as an integer (Python's bool is an int).
  int64_t as_int() const;
  // Any number as a double.
  double as_double() const;
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const std::vector<Value>& as_list() const { return std::get<std::shared_ptr<ListData>>(v_)->items; }
  bool is_tuple() const { return is_list() && std::get<std::shared_ptr<ListData>>(v_)->is_tuple; }
  const std::shared_ptr<DictData>& as_dict() const { return std::get<std::shared_ptr<DictData>>(v_); }
  const FunctionData& as_function() const { return *std::get<std::shared_ptr<FunctionData>>(v_); }
  const std::string& undefined_hint() const { return std::get<UndefinedData>(v_).hint; }

  bool truthy() const;
  // Python str(): what {{ value }} prints (Undefined prints nothing).
  std::string str() const;
  // Python repr(): how values print inside lists and dicts.
  std::string repr() const;
  // Python's type name, for error messages.
  std::string type_name() const;
  // Throws the UndefinedError this value stands for (when it is Undefined).
  void require_defined() const;

  // json.dumps(value, ensure_ascii, indent, separators, sort_keys).
  struct JsonStyle {
    bool ensure_ascii = false;
    std::optional<std::string> indent;  // none: one line
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
  };
  std::string to_json(const JsonStyle& style) const;

 private:
  struct UndefinedData {
    std::string hint;
  };
  using Storage = std::variant<UndefinedData, std::nullptr_t, bool, int64_t, double, std::string,
                               std::shared_ptr<ListData>, std::shared_ptr<DictData>, std::shared_ptr<FunctionData>>;
  explicit Value(Storage v) : v_(std::move(v)) {}
  void dump_json(std::string& out, const JsonStyle& style, int depth) const;

  Storage v_;
};

bool values_equal(const Value& a, const Value& b);
// Python's a < b (numbers, strings, lists); throws ValueError for unorderable types.
bool value_less(const Value& a, const Value& b);

// Python's repr() of a float: the shortest string that reads back to the same double.
std::string python_float_repr(double d);

}  // namespace dsinfer::jinja
