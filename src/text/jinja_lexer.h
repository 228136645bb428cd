// The chat-template lexer: splits Jinja2 source into text and tag tokens, applying Jinja's
// whitespace control (`-` / `+` markers) with trim_blocks and lstrip_blocks on, as
// transformers configures its environment.
#pragma once
#include <string>
#include <vector>

namespace dsinfer::jinja {

enum class TokenType { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };

struct Token {
  TokenType type;
  std::string text;  // data text, name, decoded string literal, number or operator
  size_t offset;     // into the normalized source, for line/column in errors
};

struct LexedTemplate {
  std::string source;  // newlines normalized to \n, one trailing newline dropped (as Jinja does)
  std::vector<Token> tokens;

  // "line L, column C" of an offset, for error messages.
  std::string position(size_t offset) const;
};

// Throws dsinfer::Error naming `name`, line and column on a lexical error.
LexedTemplate tokenize(const std::string& source, const std::string& name);

}  // namespace dsinfer::jinja
