// Tokenizer features on a tiny byte-level BPE (tiny_tokenizer.json) under many variants of
// pre-tokenizer, normalizer, added-token flags, post-processor and merges format, against the
// ids HF tokenizers gives (tiny_tokenizer_cases.json); plus malformed tokenizer.json errors.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/json_file.h"
#include "text/tokenizer.h"
#include "../temp_path.h"

using namespace dsinfer;

namespace {

std::string data_path(const std::string& name) { return std::string(DSINFER_SOURCE_DIR) + "/tests/text/" + name; }

Tokenizer load_variant(const nlohmann::json& patch) {
  nlohmann::json j = read_json_file(data_path("tiny_tokenizer.json"));
  j.merge_patch(patch);
  const dsinfer::testing::TempPath file("variant.json");
  return Tokenizer::load(file.write(j.dump()), nullptr);
}

TEST(TokenizerFeatures, VariantsMatchHuggingFace) {
  nlohmann::json spec = read_json_file(data_path("tiny_tokenizer_cases.json"));
  for (const auto& v : spec["variants"]) {
    Tokenizer tok = load_variant(v["patch"]);
    for (const auto& c : v["cases"]) {
      std::string text = c["text"];
      std::vector<int> ids = c["ids"];
      EXPECT_EQ(tok.encode(text, false), ids) << v["name"] << ": '" << text << "'";
      EXPECT_EQ(tok.encode(text, true), c["ids_with_special"].get<std::vector<int>>()) << v["name"] << ": '" << text << "'";
      EXPECT_EQ(tok.decode(ids, false), c["decoded"].get<std::string>()) << v["name"] << ": '" << text << "'";
    }
  }
}

// The message of the dsinfer::Error that loading `tokenizer_json` throws.
std::string load_error(const std::string& tokenizer_json) {
  try {
    const dsinfer::testing::TempPath file("bad.json");
    Tokenizer::load(file.write(tokenizer_json), nullptr);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string patched(const nlohmann::json& patch) {
  nlohmann::json j = read_json_file(data_path("tiny_tokenizer.json"));
  j.merge_patch(patch);
  return j.dump();
}

TEST(TokenizerErrors, MalformedFilesNameWhatAndWhere) {
  EXPECT_NE(load_error("{\"model\": ").find("malformed JSON in '"), std::string::npos);
  EXPECT_NE(load_error("[1, 2]").find("is not a JSON object"), std::string::npos);
  EXPECT_NE(load_error("{}").find("missing \"model\""), std::string::npos);
  EXPECT_NE(load_error(patched({{"model", {{"type", "Unigram"}}}})).find("unsupported model type 'Unigram'"), std::string::npos);
  std::string e = load_error(patched({{"model", {{"merges", {"Ġ t", "nosuch token"}}}}}));
  EXPECT_NE(e.find("model.merges[1]: merge part 'nosuch' is not in the vocab"), std::string::npos) << e;
  e = load_error(patched({{"model", {{"merges", {"a b c"}}}}}));
  EXPECT_NE(e.find("model.merges[0]: expected \"a b\""), std::string::npos) << e;
  e = load_error(patched({{"model", {{"vocab", {{"a", "zero"}}}}}}));
  EXPECT_NE(e.find("model.vocab[\"a\"]: expected a non-negative integer id"), std::string::npos) << e;
  e = load_error(patched({{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}}}));
  EXPECT_NE(e.find("bad regex at"), std::string::npos) << e;
  EXPECT_NE(e.find("pre_tokenizer.pattern.Regex"), std::string::npos) << e;
  e = load_error(patched({{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Metaspace"}}}}}}}));
  EXPECT_NE(e.find("pre_tokenizer.pretokenizers[0]: unsupported pre_tokenizer type 'Metaspace'"), std::string::npos) << e;
  e = load_error(patched({{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}}}}));
  EXPECT_NE(e.find("unknown split behavior"), std::string::npos) << e;
  e = load_error(patched({{"normalizer", {{"type", "Lowercase"}}}}));
  EXPECT_NE(e.find("unsupported normalizer type 'Lowercase'"), std::string::npos) << e;
  e = load_error(patched({{"decoder", {{"type", "WordPiece"}}}}));
  EXPECT_NE(e.find("unsupported decoder"), std::string::npos) << e;
  e = load_error(patched({{"added_tokens", {{{"id", 300}}}}}));
  EXPECT_NE(e.find("added_tokens[0].content: expected a non-empty string"), std::string::npos) << e;
  EXPECT_NE(load_error("").find("malformed JSON"), std::string::npos);
  try {
    Tokenizer::load("/nonexistent/tokenizer.json", nullptr);
    ADD_FAILURE() << "no error for a missing file";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("cannot open '/nonexistent/tokenizer.json'"), std::string::npos);
  }
}

TEST(TokenizerFeatures, ConfigTokensMayBeStringsOrObjects) {
  nlohmann::json cfg = {{"bos_token", {{"content", "<s>"}, {"__type", "AddedToken"}}}, {"eos_token", "</s>"}, {"add_bos_token", true}};
  nlohmann::json patch = {{"added_tokens", {{{"id", 279}, {"content", "<s>"}, {"special", true}},
                                            {{"id", 280}, {"content", "</s>"}, {"special", true}}}}};
  nlohmann::json j = read_json_file(data_path("tiny_tokenizer.json"));
  j.merge_patch(patch);
  const dsinfer::testing::TempPath file("cfg.json");
  Tokenizer tok = Tokenizer::load(file.write(j.dump()), &cfg);
  EXPECT_EQ(tok.bos_id(), 279);
  EXPECT_EQ(tok.eos_id(), 280);
  EXPECT_EQ(tok.encode("a", true), (std::vector<int>{279, 97}));
  EXPECT_EQ(tok.bos_token(), "<s>");
}

}  // namespace
