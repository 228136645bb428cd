// Reading the golden fixtures (../shared/fixtures): ref.json and the reference logits in ref.bin.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dsinfer::testing {

// A test name from a fixture's name (gtest takes letters, digits and '_'): ds3-tiny -> ds3_tiny.
inline std::string fixture_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

inline std::string fixture_dir(const std::string& name) {
  const char* env = std::getenv("DSINFER_FIXTURES");
  return (env ? std::string(env) : std::string(DSINFER_FIXTURES)) + "/" + name;
}

inline nlohmann::json fixture_ref(const std::string& name) {
  std::ifstream in(fixture_dir(name) + "/ref.json");
  return nlohmann::json::parse(in);
}

// Reference logits of one sequence: rows x vocab floats.
inline std::vector<float> fixture_logits(const std::string& name, const nlohmann::json& seq, int vocab) {
  size_t rows = seq["logits_rows"] == "all" ? seq["input_ids"].size() : 1;
  std::vector<float> out(rows * vocab);
  std::ifstream in(fixture_dir(name) + "/ref.bin", std::ios::binary);
  in.seekg(seq["logits_offset_bytes"].get<size_t>());
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
  return out;
}

inline const std::vector<std::string>& all_fixtures() {
  static const std::vector<std::string> names = {"ds3-tiny", "ds2-lite-tiny", "qwen2-tiny", "llama-tiny"};
  return names;
}

}  // namespace dsinfer::testing
