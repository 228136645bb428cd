// The GPT-2 byte-to-unicode mapping of byte-level BPE: every byte is shown as one printable
// code point, so vocab entries are valid strings ("Ġ" is the space byte 0x20).
#pragma once
#include <string>
#include <string_view>

namespace dsinfer {

// The mapped form of raw bytes (each byte becomes one code point, UTF-8 encoded).
std::string byte_level_encode(std::string_view bytes);

// The raw bytes behind a vocab token. As HF's ByteLevel decoder does, a token holding a code
// point outside the mapping is passed through unchanged.
std::string byte_level_decode(std::string_view token);

}  // namespace dsinfer
