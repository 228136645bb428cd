#include "text/jinja_lexer.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/error.h"
#include "text/utf8.h"

namespace dsinfer::jinja {
namespace {

// Operators, longest first so that "**" wins over "*".
const char* const kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                  "=",  "(",  ")",  "[",  "]",  "{",  "}", ",", ".", ":", "|"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's str.rstrip() / whitespace test on a UTF-8 string.
size_t rstrip_length(const std::string& s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!is_unicode_whitespace(utf8_next(s, pos))) break;
    end = start;
  }
  return end;
}

bool all_whitespace(const std::string& s, size_t from) {
  return from < s.size() && rstrip_length(s.substr(from)) == 0;
}

// Jinja joins the lines split on \r\n, \r and \n with \n and, without keep_trailing_newline,
// drops a final newline.
std::string normalize_newlines(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r') {
      out += '\n';
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else {
      out += in[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& name) : name_(name) { lexed_.source = normalize_newlines(source); }

  LexedTemplate run() {
    const std::string& src = lexed_.source;
    bool line_starting = true;
    while (pos_ < src.size()) {
      size_t tag = find_tag(pos_);
      std::string data = src.substr(pos_, tag - pos_);
      if (tag == src.size()) {
        push(TokenType::Data, data, pos_);
        break;
      }
      char kind = src[tag + 1];
      char marker = tag + 2 < src.size() ? src[tag + 2] : '\0';
      if (marker == '-') {
        data.resize(rstrip_length(data));
      } else if (marker != '+' && kind != '{') {
        // lstrip_blocks: a block or comment tag alone on its line takes the line's indent.
        size_t line_start = data.rfind('\n') + 1;  // npos + 1 == 0
        if ((line_start > 0 || line_starting) && all_whitespace(data, line_start)) data.resize(line_start);
      }
      if (!data.empty()) push(TokenType::Data, data, pos_);
      pos_ = tag + 2 + (marker == '-' || marker == '+' ? 1 : 0);
      if (kind == '#') lex_comment(tag);
      else if (kind == '{' || !lex_raw(tag)) lex_tag(kind == '{', tag);
      line_starting = pos_ > 0 && src[pos_ - 1] == '\n';
    }
    push(TokenType::End, "", src.size());
    return std::move(lexed_);
  }

 private:
  [[noreturn]] void error(size_t offset, const std::string& msg) const {
    fail("chat template '", name_, "' syntax error at ", lexed_.position(offset), ": ", msg);
  }

  void push(TokenType type, std::string text, size_t offset) { lexed_.tokens.push_back({type, std::move(text), offset}); }

  size_t find_tag(size_t from) const {
    const std::string& src = lexed_.source;
    for (size_t i = src.find('{', from); i != std::string::npos; i = src.find('{', i + 1))
      if (i + 1 < src.size() && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#')) return i;
    return src.size();
  }

  // After `%}` or `#}`: `-` strips all following whitespace, `+` nothing, and otherwise
  // trim_blocks removes one newline.
  void after_block_end(char marker) {
    const std::string& src = lexed_.source;
    if (marker == '-') {
      while (pos_ < src.size() && is_space(src[pos_])) ++pos_;
    } else if (marker != '+' && pos_ < src.size() && src[pos_] == '\n') {
      ++pos_;
    }
  }

  void lex_comment(size_t tag) {
    size_t end = lexed_.source.find("#}", pos_);
    if (end == std::string::npos) error(tag, "missing end of comment tag");
    char marker = end > pos_ ? lexed_.source[end - 1] : '\0';
    pos_ = end + 2;
    after_block_end(marker);
  }

  // {% raw %}...{% endraw %}: the content is data, verbatim.
  bool lex_raw(size_t tag) {
    const std::string& src = lexed_.source;
    size_t p = pos_;
    while (p < src.size() && is_space(src[p])) ++p;
    if (src.compare(p, 3, "raw") != 0 || (p + 3 < src.size() && is_name_char(src[p + 3]))) return false;
    p += 3;
    while (p < src.size() && is_space(src[p])) ++p;
    char open_marker = (p < src.size() && (src[p] == '-' || src[p] == '+')) ? src[p++] : '\0';
    if (src.compare(p, 2, "%}") != 0) error(p, "expected '%}' after 'raw'");
    pos_ = p + 2;
    after_block_end(open_marker);
    for (size_t i = src.find("{%", pos_); i != std::string::npos; i = src.find("{%", i + 1)) {
      size_t q = i + 2;
      char close_marker = (q < src.size() && (src[q] == '-' || src[q] == '+')) ? src[q++] : '\0';
      while (q < src.size() && is_space(src[q])) ++q;
      if (src.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src.size() && is_space(src[q])) ++q;
      char end_marker = (q < src.size() && (src[q] == '-' || src[q] == '+')) ? src[q++] : '\0';
      if (src.compare(q, 2, "%}") != 0) continue;
      std::string data = src.substr(pos_, i - pos_);
      if (close_marker == '-') data.resize(rstrip_length(data));
      if (!data.empty()) push(TokenType::Data, data, pos_);
      pos_ = q + 2;
      after_block_end(end_marker);
      return true;
    }
    error(tag, "missing {% endraw %}");
  }

  void lex_tag(bool is_var, size_t tag) {
    const std::string& src = lexed_.source;
    push(is_var ? TokenType::VarBegin : TokenType::BlockBegin, "", tag);
    int depth = 0;  // brackets open: a closing `}}` inside a dict literal does not end the tag
    while (true) {
      while (pos_ < src.size() && is_space(src[pos_])) ++pos_;
      if (pos_ >= src.size()) error(tag, is_var ? "missing '}}' to close the expression" : "missing '%}' to close the tag");
      if (depth == 0 && end_of_tag(is_var)) return;
      char c = src[pos_];
      if (is_name_start(c)) {
        size_t start = pos_;
        while (pos_ < src.size() && is_name_char(src[pos_])) ++pos_;
        push(TokenType::Name, src.substr(start, pos_ - start), start);
      } else if (is_digit(c)) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string();
      } else {
        lex_operator(depth);
      }
    }
  }

  bool end_of_tag(bool is_var) {
    const std::string& src = lexed_.source;
    const char* close = is_var ? "}}" : "%}";
    char marker = src[pos_];
    size_t at = (marker == '-' || (marker == '+' && !is_var)) ? pos_ + 1 : pos_;
    if (src.compare(at, 2, close) != 0) return false;
    if (at == pos_) marker = '\0';
    push(is_var ? TokenType::VarEnd : TokenType::BlockEnd, "", pos_);
    pos_ = at + 2;
    if (is_var) {
      if (marker == '-')
        while (pos_ < src.size() && is_space(src[pos_])) ++pos_;
    } else {
      after_block_end(marker);
    }
    return true;
  }

  void lex_number() {
    const std::string& src = lexed_.source;
    size_t start = pos_;
    auto digits = [&] {
      while (pos_ < src.size() && (is_digit(src[pos_]) || (src[pos_] == '_' && pos_ + 1 < src.size() && is_digit(src[pos_ + 1]))))
        ++pos_;
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < src.size() && src[pos_] == '.' && is_digit(src[pos_ + 1])) {
      ++pos_;
      digits();
      is_float = true;
    }
    if (pos_ < src.size() && (src[pos_] == 'e' || src[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src.size() && (src[p] == '+' || src[p] == '-')) ++p;
      if (p < src.size() && is_digit(src[p])) {
        pos_ = p;
        digits();
        is_float = true;
      }
    }
    std::string text = src.substr(start, pos_ - start);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    push(is_float ? TokenType::Float : TokenType::Int, text, start);
  }

  // Python string-literal escapes (what Jinja's unicode-escape decoding accepts).
  void lex_string() {
    const std::string& src = lexed_.source;
    size_t start = pos_;
    char quote = src[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src.size()) error(start, "unterminated string literal");
      char c = src[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src.size()) error(start, "unterminated string literal");
      char e = src[pos_++];
      switch (e) {
        case '\n': break;  // a line continuation
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': out += hex_escape(2, start); break;
        case 'u': out += hex_escape(4, start); break;
        case 'U': out += hex_escape(8, start); break;
        default:
          if (e >= '0' && e <= '7') {
            unsigned v = e - '0';
            for (int i = 0; i < 2 && pos_ < src.size() && src[pos_] >= '0' && src[pos_] <= '7'; ++i) v = v * 8 + (src[pos_++] - '0');
            utf8_append(out, v);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    push(TokenType::String, out, start);
  }

  std::string hex_escape(int digits, size_t start) {
    const std::string& src = lexed_.source;
    if (pos_ + digits > src.size()) error(start, "truncated \\x/\\u escape in string literal");
    std::string hex = src.substr(pos_, digits);
    if (!std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
      error(start, "bad escape '\\" + std::string(1, src[pos_ - 1]) + hex + "' in string literal");
    pos_ += digits;
    std::string out;
    char32_t cp = static_cast<char32_t>(std::stoul(hex, nullptr, 16));
    if (cp > 0x10FFFF) error(start, "escape outside the Unicode range in string literal");
    utf8_append(out, cp);
    return out;
  }

  void lex_operator(int& depth) {
    const std::string& src = lexed_.source;
    for (const char* op : kOperators) {
      size_t n = std::strlen(op);
      if (src.compare(pos_, n, op) != 0) continue;
      if (n == 1 && (op[0] == '(' || op[0] == '[' || op[0] == '{')) ++depth;
      if (n == 1 && (op[0] == ')' || op[0] == ']' || op[0] == '}')) {
        if (depth == 0) error(pos_, cat("unexpected '", op, "'"));
        --depth;
      }
      push(TokenType::Op, op, pos_);
      pos_ += n;
      return;
    }
    error(pos_, cat("unexpected character '", src[pos_], "'"));
  }

  std::string name_;
  LexedTemplate lexed_;
  size_t pos_ = 0;
};

}  // namespace

std::string LexedTemplate::position(size_t offset) const {
  offset = std::min(offset, source.size());
  size_t line = 1 + std::count(source.begin(), source.begin() + offset, '\n');
  size_t line_start = source.rfind('\n', offset == 0 ? 0 : offset - 1);
  size_t column = line_start == std::string::npos || offset == 0 ? offset + 1 : offset - line_start;
  return cat("line ", line, ", column ", column);
}

LexedTemplate tokenize(const std::string& source, const std::string& name) { return Lexer(source, name).run(); }

}  // namespace dsinfer::jinja
