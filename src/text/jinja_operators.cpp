// Attribute/item access, Python str and dict methods, iteration and the operators.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "text/jinja_args.h"
#include "text/jinja_builtins.h"
#include "text/python_str.h"
#include "text/utf8.h"

namespace dsinfer::jinja {
namespace {

std::optional<std::string> optional_string(const Value* v, const char* what) {
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) throw ValueError(cat(what, " must be None or a string, not ", v->type_name()));
  return v->as_string();
}

int64_t int_arg(const Value* v, int64_t fallback, const char* what) {
  if (!v || v->is_none()) return fallback;
  if (v->kind() != Value::Kind::Int && v->kind() != Value::Kind::Bool)
    throw ValueError(cat(what, " must be an integer, not ", v->type_name()));
  return v->as_int();
}

const std::string& string_arg(const Value* v, const char* what) {
  if (!v || !v->is_string()) throw ValueError(cat(what, " must be a string, not ", v ? v->type_name() : "missing"));
  return v->as_string();
}

Value string_list(const std::vector<std::string>& parts) {
  std::vector<Value> out(parts.begin(), parts.end());
  return Value::list(std::move(out));
}

// startswith/endswith accept a string or a tuple of strings.
bool affix_match(const std::string& s, const Value& affix, bool at_start) {
  auto one = [&](const Value& a) {
    const std::string& x = string_arg(&a, at_start ? "startswith argument" : "endswith argument");
    return at_start ? s.compare(0, x.size(), x) == 0 && s.size() >= x.size()
                    : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  return one(affix);
}

// str.format with {} / {0} / {name} fields (no format specs).
std::string python_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if ((c == '{' || c == '}') && i + 1 < fmt.size() && fmt[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw ValueError("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    const Value* v = nullptr;
    if (field.empty() || std::all_of(field.begin(), field.end(), ::isdigit)) {
      size_t index = field.empty() ? auto_index++ : std::stoul(field);
      if (index >= args.positional.size()) throw ValueError("Replacement index out of range for format()");
      v = &args.positional[index];
    } else {
      for (const auto& [k, val] : args.keyword)
        if (k == field) v = &val;
      if (!v) throw ValueError(cat("format() has no argument '", field, "'"));
    }
    out += v->str();
    i = close;
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name) {
  using pystr::is_class;
  auto bind = [&](auto fn) { return Value::function("str." + name, [s, name, fn](const CallArgs& a) { return fn(s, name, a); }); };
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {"chars"});
      return Value(pystr::strip(s, optional_string(b.get(0), "chars"), n != "rstrip", n != "lstrip"));
    });
  if (name == "split" || name == "rsplit")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {"sep", "maxsplit"});
      auto sep = optional_string(b.get(0), "sep");
      if (sep && sep->empty()) throw ValueError("empty separator");
      int64_t max = int_arg(b.get(1), -1, "maxsplit");
      return string_list(n == "split" ? pystr::split(s, sep, max) : pystr::rsplit(s, sep, max));
    });
  if (name == "splitlines")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {"keepends"});
      return string_list(pystr::splitlines(s, b.get_or(0, Value(false)).truthy()));
    });
  if (name == "startswith" || name == "endswith")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {"prefix"});
      if (!b.get(0)) throw ValueError(cat(n, "() takes at least 1 argument (0 given)"));
      return Value(affix_match(s, *b.get(0), n == "startswith"));
    });
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {});
      if (n == "upper") return Value(pystr::upper(s));
      if (n == "lower") return Value(pystr::lower(s));
      if (n == "title") return Value(pystr::title(s));
      return Value(pystr::capitalize(s));
    });
  if (name == "replace")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {"old", "new", "count"});
      return Value(pystr::replace(s, string_arg(b.get(0), "old"), string_arg(b.get(1), "new"), int_arg(b.get(2), -1, "count")));
    });
  if (name == "find" || name == "rfind" || name == "count")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {"sub"});
      const std::string& sub = string_arg(b.get(0), "sub");
      return Value(n == "count" ? pystr::count(s, sub) : pystr::find(s, sub, n == "rfind"));
    });
  if (name == "join")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {"iterable"});
      std::string out;
      bool first = true;
      for (const Value& v : iterate(b.get_or(0, Value::list({})))) {
        if (!v.is_string()) throw ValueError(cat("sequence item: expected str instance, ", v.type_name(), " found"));
        out += (first ? "" : s) + v.as_string();
        first = false;
      }
      return Value(out);
    });
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" || name == "isupper")
    return bind([](const std::string& s, const std::string& n, const CallArgs& a) {
      BoundArgs b(a, n, {});
      return Value(is_class(s, n));
    });
  if (name == "format")
    return bind([](const std::string& s, const std::string&, const CallArgs& a) { return Value(python_format(s, a)); });
  return Value::undefined(cat("'str object' has no attribute '", name, "'"));
}

Value dict_method(const std::shared_ptr<DictData>& d, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values")
    return Value::function("dict." + name, [d, name](const CallArgs& a) {
      BoundArgs b(a, name, {});
      std::vector<Value> out;
      for (const auto& [k, v] : d->entries) {
        if (name == "items") out.push_back(Value::list({Value(k), v}, true));
        else out.push_back(name == "keys" ? Value(k) : v);
      }
      return Value::list(std::move(out));
    });
  if (name == "get")
    return Value::function("dict.get", [d](const CallArgs& a) {
      BoundArgs b(a, "get", {"key", "default"});
      const Value* key = b.get(0);
      if (!key) throw ValueError("get expected at least 1 argument, got 0");
      const Value* v = key->is_string() ? d->find(key->as_string()) : nullptr;
      return v ? *v : b.get_or(1, Value::none());
    });
  return Value();
}

// Python's floor division and modulo (the result takes the divisor's sign).
Value floor_div_mod(const Value& a, const Value& b, bool want_mod) {
  bool floats = a.kind() == Value::Kind::Float || b.kind() == Value::Kind::Float;
  if (floats) {
    double x = a.as_double(), y = b.as_double();
    if (y == 0) throw ValueError("float division by zero");
    double q = std::floor(x / y);
    return want_mod ? Value(x - q * y) : Value(q);
  }
  int64_t x = a.as_int(), y = b.as_int();
  if (y == 0) throw ValueError("integer division or modulo by zero");
  int64_t q = x / y, r = x % y;
  if (r != 0 && ((r < 0) != (y < 0))) {
    --q;
    r += y;
  }
  return want_mod ? Value(r) : Value(q);
}

Value integer_power(int64_t base, int64_t exp) {
  int64_t result = 1;
  for (int64_t i = 0; i < exp; ++i)
    if (__builtin_mul_overflow(result, base, &result)) throw ValueError("integer overflow in '**'");
  return Value(result);
}

// A template may not repeat its way out of memory (a rendered prompt is far smaller than this).
constexpr int64_t kMaxRepeatBytes = int64_t(16) << 20, kMaxRepeatItems = 100000;

Value repeat(const Value& seq, int64_t times) {
  const int64_t unit = seq.is_string() ? static_cast<int64_t>(seq.as_string().size()) : static_cast<int64_t>(seq.as_list().size());
  if (times > 0 && unit > 0 && times > (seq.is_string() ? kMaxRepeatBytes : kMaxRepeatItems) / unit)
    throw ValueError(cat("repetition of ", unit, seq.is_string() ? " bytes" : " items", " x ", times, " is too big"));
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.as_string();
    return Value(out);
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
  return Value::list(std::move(out), seq.is_tuple());
}

// printf-style `'%s' % value` (%s, %r, %d, %i and %%), as Python's str % does.
Value percent_format(const std::string& fmt, const Value& values) {
  std::vector<Value> args = values.is_tuple() ? values.as_list() : std::vector<Value>{values};
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) throw ValueError("incomplete format");
    char spec = fmt[i];
    if (spec == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) throw ValueError("not enough arguments for format string");
    const Value& v = args[next++];
    if (spec == 's') out += v.str();
    else if (spec == 'r') out += v.repr();
    else if ((spec == 'd' || spec == 'i') && v.is_number()) out += std::to_string(static_cast<int64_t>(v.as_double()));
    else throw ValueError(cat("unsupported format character '", spec, "'"));
  }
  if (next < args.size()) throw ValueError("not all arguments converted during string formatting");
  return Value(out);
}

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  throw ValueError(cat("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'"));
}

}  // namespace

Value get_attribute(const Value& object, const std::string& name) {
  object.require_defined();
  if (object.is_string()) return string_method(object.as_string(), name);
  if (object.is_dict()) {
    const auto& d = object.as_dict();
    // Jinja tries the Python attribute first: on a dict, its methods.
    if (!d->is_namespace) {
      Value m = dict_method(d, name);
      if (!m.is_undefined()) return m;
    }
    if (const Value* v = d->find(name)) return *v;
    return Value::undefined(cat("'", d->is_namespace ? "Namespace" : "dict object", "' has no attribute '", name, "'"));
  }
  return Value::undefined(cat("'", object.type_name(), " object' has no attribute '", name, "'"));
}

Value python_getattr(const Value& object, const std::string& name) {
  object.require_defined();
  if (object.is_dict() && object.as_dict()->is_namespace) return get_attribute(object, name);
  if (object.is_dict()) {
    Value m = dict_method(object.as_dict(), name);
    return m.is_undefined() ? Value::undefined(cat("'dict object' has no attribute '", name, "'")) : m;
  }
  if (object.is_string()) return string_method(object.as_string(), name);
  return Value::undefined(cat("'", object.type_name(), " object' has no attribute '", name, "'"));
}

Value get_item(const Value& object, const Value& key) {
  object.require_defined();
  key.require_defined();
  if (object.is_dict() && key.is_string()) {
    // Jinja tries the item first, then the attribute.
    if (const Value* v = object.as_dict()->find(key.as_string())) return *v;
    return get_attribute(object, key.as_string());
  }
  if ((object.is_list() || object.is_string()) && (key.kind() == Value::Kind::Int || key.kind() == Value::Kind::Bool)) {
    int64_t i = key.as_int();
    if (object.is_string()) {
      auto ch = pystr::at(object.as_string(), i);
      if (ch) return Value(*ch);
    } else {
      int64_t n = static_cast<int64_t>(object.as_list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return object.as_list()[i];
    }
    return Value::undefined(cat(object.type_name(), " index ", key.as_int(), " out of range"));
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined(cat("'", object.type_name(), " object' has no item ", key.repr()));
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  object.require_defined();
  auto bound = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (v.kind() != Value::Kind::Int && v.kind() != Value::Kind::Bool)
      throw ValueError("slice indices must be integers or None");
    return v.as_int();
  };
  auto a = bound(start), b = bound(stop), s = bound(step);
  if (s && *s == 0) throw ValueError("slice step cannot be zero");
  if (object.is_string()) return Value(pystr::slice(object.as_string(), a, b, s));
  if (!object.is_list()) throw ValueError(cat("'", object.type_name(), "' object is not subscriptable"));
  const auto& items = object.as_list();
  int64_t n = static_cast<int64_t>(items.size());
  int64_t st = s.value_or(1);
  std::vector<Value> out;
  auto clamp = [n](int64_t i, int64_t lo, int64_t hi) { return std::max(lo, std::min(i < 0 ? i + n : i, hi)); };
  if (st > 0) {
    int64_t from = a ? clamp(*a, 0, n) : 0, to = b ? clamp(*b, 0, n) : n;
    for (int64_t i = from; i < to; i += st) out.push_back(items[i]);
  } else {
    int64_t from = a ? clamp(*a, -1, n - 1) : n - 1, to = b ? clamp(*b, -1, n - 1) : -1;
    for (int64_t i = from; i > to; i += st) out.push_back(items[i]);
  }
  return Value::list(std::move(out), object.is_tuple());
}

Value call_value(const Value& callee, const CallArgs& args) {
  callee.require_defined();
  if (callee.kind() != Value::Kind::Function) throw ValueError(cat("'", callee.type_name(), "' object is not callable"));
  return callee.as_function().call(args);
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return v.as_list();
    case Value::Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& [k, val] : v.as_dict()->entries) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::String: {
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      for (size_t pos = 0; pos < s.size();) {
        size_t start = pos;
        utf8_next(s, pos);
        chars.emplace_back(s.substr(start, pos - start));
      }
      return chars;
    }
    default: throw ValueError(cat("'", v.type_name(), "' object is not iterable"));
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined: return false;
    case Value::Kind::String:
      if (!item.is_string()) throw ValueError(cat("'in <string>' requires string as left operand, not ", item.type_name()));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      return std::any_of(container.as_list().begin(), container.as_list().end(),
                         [&](const Value& x) { return values_equal(x, item); });
    case Value::Kind::Dict: return item.is_string() && container.as_dict()->find(item.as_string()) != nullptr;
    default: throw ValueError(cat("argument of type '", container.type_name(), "' is not iterable"));
  }
}

Value binary_operator(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value(a.str() + b.str());
  if (op == "==") return Value(values_equal(a, b));
  if (op == "!=") return Value(!values_equal(a, b));
  if (op == "<") return Value(value_less(a, b));
  if (op == ">") return Value(value_less(b, a));
  if (op == "<=") return Value(!value_less(b, a));
  if (op == ">=") return Value(!value_less(a, b));
  if (op == "in") return Value(contains(b, a));
  if (op == "not in") return Value(!contains(b, a));
  a.require_defined();
  b.require_defined();
  bool numbers = a.is_number() && b.is_number();
  bool floats = numbers && (a.kind() == Value::Kind::Float || b.kind() == Value::Kind::Float);
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list()) {
      std::vector<Value> out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(out), a.is_tuple());
    }
    if (a.is_string() && !b.is_string()) throw ValueError(cat("can only concatenate str (not \"", b.type_name(), "\") to str"));
  }
  if (op == "*" && !numbers) {
    if ((a.is_string() || a.is_list()) && b.kind() == Value::Kind::Int) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && a.kind() == Value::Kind::Int) return repeat(b, a.as_int());
  }
  if (op == "%" && a.is_string()) return percent_format(a.as_string(), b);
  if (!numbers) unsupported(op, a, b);
  if (op == "/") {
    if (b.as_double() == 0) throw ValueError("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") return floor_div_mod(a, b, op == "%");
  if (op == "**") {
    if (!floats && b.as_int() >= 0) return integer_power(a.as_int(), b.as_int());
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  if (floats) {
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return Value(x + y);
    if (op == "-") return Value(x - y);
    if (op == "*") return Value(x * y);
  } else {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    bool overflow = op == "+" ? __builtin_add_overflow(x, y, &r)
                  : op == "-" ? __builtin_sub_overflow(x, y, &r)
                              : __builtin_mul_overflow(x, y, &r);
    if (overflow) throw ValueError(cat("integer overflow in '", op, "'"));
    return Value(r);
  }
  unsupported(op, a, b);
}

Value unary_minus(const Value& v, bool negate) {
  v.require_defined();
  if (!v.is_number()) throw ValueError(cat("bad operand type for unary ", negate ? "-" : "+", ": '", v.type_name(), "'"));
  if (v.kind() == Value::Kind::Float) return Value(negate ? -v.as_double() : v.as_double());
  return Value(negate ? -v.as_int() : v.as_int());
}

}  // namespace dsinfer::jinja
