// Python's str methods on UTF-8 strings, for the template engine. Lengths, indices and
// slices count code points, as Python does.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer::pystr {

size_t length(std::string_view s);
// s[start:stop:step] with Python's slice rules (bounds already known to be in range or null).
std::string slice(std::string_view s, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step);
// s[index] (negative counts from the end); nullopt when out of range.
std::optional<std::string> at(std::string_view s, int64_t index);

// strip/lstrip/rstrip: whitespace when `chars` is null, else any of its code points.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// split(): on runs of whitespace when `sep` is null; maxsplit < 0 means no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);
// Code-point index of the first/last occurrence, or -1.
int64_t find(std::string_view s, std::string_view sub, bool last);
int64_t count(std::string_view s, std::string_view sub);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);
std::string capitalize(std::string_view s);

// isdigit / isalpha / isalnum / isspace / islower / isupper.
bool is_class(std::string_view s, const std::string& which);

}  // namespace dsinfer::pystr
