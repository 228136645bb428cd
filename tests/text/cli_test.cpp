// The dsinfer tokenize / detokenize / template commands, run as a user would, against the
// fixtures' reference ids and renderings.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "fixtures.h"
#include "../temp_path.h"

using dsinfer::testing::model_dir_of;
using dsinfer::testing::tokenizer_refs;

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CliRun {
  int status;
  std::string out;
};

// Runs the CLI with `args` (already quoted); stderr goes to stdout when `merge_stderr`.
CliRun run_cli(const std::string& args, bool merge_stderr = false) {
  std::string cmd = quote(DSINFER_BINARY) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string id_list(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

const std::vector<std::string> kNames = {"deepseek_v3", "qwen", "llama3"};

// Each run loads a tokenizer, so the CLI is checked on the cases that stress quoting and
// bytes (spaces, CR/LF, emoji, added tokens); the library tests cover every case.
const nlohmann::json& cli_cases(const std::string& name) {
  static std::map<std::string, nlohmann::json> picked;
  if (!picked.count(name)) {
    picked[name] = nlohmann::json::array();
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["cases"]) {
      std::string t = c["text"];
      if (t.find('\r') != std::string::npos || t.find("emoji") == 0 || t.find('<') == 0 || t.find("  ") == 0)
        picked[name].push_back(c);
    }
  }
  return picked[name];
}

TEST(TextCli, TokenizePrintsTheReferenceIds) {
  for (const std::string& name : kNames) {
    std::string model = "--model " + quote(model_dir_of(name));
    for (const auto& c : cli_cases(name)) {
      CliRun r = run_cli("tokenize " + model + " --text " + quote(c["text"]));
      ASSERT_EQ(r.status, 0) << name;
      EXPECT_EQ(nlohmann::json::parse(r.out), c["ids"]) << name << ": " << c["text"];
    }
    const auto& c = cli_cases(name)[0];
    const dsinfer::testing::TempPath text("text.txt");
    CliRun f = run_cli("tokenize " + model + " --text-file " + quote(text.write(c["text"])));
    EXPECT_EQ(nlohmann::json::parse(f.out), c["ids"]) << name << ": " << c["text"];
  }
}

TEST(TextCli, TokenizeAddSpecialPrependsBos) {
  CliRun r = run_cli("tokenize --model " + quote(model_dir_of("llama3")) + " --text Hi --add-special");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "[128000,13347]");
}

TEST(TextCli, TokenizeChatPrintsTheTemplateIds) {
  for (const std::string& name : kNames) {
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["chat"]) {
      CliRun r = run_cli("tokenize --model " + quote(model_dir_of(name)) + " --chat " + quote(c["messages"].dump()));
      ASSERT_EQ(r.status, 0) << name;
      EXPECT_EQ(nlohmann::json::parse(r.out), c["ids"]) << name;
    }
  }
}

TEST(TextCli, DetokenizePrintsTheTextByteExact) {
  for (const std::string& name : kNames) {
    for (const auto& c : cli_cases(name)) {
      CliRun r = run_cli("detokenize --model " + quote(model_dir_of(name)) + " --ids " + quote(id_list(c["ids"])));
      ASSERT_EQ(r.status, 0) << name;
      EXPECT_EQ(r.out, c["decoded"].get<std::string>()) << name;
    }
  }
}

TEST(TextCli, TemplatePrintsTheRenderingByteExact) {
  for (const std::string& name : kNames) {
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["chat"]) {
      const dsinfer::testing::TempPath file("messages.json");
      CliRun r = run_cli("template --model " + quote(model_dir_of(name)) + " --messages " + quote(file.write(c["messages"].dump())));
      ASSERT_EQ(r.status, 0) << name;
      EXPECT_EQ(r.out, c["rendered"].get<std::string>()) << name;
    }
  }
}

TEST(TextCli, BadInputFailsWithAClearMessage) {
  CliRun r = run_cli("tokenize --model /nonexistent/model --text hi", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("error: model directory '/nonexistent/model' does not exist"), std::string::npos) << r.out;
  std::string model = " --model " + quote(model_dir_of("qwen"));
  r = run_cli("tokenize" + model + " --text a --chat '[]'", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("exactly one of --text, --text-file and --chat"), std::string::npos) << r.out;
  r = run_cli("detokenize" + model + " --ids 1,x", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("bad token id 'x'"), std::string::npos) << r.out;
  const dsinfer::testing::TempPath bad("bad.json");
  r = run_cli("template" + model + " --messages " + quote(bad.write("[{\"role\": ")), true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("malformed JSON"), std::string::npos) << r.out;
}

}  // namespace
