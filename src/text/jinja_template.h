// A compiled chat template: a small Jinja2 interpreter (lexer, parser to an AST, evaluator)
// covering what Hugging Face chat templates use, with transformers' environment settings
// (trim_blocks, lstrip_blocks, loop controls, its tojson / raise_exception / strftime_now).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "text/jinja_value.h"

namespace dsinfer::jinja {

struct ParsedTemplate;

class Template {
 public:
  // Parses `source`; a syntax error throws dsinfer::Error naming `name`, line and column.
  Template(const std::string& source, std::string name);

  // Renders with `variables` (plus the global functions). A runtime error (undefined value
  // misuse, type error, raise_exception) throws dsinfer::Error naming the line and column.
  std::string render(const std::map<std::string, Value>& variables) const;

 private:
  std::shared_ptr<const ParsedTemplate> parsed_;
  std::string name_;
};

}  // namespace dsinfer::jinja
