#include "text/jinja_parser.h"

#include <set>

#include "core/error.h"

namespace dsinfer::jinja {
namespace {

class Parser {
 public:
  Parser(const LexedTemplate& lexed, const std::string& name) : lexed_(lexed), name_(name) {}

  StmtList parse_all() {
    std::string ender;
    StmtList body = parse_body({}, &ender);
    return body;
  }

 private:
  using Kind = Expr::Kind;

  // ---- token stream ----
  const Token& peek(size_t ahead = 0) const {
    size_t i = std::min(pos_ + ahead, lexed_.tokens.size() - 1);
    return lexed_.tokens[i];
  }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < lexed_.tokens.size() - 1) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).type == TokenType::Op && peek(ahead).text == op; }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).type == TokenType::Name && peek(ahead).text == name;
  }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::Data: return "template text";
      case TokenType::VarBegin: return "'{{'";
      case TokenType::VarEnd: return "'}}'";
      case TokenType::BlockBegin: return "'{%'";
      case TokenType::BlockEnd: return "'%}'";
      case TokenType::Name: return "'" + t.text + "'";
      case TokenType::String: return "string literal";
      case TokenType::Int:
      case TokenType::Float: return "number " + t.text;
      case TokenType::Op: return "'" + t.text + "'";
      case TokenType::End: return "end of template";
    }
    return "token";
  }

  [[noreturn]] void error(const Token& at, const std::string& msg) const {
    fail("chat template '", name_, "' syntax error at ", lexed_.position(at.offset), ": ", msg);
  }

  void expect_op(const char* op) {
    if (!skip_op(op)) error(peek(), cat("expected '", op, "', got ", describe(peek())));
  }
  void expect_block_end(const char* tag) {
    if (peek().type != TokenType::BlockEnd)
      error(peek(), cat("expected '%}' to end '", tag, "', got ", describe(peek())));
    next();
  }
  std::string expect_name(const char* what) {
    if (peek().type != TokenType::Name) error(peek(), cat("expected ", what, ", got ", describe(peek())));
    return next().text;
  }

  ExprPtr make(Kind k, size_t offset) { return std::make_unique<Expr>(k, offset); }

  // ---- statements ----

  // Parses until a block tag named in `enders`; consumes `{%` and the ender's name and stores
  // it in *ender (empty at the end of the template, allowed only when enders is empty).
  StmtList parse_body(const std::set<std::string>& enders, std::string* ender) {
    StmtList body;
    while (true) {
      const Token& t = peek();
      if (t.type == TokenType::End) {
        if (!enders.empty()) error(t, cat("unexpected end of template, expected '", *enders.rbegin(), "'"));
        ender->clear();
        return body;
      }
      if (t.type == TokenType::Data) {
        auto s = std::make_unique<Stmt>(Stmt::Kind::Text, t.offset);
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (t.type == TokenType::VarBegin) {
        next();
        auto s = std::make_unique<Stmt>(Stmt::Kind::Output, t.offset);
        s->expr = parse_tuple();
        if (peek().type != TokenType::VarEnd) error(peek(), cat("expected '}}', got ", describe(peek())));
        next();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::BlockBegin) {
        next();
        const Token& tag = peek();
        if (tag.type != TokenType::Name) error(tag, cat("expected a tag name, got ", describe(tag)));
        if (enders.count(tag.text)) {
          *ender = next().text;
          return body;
        }
        body.push_back(parse_statement());
      } else {
        error(t, cat("unexpected ", describe(t)));
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement() {
    const Token& tag = next();
    const std::string& n = tag.text;
    if (n == "if") return parse_if(tag);
    if (n == "for") return parse_for(tag);
    if (n == "set") return parse_set(tag);
    if (n == "macro") return parse_macro(tag);
    if (n == "break" || n == "continue") {
      expect_block_end(n.c_str());
      if (loop_depth_ == 0) error(tag, cat("'", n, "' outside of a loop"));
      return std::make_unique<Stmt>(n == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, tag.offset);
    }
    if (n == "generation") {
      expect_block_end("generation");
      auto s = std::make_unique<Stmt>(Stmt::Kind::Block, tag.offset);
      std::string ender;
      s->body = parse_body({"endgeneration"}, &ender);
      expect_block_end("endgeneration");
      return s;
    }
    if (n.rfind("end", 0) == 0 || n == "elif" || n == "else") error(tag, cat("unexpected '", n, "' with no open block for it"));
    error(tag, cat("unknown or unsupported tag '", n, "'"));
  }

  std::unique_ptr<Stmt> parse_if(const Token& tag) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::If, tag.offset);
    s->conditions.push_back(parse_expression());
    expect_block_end("if");
    while (true) {
      std::string ender;
      StmtList body = parse_body({"elif", "else", "endif"}, &ender);
      if (ender == "elif") {
        s->bodies.push_back(std::move(body));
        s->conditions.push_back(parse_expression());
        expect_block_end("elif");
      } else if (ender == "else") {
        s->bodies.push_back(std::move(body));
        expect_block_end("else");
        s->else_body = parse_body({"endif"}, &ender);
        expect_block_end("endif");
        return s;
      } else {
        s->bodies.push_back(std::move(body));
        expect_block_end("endif");
        return s;
      }
    }
  }

  Target parse_target(const char* tag) {
    Target t;
    bool parens = skip_op("(");
    t.names.push_back(expect_name("a variable name"));
    if (is_op(".")) {
      next();
      t.attribute = expect_name("an attribute name");
    } else {
      while (skip_op(",")) {
        if (peek().type != TokenType::Name) break;  // trailing comma
        t.names.push_back(next().text);
      }
    }
    if (parens) expect_op(")");
    if (!t.attribute.empty() && std::string(tag) == "for") error(peek(), "a for loop cannot assign to an attribute");
    return t;
  }

  std::unique_ptr<Stmt> parse_for(const Token& tag) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::For, tag.offset);
    s->target = parse_target("for");
    if (!skip_name("in")) error(peek(), cat("expected 'in' in for loop, got ", describe(peek())));
    s->expr = parse_tuple(/*with_condexpr=*/false);
    if (skip_name("if")) s->filter = parse_expression();
    if (is_name("recursive")) error(peek(), "recursive for loops are not supported");
    expect_block_end("for");
    ++loop_depth_;
    std::string ender;
    s->body = parse_body({"else", "endfor"}, &ender);
    --loop_depth_;
    if (ender == "else") {
      expect_block_end("else");
      s->else_body = parse_body({"endfor"}, &ender);
    }
    expect_block_end("endfor");
    return s;
  }

  std::unique_ptr<Stmt> parse_set(const Token& tag) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::Set, tag.offset);
    s->target = parse_target("set");
    if (skip_op("=")) {
      s->expr = parse_tuple();
      expect_block_end("set");
      return s;
    }
    if (s->target.names.size() != 1 || !s->target.attribute.empty()) error(peek(), "expected '=' in set");
    expect_block_end("set");
    std::string ender;
    s->body = parse_body({"endset"}, &ender);
    expect_block_end("endset");
    return s;
  }

  std::unique_ptr<Stmt> parse_macro(const Token& tag) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::Macro, tag.offset);
    s->name = expect_name("a macro name");
    expect_op("(");
    while (!skip_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (skip_op(")")) break;
      std::string param = expect_name("a parameter name");
      ExprPtr def;
      if (skip_op("=")) def = parse_expression();
      s->params.emplace_back(param, std::move(def));
    }
    expect_block_end("macro");
    int saved = loop_depth_;
    loop_depth_ = 0;
    std::string ender;
    s->body = parse_body({"endmacro"}, &ender);
    loop_depth_ = saved;
    expect_block_end("endmacro");
    return s;
  }

  // ---- expressions (Jinja2's precedence, loosest first) ----

  // `a, b` makes a tuple where Jinja allows one: {{ }}, set values, for iterables.
  ExprPtr parse_tuple(bool with_condexpr = true) {
    size_t offset = peek().offset;
    ExprPtr first = with_condexpr ? parse_expression() : parse_or();
    if (!is_op(",")) return first;
    auto t = make(Kind::Tuple, offset);
    t->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (peek().type == TokenType::BlockEnd || peek().type == TokenType::VarEnd || is_name("if")) break;
      t->items.push_back(with_condexpr ? parse_expression() : parse_or());
    }
    return t;
  }

  ExprPtr parse_expression() {
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      size_t offset = next().offset;
      auto c = make(Kind::Conditional, offset);
      c->object = parse_or();
      c->items.push_back(std::move(expr));
      c->items.push_back(skip_name("else") ? parse_expression() : nullptr);
      expr = std::move(c);
    }
    return expr;
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, size_t offset) {
    auto b = make(Kind::Binary, offset);
    b->name = op;
    b->left = std::move(left);
    b->right = std::move(right);
    return b;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      size_t offset = next().offset;
      left = binary("or", std::move(left), parse_and(), offset);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      size_t offset = next().offset;
      left = binary("and", std::move(left), parse_not(), offset);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto u = make(Kind::Unary, next().offset);
      u->name = "not";
      u->object = parse_not();
      return u;
    }
    return parse_compare();
  }

  // a < b < c means (a < b) and (b < c), as in Python; a single comparison stays Binary.
  ExprPtr parse_compare() {
    size_t offset = peek().offset;
    ExprPtr first = parse_math1();
    auto chain = make(Kind::Compare, offset);
    chain->items.push_back(std::move(first));
    while (true) {
      std::string op;
      if (peek().type == TokenType::Op &&
          (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">="))) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      chain->ops.push_back(op);
      chain->items.push_back(parse_math1());
    }
    if (chain->ops.empty()) return std::move(chain->items[0]);
    if (chain->ops.size() == 1)
      return binary(chain->ops[0], std::move(chain->items[0]), std::move(chain->items[1]), offset);
    return chain;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      left = binary(t.text, std::move(left), parse_concat(), t.offset);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      size_t offset = next().offset;
      left = binary("~", std::move(left), parse_math2(), offset);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      left = binary(t.text, std::move(left), parse_pow(), t.offset);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary();
    while (is_op("**")) {
      size_t offset = next().offset;
      left = binary("**", std::move(left), parse_unary(), offset);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter = true) {
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      node = make(Kind::Unary, t.offset);
      node->name = t.text;
      node->object = parse_unary(false);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    return with_filter ? parse_filters(std::move(node)) : std::move(node);
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    switch (t.type) {
      case TokenType::Name: {
        next();
        auto e = make(Kind::Literal, t.offset);
        if (t.text == "true" || t.text == "True") e->value = Value(true);
        else if (t.text == "false" || t.text == "False") e->value = Value(false);
        else if (t.text == "none" || t.text == "None") e->value = Value::none();
        else {
          e->kind = Kind::Name;
          e->name = t.text;
        }
        return e;
      }
      case TokenType::String: {
        auto e = make(Kind::Literal, t.offset);
        std::string s;
        while (peek().type == TokenType::String) s += next().text;  // adjacent literals join
        e->value = Value(std::move(s));
        return e;
      }
      case TokenType::Int: {
        next();
        auto e = make(Kind::Literal, t.offset);
        try {
          e->value = Value(static_cast<int64_t>(std::stoll(t.text)));
        } catch (const std::exception&) {
          error(t, cat("integer literal ", t.text, " is too large"));
        }
        return e;
      }
      case TokenType::Float: {
        next();
        auto e = make(Kind::Literal, t.offset);
        e->value = Value(std::stod(t.text));
        return e;
      }
      case TokenType::Op:
        if (t.text == "(") return parse_parenthesized();
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    error(t, cat("unexpected ", describe(t), " in expression"));
  }

  ExprPtr parse_parenthesized() {
    size_t offset = next().offset;
    if (skip_op(")")) return make(Kind::Tuple, offset);
    ExprPtr first = parse_expression();
    if (skip_op(")")) return first;
    auto t = make(Kind::Tuple, offset);
    t->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (is_op(")")) break;
      t->items.push_back(parse_expression());
    }
    expect_op(")");
    return t;
  }

  ExprPtr parse_list() {
    auto l = make(Kind::List, next().offset);
    while (!skip_op("]")) {
      if (!l->items.empty()) expect_op(",");
      if (skip_op("]")) break;
      l->items.push_back(parse_expression());
    }
    return l;
  }

  ExprPtr parse_dict() {
    auto d = make(Kind::Dict, next().offset);
    while (!skip_op("}")) {
      if (!d->items.empty()) expect_op(",");
      if (skip_op("}")) break;
      d->keys.push_back(parse_expression());
      expect_op(":");
      d->items.push_back(parse_expression());
    }
    return d;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        size_t offset = next().offset;
        if (peek().type == TokenType::Int) {  // x.0 is x[0]
          auto s = make(Kind::Subscript, offset);
          s->object = std::move(node);
          s->right = parse_primary();
          node = std::move(s);
          continue;
        }
        auto a = make(Kind::Attribute, offset);
        a->object = std::move(node);
        a->name = expect_name("an attribute name");
        node = std::move(a);
      } else if (is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object) {
    size_t offset = next().offset;
    ExprPtr first;
    if (!is_op(":")) {
      first = parse_expression();
      if (skip_op("]")) {
        auto s = make(Kind::Subscript, offset);
        s->object = std::move(object);
        s->right = std::move(first);
        return s;
      }
    }
    auto s = make(Kind::Slice, offset);
    s->object = std::move(object);
    s->start = std::move(first);
    expect_op(":");
    if (!is_op(":") && !is_op("]")) s->stop = parse_expression();
    if (skip_op(":") && !is_op("]")) s->step = parse_expression();
    expect_op("]");
    return s;
  }

  Arguments parse_arguments() {
    Arguments args;
    expect_op("(");
    while (!skip_op(")")) {
      if (!args.positional.empty() || !args.keyword.empty()) expect_op(",");
      if (skip_op(")")) break;
      if (is_op("*") || is_op("**")) error(peek(), "*args and **kwargs are not supported");
      if (peek().type == TokenType::Name && is_op("=", 1)) {
        std::string key = next().text;
        next();
        args.keyword.emplace_back(key, parse_expression());
      } else {
        if (!args.keyword.empty()) error(peek(), "positional argument after keyword argument");
        args.positional.push_back(parse_expression());
      }
    }
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = make(Kind::Call, peek().offset);
    c->object = std::move(callee);
    c->args = parse_arguments();
    return c;
  }

  ExprPtr parse_filters(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        auto f = make(Kind::Filter, next().offset);
        f->object = std::move(node);
        f->name = expect_name("a filter name");
        if (is_op("(")) f->args = parse_arguments();
        node = std::move(f);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_test(ExprPtr node) {
    auto t = make(Kind::Test, next().offset);
    t->negated = skip_name("not");
    t->object = std::move(node);
    t->name = expect_name("a test name");
    const Token& a = peek();
    bool starts_arg = a.type == TokenType::String || a.type == TokenType::Int || a.type == TokenType::Float ||
                      (a.type == TokenType::Name && a.text != "else" && a.text != "or" && a.text != "and") ||
                      is_op("[") || is_op("{");
    if (is_op("(")) {
      t->args = parse_arguments();
    } else if (starts_arg) {
      if (is_name("is")) error(a, "tests cannot be chained with 'is'");
      t->args.positional.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }

  const LexedTemplate& lexed_;
  const std::string& name_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

ParsedTemplate parse_template(const std::string& source, const std::string& name) {
  ParsedTemplate t;
  t.lexed = tokenize(source, name);
  t.body = Parser(t.lexed, name).parse_all();
  return t;
}

}  // namespace dsinfer::jinja
