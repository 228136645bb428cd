#include "text/normalizer.h"

#include "core/error.h"
#include "text/json_util.h"
#include "text/unicode_normalize.h"

namespace dsinfer {

Normalizer Normalizer::from_json(const nlohmann::json& spec, const std::string& where) {
  Normalizer n;
  if (!spec.is_null()) n.add(spec, where);
  return n;
}

void Normalizer::add(const nlohmann::json& spec, const std::string& where) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    fail(where, ": expected an object with a string \"type\"");
  std::string type = spec["type"];
  if (type == "NFC") {
    steps_.push_back(Form::NFC);
  } else if (type == "NFD") {
    steps_.push_back(Form::NFD);
  } else if (type == "Sequence") {
    const auto& list = json_member(spec, "normalizers");
    if (!list.is_array()) fail(where, ".normalizers: expected an array");
    for (size_t i = 0; i < list.size(); ++i) add(list[i], cat(where, ".normalizers[", i, "]"));
  } else {
    fail(where, ": unsupported normalizer type '", type, "' (supported: NFC, NFD, Sequence)");
  }
}

std::string Normalizer::apply(std::string_view text) const {
  std::string out(text);
  for (Form f : steps_) out = f == Form::NFC ? unicode_nfc(out) : unicode_nfd(out);
  return out;
}

}  // namespace dsinfer
