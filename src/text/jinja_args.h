// Binding call arguments to named parameters, as Python does for builtins.
#pragma once
#include <string>
#include <vector>

#include "core/error.h"
#include "text/jinja_value.h"

namespace dsinfer::jinja {

class BoundArgs {
 public:
  // Binds positional arguments in order, then keywords by name. Throws for too many
  // positional arguments or an unknown keyword; `rest_from` > 0 lets positional arguments
  // past that index through as extras (for *args).
  BoundArgs(const CallArgs& args, const std::string& function, std::vector<std::string> names, size_t rest_from = 0)
      : args_(args), names_(std::move(names)) {
    size_t limit = rest_from ? rest_from : names_.size();
    if (!rest_from && args.positional.size() > limit)
      throw ValueError(cat(function, "() takes at most ", limit, " arguments (", args.positional.size(), " given)"));
    for (const auto& [key, value] : args.keyword) {
      bool known = false;
      for (size_t i = 0; i < names_.size(); ++i) known |= names_[i] == key;
      if (!known) throw ValueError(cat(function, "() got an unexpected keyword argument '", key, "'"));
    }
  }

  // The argument for parameter `i`, or nullptr when not given.
  const Value* get(size_t i) const {
    if (i < args_.positional.size() && i < names_.size()) return &args_.positional[i];
    for (const auto& [key, value] : args_.keyword)
      if (i < names_.size() && key == names_[i]) return &value;
    return nullptr;
  }
  Value get_or(size_t i, Value fallback) const {
    const Value* v = get(i);
    return v ? *v : fallback;
  }

 private:
  const CallArgs& args_;
  std::vector<std::string> names_;
};

}  // namespace dsinfer::jinja
