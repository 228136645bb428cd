// UTF-8 helpers shared by the tokenizer, the detokenizer and the template engine.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

// Appends the UTF-8 encoding of code point `cp` to `out`.
void utf8_append(std::string& out, char32_t cp);

// Decodes the code point starting at `pos` and advances `pos`. Returns U+FFFD and advances one
// byte on an invalid sequence, so callers always make progress.
char32_t utf8_next(std::string_view s, size_t& pos);

// Decodes a whole string into code points (invalid bytes become U+FFFD).
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);

// Length of the valid UTF-8 sequence starting at `pos`, or 0 when the bytes there are not a
// valid sequence. `incomplete` is set when the bytes are a valid prefix cut short by the end.
size_t utf8_sequence_length(std::string_view s, size_t pos, bool* incomplete);

// Replaces each maximal invalid subsequence with U+FFFD, as Rust's String::from_utf8_lossy and
// Python's bytes.decode(errors="replace") do; HF tokenizers decode this way.
std::string utf8_lossy(std::string_view bytes);

// The length of the longest prefix of `bytes` that does not end inside a still-incomplete
// UTF-8 sequence: what can be shown now without risking half a character.
size_t utf8_complete_prefix(std::string_view bytes);

// Unicode White_Space (what Rust's char::is_whitespace and Python's str.isspace accept).
bool is_unicode_whitespace(char32_t cp);

}  // namespace dsinfer
