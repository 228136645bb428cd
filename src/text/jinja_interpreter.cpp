// The evaluator of chat templates: walks the syntax tree with Jinja2's scoping (a for loop
// body gets a fresh scope per iteration, `if` none, macros see only the template's top
// level), loop variables and loop controls.
#include <unordered_map>

#include "core/error.h"
#include "text/jinja_builtins.h"
#include "text/jinja_parser.h"
#include "text/jinja_template.h"

namespace dsinfer::jinja {
namespace {

// Deep macro recursion would overflow the native stack; Python would stop it too.
constexpr int kMaxCallDepth = 200;

class Interpreter {
 public:
  Interpreter(const ParsedTemplate& t, const std::string& name, const std::map<std::string, Value>& variables)
      : template_(t), name_(name) {
    frames_.emplace_back();
    for (auto& [k, v] : global_functions()) frames_[0].vars[k] = v;
    for (const auto& [k, v] : variables) frames_[0].vars[k] = v;
  }

  std::string render() {
    std::string out;
    exec_list(template_.body, out);
    return out;
  }

 private:
  enum class Flow { Normal, Break, Continue };
  struct Frame {
    std::unordered_map<std::string, Value> vars;
    bool macro_scope = false;  // lookups past a macro's frame go straight to the top level
  };

  [[noreturn]] void error_at(size_t offset, const std::string& msg) const {
    fail("chat template '", name_, "' error at ", template_.lexed.position(offset), ": ", msg);
  }

  // ---- variables ----

  Value lookup(const std::string& name) const {
    for (size_t i = frames_.size(); i-- > 0;) {
      auto it = frames_[i].vars.find(name);
      if (it != frames_[i].vars.end()) return it->second;
      if (frames_[i].macro_scope) {
        auto top = frames_[0].vars.find(name);
        return top != frames_[0].vars.end() ? top->second : Value::undefined(cat("'", name, "' is undefined"));
      }
    }
    return Value::undefined(cat("'", name, "' is undefined"));
  }

  void assign(const Target& target, const Value& value, size_t offset) {
    if (!target.attribute.empty()) {
      Value ns = lookup(target.names[0]);
      if (!ns.is_dict() || !ns.as_dict()->is_namespace)
        error_at(offset, cat("cannot assign attribute on non-namespace object '", target.names[0], "'"));
      ns.as_dict()->set(target.attribute, value);
      return;
    }
    if (target.names.size() == 1) {
      frames_.back().vars[target.names[0]] = value;
      return;
    }
    std::vector<Value> items;
    try {
      items = iterate(value);
    } catch (const ValueError&) {
      error_at(offset, cat("cannot unpack non-iterable ", value.type_name(), " object"));
    }
    if (items.size() != target.names.size())
      error_at(offset, cat(items.size() < target.names.size() ? "not enough" : "too many", " values to unpack (expected ",
                           target.names.size(), ", got ", items.size(), ")"));
    for (size_t i = 0; i < items.size(); ++i) frames_.back().vars[target.names[i]] = items[i];
  }

  // ---- statements ----

  Flow exec_list(const StmtList& list, std::string& out) {
    for (const auto& s : list) {
      Flow f = exec(*s, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::Text: out += s.text; return Flow::Normal;
      case Stmt::Kind::Output: out += eval(*s.expr).str(); return Flow::Normal;
      case Stmt::Kind::If:
        for (size_t i = 0; i < s.conditions.size(); ++i)
          if (eval(*s.conditions[i]).truthy()) return exec_list(s.bodies[i], out);
        return exec_list(s.else_body, out);
      case Stmt::Kind::For: return exec_for(s, out);
      case Stmt::Kind::Set: {
        if (s.expr) {
          assign(s.target, eval(*s.expr), s.offset);
        } else {
          std::string captured;
          exec_list(s.body, captured);
          assign(s.target, Value(captured), s.offset);
        }
        return Flow::Normal;
      }
      case Stmt::Kind::Macro: frames_.back().vars[s.name] = make_macro(s); return Flow::Normal;
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
      case Stmt::Kind::Block: return exec_list(s.body, out);
    }
    return Flow::Normal;
  }

  // Binds the loop target in a fresh frame (the caller pops it).
  void push_iteration(const Stmt& s, const Value& item) {
    frames_.emplace_back();
    assign(s.target, item, s.offset);
  }

  Flow exec_for(const Stmt& s, std::string& out) {
    Value seq = eval(*s.expr);
    std::vector<Value> all;
    try {
      all = iterate(seq);
    } catch (const ValueError& e) {
      error_at(s.expr->offset, e.what());
    }
    // The `if` filter runs before the loop, so loop.length/index count kept items only.
    std::vector<Value> items;
    for (const Value& item : all) {
      if (s.filter) {
        push_iteration(s, item);
        bool keep = eval(*s.filter).truthy();
        frames_.pop_back();
        if (!keep) continue;
      }
      items.push_back(item);
    }
    if (items.empty()) return exec_list(s.else_body, out);
    int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      push_iteration(s, items[i]);
      frames_.back().vars["loop"] = loop_object(items, i);
      Flow f = exec_list(s.body, out);
      frames_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  static Value loop_object(const std::vector<Value>& items, int64_t i) {
    int64_t n = static_cast<int64_t>(items.size());
    auto d = std::make_shared<DictData>();
    d->entries = {{"index", Value(i + 1)},
                  {"index0", Value(i)},
                  {"revindex", Value(n - i)},
                  {"revindex0", Value(n - i - 1)},
                  {"first", Value(i == 0)},
                  {"last", Value(i == n - 1)},
                  {"length", Value(n)},
                  {"depth", Value(1)},
                  {"depth0", Value(0)},
                  {"previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item")},
                  {"nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item")},
                  {"cycle", Value::function("loop.cycle", [i](const CallArgs& a) {
                     if (a.positional.empty()) throw ValueError("no items for cycling given");
                     return a.positional[i % a.positional.size()];
                   })}};
    return Value::dict(d);
  }

  Value make_macro(const Stmt& s) {
    const Stmt* macro = &s;
    return Value::function(s.name, [this, macro](const CallArgs& a) { return call_macro(*macro, a); });
  }

  Value call_macro(const Stmt& m, const CallArgs& a) {
    if (a.positional.size() > m.params.size())
      throw ValueError(cat("macro '", m.name, "' takes not more than ", m.params.size(), " argument(s)"));
    if (call_depth_ >= kMaxCallDepth) throw ValueError("maximum macro recursion depth exceeded");
    Frame frame;
    frame.macro_scope = true;
    for (size_t i = 0; i < m.params.size(); ++i) {
      const auto& [pname, def] = m.params[i];
      const Value* given = i < a.positional.size() ? &a.positional[i] : nullptr;
      for (const auto& [k, v] : a.keyword)
        if (k == pname) given = &v;
      frame.vars[pname] = given ? *given : def ? eval(*def) : Value::undefined(cat("parameter '", pname, "' was not provided"));
    }
    for (const auto& [k, v] : a.keyword) {
      bool known = false;
      for (const auto& p : m.params) known |= p.first == k;
      if (!known) throw ValueError(cat("macro '", m.name, "' takes no keyword argument '", k, "'"));
    }
    frames_.push_back(std::move(frame));
    ++call_depth_;
    std::string out;
    try {
      exec_list(m.body, out);
    } catch (...) {
      --call_depth_;
      frames_.pop_back();
      throw;
    }
    --call_depth_;
    frames_.pop_back();
    return Value(out);
  }

  // ---- expressions ----

  // Evaluates a node; a Python-level error is reported at this node's position.
  Value eval(const Expr& e) {
    try {
      return eval_node(e);
    } catch (const ValueError& err) {
      error_at(e.offset, err.what());
    }
  }

  CallArgs eval_args(const Arguments& args) {
    CallArgs out;
    for (const auto& p : args.positional) out.positional.push_back(eval(*p));
    for (const auto& [k, v] : args.keyword) out.keyword.emplace_back(k, eval(*v));
    return out;
  }

  Value eval_node(const Expr& e) {
    using K = Expr::Kind;
    switch (e.kind) {
      case K::Literal: return e.value;
      case K::Name: return lookup(e.name);
      case K::List:
      case K::Tuple: {
        std::vector<Value> items;
        for (const auto& x : e.items) items.push_back(eval(*x));
        return Value::list(std::move(items), e.kind == K::Tuple);
      }
      case K::Dict: {
        auto d = std::make_shared<DictData>();
        for (size_t i = 0; i < e.keys.size(); ++i) {
          Value key = eval(*e.keys[i]);
          if (!key.is_string()) throw ValueError(cat("dict keys must be strings in templates, got ", key.type_name()));
          d->set(key.as_string(), eval(*e.items[i]));
        }
        return Value::dict(d);
      }
      case K::Attribute: return get_attribute(eval(*e.object), e.name);
      case K::Subscript: {
        Value object = eval(*e.object);
        return get_item(object, eval(*e.right));
      }
      case K::Slice: {
        Value object = eval(*e.object);
        auto part = [&](const ExprPtr& p) { return p ? eval(*p) : Value::none(); };
        return get_slice(object, part(e.start), part(e.stop), part(e.step));
      }
      case K::Call: {
        Value callee = eval(*e.object);
        return call_value(callee, eval_args(e.args));
      }
      case K::Filter: {
        Value object = eval(*e.object);
        return apply_filter(e.name, object, eval_args(e.args));
      }
      case K::Test: {
        Value object = eval(*e.object);
        return Value(apply_test(e.name, object, eval_args(e.args)) != e.negated);
      }
      case K::Unary: {
        Value v = eval(*e.object);
        if (e.name == "not") return Value(!v.truthy());
        return unary_minus(v, e.name == "-");
      }
      case K::Binary: {
        Value left = eval(*e.left);
        // and/or short-circuit and return an operand, as in Python.
        if (e.name == "and") return left.truthy() ? eval(*e.right) : left;
        if (e.name == "or") return left.truthy() ? left : eval(*e.right);
        Value right = eval(*e.right);
        return binary_operator(e.name, left, right);
      }
      case K::Compare: {
        Value left = eval(*e.items[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.items[i + 1]);
          if (!binary_operator(e.ops[i], left, right).truthy()) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case K::Conditional: {
        if (eval(*e.object).truthy()) return eval(*e.items[0]);
        return e.items[1] ? eval(*e.items[1]) : Value::undefined("the condition was false and there is no else");
      }
    }
    return Value();
  }

  const ParsedTemplate& template_;
  const std::string& name_;
  std::vector<Frame> frames_;
  int call_depth_ = 0;
};

}  // namespace

Template::Template(const std::string& source, std::string name)
    : parsed_(std::make_shared<ParsedTemplate>(parse_template(source, name))), name_(std::move(name)) {}

std::string Template::render(const std::map<std::string, Value>& variables) const {
  return Interpreter(*parsed_, name_, variables).render();
}

}  // namespace dsinfer::jinja
