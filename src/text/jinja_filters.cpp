// Filters, tests and global functions of chat templates (Jinja2's built-ins plus what
// transformers adds: its tojson, raise_exception and strftime_now).
#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <unordered_map>

#include "core/error.h"
#include "text/jinja_args.h"
#include "text/jinja_builtins.h"
#include "text/python_str.h"

namespace dsinfer::jinja {
namespace {

using FilterFn = std::function<Value(const Value&, const CallArgs&)>;
using TestFn = std::function<bool(const Value&, const CallArgs&)>;

const std::string& require_string(const Value& v, const char* filter) {
  v.require_defined();
  if (!v.is_string()) throw ValueError(cat("filter '", filter, "' expects a string, got ", v.type_name()));
  return v.as_string();
}

// Jinja converts filter input to text with str(), Undefined becoming "".
std::string text_of(const Value& v) { return v.str(); }

std::vector<Value> sequence_of(const Value& v) {
  v.require_defined();
  return iterate(v);
}

// An attribute path "a.b.0" as selectattr/map/sort use it.
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  for (const std::string& part : pystr::split(path, std::string("."), -1)) {
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    v = numeric ? get_item(v, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(v, Value(part));
    if (v.is_undefined()) return v;
  }
  return v;
}

// The sort key of case-insensitive filters: strings compare lowercased.
Value fold_case(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value(pystr::lower(v.as_string())) : v;
}

CallArgs tail_args(const CallArgs& a, size_t from) {
  CallArgs rest;
  if (a.positional.size() > from) rest.positional.assign(a.positional.begin() + from, a.positional.end());
  rest.keyword = a.keyword;
  return rest;
}

Value do_default(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "default", {"default_value", "boolean"});
  bool use_default = v.is_undefined() || (b.get_or(1, Value(false)).truthy() && !v.truthy());
  return use_default ? b.get_or(0, Value("")) : v;
}

Value do_length(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "length", {});
  switch (v.kind()) {
    case Value::Kind::Undefined: return Value(0);
    case Value::Kind::String: return Value(static_cast<int64_t>(pystr::length(v.as_string())));
    case Value::Kind::List: return Value(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::Dict: return Value(static_cast<int64_t>(v.as_dict()->entries.size()));
    default: throw ValueError(cat("object of type '", v.type_name(), "' has no len()"));
  }
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent, separators, sort_keys).
Value do_tojson(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  Value::JsonStyle style;
  style.ensure_ascii = b.get_or(0, Value(false)).truthy();
  Value indent = b.get_or(1, Value::none());
  if (indent.kind() == Value::Kind::Int) style.indent = std::string(std::max<int64_t>(0, indent.as_int()), ' ');
  else if (indent.is_string()) style.indent = indent.as_string();
  else if (!indent.is_none()) throw ValueError("tojson indent must be an integer, a string or None");
  if (style.indent) style.item_separator = ",";
  Value seps = b.get_or(2, Value::none());
  if (seps.is_list() && seps.as_list().size() == 2 && seps.as_list()[0].is_string() && seps.as_list()[1].is_string()) {
    style.item_separator = seps.as_list()[0].as_string();
    style.key_separator = seps.as_list()[1].as_string();
  } else if (!seps.is_none()) {
    throw ValueError("tojson separators must be a (item, key) pair of strings");
  }
  style.sort_keys = b.get_or(3, Value(false)).truthy();
  return Value(v.to_json(style));
}

Value do_join(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "join", {"d", "attribute"});
  std::string sep = text_of(b.get_or(0, Value("")));
  Value attr = b.get_or(1, Value::none());
  std::string out;
  bool first = true;
  for (const Value& item : sequence_of(v)) {
    out += (first ? "" : sep) + (attr.is_none() ? item : attribute_path(item, attr.str())).str();
    first = false;
  }
  return Value(out);
}

Value do_replace(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "replace", {"old", "new", "count"});
  const Value* old = b.get(0);
  const Value* with = b.get(1);
  if (!old || !with) throw ValueError("replace() needs the old and new strings");
  Value count = b.get_or(2, Value::none());
  return Value(pystr::replace(text_of(v), old->str(), with->str(), count.is_none() ? -1 : count.as_int()));
}

Value do_first_last(const Value& v, bool last) {
  std::vector<Value> items = sequence_of(v);
  if (items.empty()) return Value::undefined(cat("No ", last ? "last" : "first", " item, sequence was empty."));
  return last ? items.back() : items.front();
}

Value do_items(const Value& v) {
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) throw ValueError(cat("can only get item pairs from a mapping, not ", v.type_name()));
  std::vector<Value> out;
  for (const auto& [k, val] : v.as_dict()->entries) out.push_back(Value::list({Value(k), val}, true));
  return Value::list(std::move(out));
}

Value do_dictsort(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "dictsort", {"case_sensitive", "by", "reverse"});
  bool cs = b.get_or(0, Value(false)).truthy();
  bool by_value = b.get_or(1, Value("key")).str() == "value";
  bool reverse = b.get_or(2, Value(false)).truthy();
  std::vector<Value> pairs = do_items(v).as_list();
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const Value &kx = x.as_list()[by_value ? 1 : 0], &ky = y.as_list()[by_value ? 1 : 0];
    return reverse ? value_less(fold_case(ky, cs), fold_case(kx, cs)) : value_less(fold_case(kx, cs), fold_case(ky, cs));
  });
  return Value::list(std::move(pairs));
}

Value do_sort(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = b.get_or(0, Value(false)).truthy();
  bool cs = b.get_or(1, Value(false)).truthy();
  Value attr = b.get_or(2, Value::none());
  std::vector<Value> items = sequence_of(v);
  auto key = [&](const Value& x) { return fold_case(attr.is_none() ? x : attribute_path(x, attr.str()), cs); };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? value_less(key(y), key(x)) : value_less(key(x), key(y));
  });
  return Value::list(std::move(items));
}

Value do_unique(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "unique", {"case_sensitive", "attribute"});
  bool cs = b.get_or(0, Value(false)).truthy();
  Value attr = b.get_or(1, Value::none());
  std::vector<Value> out, seen;
  for (const Value& item : sequence_of(v)) {
    Value k = fold_case(attr.is_none() ? item : attribute_path(item, attr.str()), cs);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, k); })) continue;
    seen.push_back(k);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value do_min_max(const Value& v, const CallArgs& a, bool want_max) {
  BoundArgs b(a, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  bool cs = b.get_or(0, Value(false)).truthy();
  Value attr = b.get_or(1, Value::none());
  std::vector<Value> items = sequence_of(v);
  if (items.empty()) return Value::undefined(cat("No aggregated item, sequence was empty."));
  auto key = [&](const Value& x) { return fold_case(attr.is_none() ? x : attribute_path(x, attr.str()), cs); };
  Value best = items[0];
  for (const Value& item : items)
    if (want_max ? value_less(key(best), key(item)) : value_less(key(item), key(best))) best = item;
  return best;
}

Value do_sum(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "sum", {"attribute", "start"});
  Value attr = b.get_or(0, Value::none());
  Value total = b.get_or(1, Value(0));
  for (const Value& item : sequence_of(v)) total = binary_operator("+", total, attr.is_none() ? item : attribute_path(item, attr.str()));
  return total;
}

// select/reject/selectattr/rejectattr: keep items whose (attribute's) test result is `keep`.
Value select_items(const Value& v, const CallArgs& a, bool by_attribute, bool keep, const char* name) {
  size_t first_test_arg = by_attribute ? 1 : 0;
  std::string attr;
  if (by_attribute) {
    if (a.positional.empty() || !a.positional[0].is_string()) throw ValueError(cat(name, "() needs an attribute name"));
    attr = a.positional[0].as_string();
  }
  std::string test;
  if (a.positional.size() > first_test_arg) test = a.positional[first_test_arg].str();
  CallArgs test_args = tail_args(a, first_test_arg + 1);
  std::vector<Value> out;
  for (const Value& item : sequence_of(v)) {
    Value subject = by_attribute ? attribute_path(item, attr) : item;
    bool passed = test.empty() ? subject.truthy() : apply_test(test, subject, test_args);
    if (passed == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value do_map(const Value& v, const CallArgs& a) {
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, val] : a.keyword) {
    if (k == "attribute") attribute = &val;
    else if (k == "default") fallback = &val;
  }
  std::vector<Value> out;
  if (attribute) {
    for (const Value& item : sequence_of(v)) {
      Value x = attribute_path(item, attribute->str());
      out.push_back(x.is_undefined() && fallback ? *fallback : x);
    }
    return Value::list(std::move(out));
  }
  if (a.positional.empty()) throw ValueError("map() needs a filter name or attribute=");
  std::string filter = a.positional[0].str();
  CallArgs rest = tail_args(a, 1);
  for (const Value& item : sequence_of(v)) out.push_back(apply_filter(filter, item, rest));
  return Value::list(std::move(out));
}

// Jinja's do_indent, including its quirk of appending a newline before splitting lines.
Value do_indent(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "indent", {"width", "first", "blank"});
  Value width = b.get_or(0, Value(4));
  std::string pad = width.is_string() ? width.as_string() : std::string(std::max<int64_t>(0, width.as_int()), ' ');
  bool first = b.get_or(1, Value(false)).truthy();
  bool blank = b.get_or(2, Value(false)).truthy();
  std::vector<std::string> lines = pystr::splitlines(text_of(v) + "\n", false);
  std::string out = lines.empty() ? "" : lines[0];
  for (size_t i = 1; i < lines.size(); ++i) out += "\n" + ((blank || !lines[i].empty()) ? pad : "") + lines[i];
  return Value(first ? pad + out : out);
}

Value do_int(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "int", {"default", "base"});
  Value fallback = b.get_or(0, Value(0));
  if (v.kind() == Value::Kind::Int || v.kind() == Value::Kind::Bool) return Value(v.as_int());
  if (v.kind() == Value::Kind::Float) return Value(static_cast<int64_t>(std::trunc(v.as_double())));
  if (v.is_string()) {
    std::string s = pystr::strip(v.as_string(), std::nullopt, true, true);
    try {
      size_t used = 0;
      int64_t i = std::stoll(s, &used, static_cast<int>(b.get_or(1, Value(10)).as_int()));
      if (used == s.size()) return Value(i);
      double d = std::stod(s, &used);
      if (used == s.size()) return Value(static_cast<int64_t>(std::trunc(d)));
    } catch (const std::exception&) {
    }
  }
  return fallback;
}

Value do_float(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "float", {"default"});
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    try {
      size_t used = 0;
      std::string s = pystr::strip(v.as_string(), std::nullopt, true, true);
      double d = std::stod(s, &used);
      if (used == s.size()) return Value(d);
    } catch (const std::exception&) {
    }
  }
  return b.get_or(0, Value(0.0));
}

Value do_round(const Value& v, const CallArgs& a) {
  BoundArgs b(a, "round", {"precision", "method"});
  v.require_defined();
  if (!v.is_number()) throw ValueError(cat("round() expects a number, got ", v.type_name()));
  int64_t precision = b.get_or(0, Value(0)).as_int();
  std::string method = b.get_or(1, Value("common")).str();
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * scale;
  // Jinja's "common" is Python's round(): ties go to the even neighbour.
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value(r / scale);
}

Value do_escape(const Value& v) {
  std::string out;
  for (char c : text_of(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(out);
}

Value do_list(const Value& v) { return Value::list(sequence_of(v)); }

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"abs", [](const Value& v, const CallArgs&) {
         v.require_defined();
         if (!v.is_number()) throw ValueError(cat("bad operand type for abs(): '", v.type_name(), "'"));
         return v.kind() == Value::Kind::Float ? Value(std::fabs(v.as_double())) : Value(static_cast<int64_t>(std::llabs(v.as_int())));
       }},
      {"attr", [](const Value& v, const CallArgs& a) {
         BoundArgs b(a, "attr", {"name"});
         return python_getattr(v, b.get_or(0, Value("")).str());
       }},
      {"capitalize", [](const Value& v, const CallArgs&) { return Value(pystr::capitalize(text_of(v))); }},
      {"count", do_length},
      {"d", do_default},
      {"default", do_default},
      {"dictsort", do_dictsort},
      {"e", [](const Value& v, const CallArgs&) { return do_escape(v); }},
      {"escape", [](const Value& v, const CallArgs&) { return do_escape(v); }},
      {"first", [](const Value& v, const CallArgs&) { return do_first_last(v, false); }},
      {"float", do_float},
      {"format", [](const Value& v, const CallArgs& a) {
         return binary_operator("%", Value(require_string(v, "format")), Value::list(a.positional, true));
       }},
      {"indent", do_indent},
      {"int", do_int},
      {"items", [](const Value& v, const CallArgs&) { return do_items(v); }},
      {"join", do_join},
      {"last", [](const Value& v, const CallArgs&) { return do_first_last(v, true); }},
      {"length", do_length},
      {"list", [](const Value& v, const CallArgs&) { return do_list(v); }},
      {"lower", [](const Value& v, const CallArgs&) { return Value(pystr::lower(text_of(v))); }},
      {"map", do_map},
      {"max", [](const Value& v, const CallArgs& a) { return do_min_max(v, a, true); }},
      {"min", [](const Value& v, const CallArgs& a) { return do_min_max(v, a, false); }},
      {"reject", [](const Value& v, const CallArgs& a) { return select_items(v, a, false, false, "reject"); }},
      {"rejectattr", [](const Value& v, const CallArgs& a) { return select_items(v, a, true, false, "rejectattr"); }},
      {"replace", do_replace},
      {"reverse", [](const Value& v, const CallArgs&) {
         if (v.is_string()) return Value(pystr::slice(v.as_string(), std::nullopt, std::nullopt, -1));
         std::vector<Value> items = sequence_of(v);
         std::reverse(items.begin(), items.end());
         return Value::list(std::move(items));
       }},
      {"round", do_round},
      {"safe", [](const Value& v, const CallArgs&) { return v; }},
      {"select", [](const Value& v, const CallArgs& a) { return select_items(v, a, false, true, "select"); }},
      {"selectattr", [](const Value& v, const CallArgs& a) { return select_items(v, a, true, true, "selectattr"); }},
      {"sort", do_sort},
      {"string", [](const Value& v, const CallArgs&) { return Value(v.str()); }},
      {"sum", do_sum},
      {"title", [](const Value& v, const CallArgs&) { return Value(pystr::title(text_of(v))); }},
      {"tojson", do_tojson},
      {"trim", [](const Value& v, const CallArgs& a) {
         BoundArgs b(a, "trim", {"chars"});
         Value chars = b.get_or(0, Value::none());
         return Value(pystr::strip(text_of(v), chars.is_none() ? std::nullopt : std::optional<std::string>(chars.str()), true, true));
       }},
      {"unique", do_unique},
      {"upper", [](const Value& v, const CallArgs&) { return Value(pystr::upper(text_of(v))); }},
      {"wordcount", [](const Value& v, const CallArgs&) {
         return Value(static_cast<int64_t>(pystr::split(text_of(v), std::nullopt, -1).size()));
       }},
  };
  return table;
}

const Value& test_arg(const CallArgs& a, const char* test) {
  if (a.positional.empty()) throw ValueError(cat("test '", test, "' needs an argument"));
  return a.positional[0];
}

bool is_integer(const Value& v) { return v.kind() == Value::Kind::Int; }

const std::unordered_map<std::string, TestFn>& tests() {
  auto compare = [](const char* op) {
    return [op](const Value& v, const CallArgs& a) { return binary_operator(op, v, test_arg(a, op)).truthy(); };
  };
  static const std::unordered_map<std::string, TestFn> table = {
      {"boolean", [](const Value& v, const CallArgs&) { return v.kind() == Value::Kind::Bool; }},
      // Jinja's Undefined defines __call__ (to raise), so Python calls it callable.
      {"callable", [](const Value& v, const CallArgs&) { return v.kind() == Value::Kind::Function || v.is_undefined(); }},
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"divisibleby", [](const Value& v, const CallArgs& a) {
         const Value& n = test_arg(a, "divisibleby");
         return binary_operator("%", v, n).as_double() == 0;
       }},
      {"eq", compare("==")},
      {"equalto", compare("==")},
      {"even", [](const Value& v, const CallArgs&) { return is_integer(v) && v.as_int() % 2 == 0; }},
      {"false", [](const Value& v, const CallArgs&) { return v.kind() == Value::Kind::Bool && !v.as_bool(); }},
      {"filter", [](const Value& v, const CallArgs&) { return v.is_string() && has_filter(v.as_string()); }},
      {"float", [](const Value& v, const CallArgs&) { return v.kind() == Value::Kind::Float; }},
      {"ge", compare(">=")},
      {"greaterthan", compare(">")},
      {"gt", compare(">")},
      {"in", [](const Value& v, const CallArgs& a) { return contains(test_arg(a, "in"), v); }},
      {"integer", [](const Value& v, const CallArgs&) { return is_integer(v); }},
      {"iterable", [](const Value& v, const CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
       }},
      {"le", compare("<=")},
      {"lessthan", compare("<")},
      {"lower", [](const Value& v, const CallArgs&) { return v.is_string() && pystr::is_class(v.as_string(), "islower"); }},
      {"lt", compare("<")},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict() && !v.as_dict()->is_namespace; }},
      {"ne", compare("!=")},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
      {"odd", [](const Value& v, const CallArgs&) { return is_integer(v) && v.as_int() % 2 != 0; }},
      {"sameas", [](const Value& v, const CallArgs& a) {
         const Value& o = test_arg(a, "sameas");
         // Identity: singletons compare equal, containers only when they are one object.
         if (v.kind() != o.kind()) return false;
         if (v.is_list()) return &v.as_list() == &o.as_list();
         if (v.is_dict()) return v.as_dict() == o.as_dict();
         return values_equal(v, o);
       }},
      {"sequence", [](const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"test", [](const Value& v, const CallArgs&) { return v.is_string() && has_test(v.as_string()); }},
      {"true", [](const Value& v, const CallArgs&) { return v.kind() == Value::Kind::Bool && v.as_bool(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"upper", [](const Value& v, const CallArgs&) { return v.is_string() && pystr::is_class(v.as_string(), "isupper"); }},
  };
  return table;
}

Value make_namespace(const CallArgs& a) {
  auto d = std::make_shared<DictData>();
  d->is_namespace = true;
  for (const Value& init : a.positional) {
    if (!init.is_dict()) throw ValueError("namespace() takes mappings and keyword arguments");
    for (const auto& [k, v] : init.as_dict()->entries) d->set(k, v);
  }
  for (const auto& [k, v] : a.keyword) d->set(k, v);
  return Value::dict(d);
}

Value make_range(const CallArgs& a) {
  if (!a.keyword.empty() || a.positional.empty() || a.positional.size() > 3)
    throw ValueError("range() takes 1 to 3 integer arguments");
  for (const Value& v : a.positional)
    if (!is_integer(v)) throw ValueError(cat("range() arguments must be integers, not ", v.type_name()));
  int64_t start = a.positional.size() > 1 ? a.positional[0].as_int() : 0;
  int64_t stop = a.positional.size() > 1 ? a.positional[1].as_int() : a.positional[0].as_int();
  int64_t step = a.positional.size() > 2 ? a.positional[2].as_int() : 1;
  if (step == 0) throw ValueError("range() arg 3 must not be zero");
  // The sandbox caps ranges (MAX_RANGE) so a template cannot exhaust memory.
  constexpr int64_t kMaxRange = 100000;
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) throw ValueError("range too big");
    out.emplace_back(i);
  }
  return Value::list(std::move(out));
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) > 0; }
bool has_test(const std::string& name) { return tests().count(name) > 0; }

Value apply_filter(const std::string& name, const Value& value, const CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw ValueError(cat("no filter named '", name, "'"));
  return it->second(value, args);
}

bool apply_test(const std::string& name, const Value& value, const CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw ValueError(cat("no test named '", name, "'"));
  return it->second(value, args);
}

std::map<std::string, Value> global_functions() {
  std::map<std::string, Value> g;
  g["range"] = Value::function("range", make_range);
  g["namespace"] = Value::function("namespace", make_namespace);
  g["dict"] = Value::function("dict", [](const CallArgs& a) {
    Value ns = make_namespace(a);
    ns.as_dict()->is_namespace = false;
    return ns;
  });
  g["raise_exception"] = Value::function("raise_exception", [](const CallArgs& a) -> Value {
    throw ValueError(cat("the template raised an error: ", a.positional.empty() ? std::string() : a.positional[0].str()));
  });
  g["strftime_now"] = Value::function("strftime_now", [](const CallArgs& a) {
    BoundArgs b(a, "strftime_now", {"format"});
    std::string fmt = b.get_or(0, Value("")).str();
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256];
    size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &local);
    return Value(std::string(buf, n));
  });
  return g;
}

}  // namespace dsinfer::jinja
