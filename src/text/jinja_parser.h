// The chat-template parser: tokens to a syntax tree, following Jinja2's grammar and operator
// precedence.
#pragma once
#include <string>

#include "text/jinja_ast.h"
#include "text/jinja_lexer.h"

namespace dsinfer::jinja {

struct ParsedTemplate {
  LexedTemplate lexed;  // kept for error positions at render time
  StmtList body;
};

// Throws dsinfer::Error naming `name`, line and column on a syntax error.
ParsedTemplate parse_template(const std::string& source, const std::string& name);

}  // namespace dsinfer::jinja
