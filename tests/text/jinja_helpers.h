// Rendering a template snippet with a JSON context, for the Jinja tests.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "text/jinja_template.h"

inline std::string render_jinja(const std::string& source, const std::string& context_json = "{}") {
  using namespace dsinfer::jinja;
  std::map<std::string, Value> vars;
  auto ctx = nlohmann::ordered_json::parse(context_json);
  for (auto it = ctx.begin(); it != ctx.end(); ++it) vars[it.key()] = Value::from_json(it.value());
  return Template(source, "test").render(vars);
}
