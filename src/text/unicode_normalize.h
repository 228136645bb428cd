// Canonical Unicode normalization (NFC, NFD), as the `NFC`/`NFD` normalizers of tokenizer.json.
#pragma once
#include <string>
#include <string_view>

namespace dsinfer {

std::string unicode_nfd(std::string_view text);
std::string unicode_nfc(std::string_view text);

}  // namespace dsinfer
