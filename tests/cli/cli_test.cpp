// The CLI contract, run as users and external checks run it: the real binary, real fixtures.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../fixture_util.h"
#include "../mtp_checkpoint_util.h"
#include "../temp_path.h"

using namespace dsinfer::testing;

namespace {

struct Result {
  int status;
  std::string out;
};

// Runs dsinfer with `args` (stdin from `input`), returning exit status and stdout.
Result run(const std::string& args, const std::string& input = "") {
  std::string in_file = std::filesystem::temp_directory_path() / ("dsinfer_cli_in_" + std::to_string(::getpid()));
  std::ofstream(in_file) << input;
  std::string cmd = std::string(DSINFER_BINARY) + " " + args + " < " + in_file + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  std::filesystem::remove(in_file);
  return {WEXITSTATUS(status), out};
}

std::string join(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace

TEST(Cli, ScoreWritesTheReferenceLogits) {
  nlohmann::json seq = fixture_ref("llama-tiny")["sequences"][0];
  std::vector<int> ids = seq["input_ids"].get<std::vector<int>>();
  std::string out_file = std::filesystem::temp_directory_path() / ("dsinfer_score_" + std::to_string(::getpid()));
  Result r = run("score --model " + fixture_dir("llama-tiny") + " --ids " + join(ids) + " --output " + out_file);
  ASSERT_EQ(r.status, 0);
  const int vocab = 128256;
  std::vector<float> got(ids.size() * vocab);
  std::ifstream(out_file, std::ios::binary).read(reinterpret_cast<char*>(got.data()), got.size() * 4);
  EXPECT_EQ(std::filesystem::file_size(out_file), got.size() * 4);
  std::vector<float> want = fixture_logits("llama-tiny", seq, vocab);
  const size_t offset = got.size() - want.size();
  float max_ref = 0, max_err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(want[i]));
    max_err = std::max(max_err, std::fabs(want[i] - got[offset + i]));
  }
  EXPECT_LE(max_err, 1e-4f * max_ref);
  std::filesystem::remove(out_file);
}

TEST(Cli, GenerateJsonReproducesTheGreedyReference) {
  for (const std::string& name : {std::string("ds3-tiny"), std::string("qwen2-tiny")}) {
    nlohmann::json g = fixture_ref(name)["greedy"];
    Result r = run("generate --model " + fixture_dir(name) + " --ids " + join(g["prompt_ids"]) + " --max-tokens " +
                   std::to_string(g["output_ids"].size()) + " --ignore-eos --json");
    ASSERT_EQ(r.status, 0) << name;
    std::string last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
    nlohmann::json j = nlohmann::json::parse(last);
    EXPECT_EQ(j["ids"], g["output_ids"]) << name;
    EXPECT_EQ(j["finish_reason"], "length");
    EXPECT_TRUE(j["text"].is_string());
  }
}

TEST(Cli, GenerateFromTextStopsAtAStopString) {
  Result free_run = run("generate --model " + fixture_dir("qwen2-tiny") + " --prompt Hello --max-tokens 12 --json");
  ASSERT_EQ(free_run.status, 0);
  std::string text = nlohmann::json::parse(free_run.out)["text"];
  ASSERT_GT(text.size(), 6u);
  std::string stop = text.substr(3, 3);
  std::string cmd = "generate --model " + fixture_dir("qwen2-tiny") + " --prompt Hello --max-tokens 12 --json --stop '" +
                    stop + "'";
  if (stop.find('\'') != std::string::npos) GTEST_SKIP() << "stop string with a quote";
  Result r = run(cmd);
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["text"], text.substr(0, text.find(stop)));
}

TEST(Cli, ChatStreamsOneReplyPerLine) {
  Result r = run("chat --model " + fixture_dir("ds3-tiny") + " --max-tokens 5", "Hi\nAgain\n\n");
  EXPECT_EQ(r.status, 0);
  size_t prompts = 0;
  for (size_t p = r.out.find("> "); p != std::string::npos; p = r.out.find("> ", p + 2)) ++prompts;
  EXPECT_GE(prompts, 3u);
}

TEST(Cli, BadInputGivesAClearErrorAndExitStatus1) {
  EXPECT_EQ(run("generate --model /nonexistent --ids 1,2").status, 1);
  EXPECT_EQ(run("generate --model " + fixture_dir("qwen2-tiny") + " --ids 1,x,3").status, 1);
  EXPECT_EQ(run("generate --model " + fixture_dir("ds2-lite-tiny") + " --prompt hi").status, 1);
  EXPECT_EQ(run("score --model " + fixture_dir("ds2-lite-tiny") + " --ids 5000 --output /dev/null").status, 1);
  EXPECT_EQ(run("detokenize --model " + fixture_dir("qwen2-tiny") + " --ids 9999999").status, 1);
  EXPECT_NE(run("frobnicate").status, 0);
}

// bench's table: one row per batch size, each decode figure with its roofline (the planner's
// bytes over the copy bandwidth measured in the same run) and the share of it reached.
TEST(Cli, BenchReportsDecodeAgainstItsRoofline) {
  Result r = run("bench --model " + fixture_dir("ds2-lite-tiny") + " --prompt-len 16 --gen-len 4 --batch 1,2");
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("copy bandwidth"), std::string::npos) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  int rows = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("| DeepseekV2ForCausalLM", 0) != 0) continue;
    std::vector<std::string> cols;
    std::istringstream fields(line.substr(1));
    for (std::string f; std::getline(fields, f, '|');) cols.push_back(f);
    ASSERT_EQ(cols.size(), 10u) << line;
    EXPECT_EQ(std::stoi(cols[4]), rows == 0 ? 1 : 2) << line;
    const double step_ms = std::stod(cols[6]), roofline_ms = std::stod(cols[8]), share = std::stod(cols[9]);
    EXPECT_GT(roofline_ms, 0.0) << line;
    // The share agrees with the printed times up to their rounding (3 decimals, the share to a
    // whole percent): on a tiny model a step takes ~0.1 ms, where 0.0005 ms moves it ~0.6 points.
    const double h = 0.0005;
    EXPECT_GE(share, 100.0 * (roofline_ms - h) / (step_ms + h) - 0.5) << line;
    EXPECT_LE(share, 100.0 * (roofline_ms + h) / (step_ms - h) + 0.5) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 2) << r.out;
}

// The KV cache's block size: the model's (64 for DeepSeek's latent cache, 16 otherwise) unless
// --block-size asks; a negative one is refused.
TEST(Cli, BenchCachesInBlocksOfTheModelsSizeUnlessAsked) {
  const std::string ds = "bench --model " + fixture_dir("ds2-lite-tiny") + " --prompt-len 8 --gen-len 2";
  EXPECT_NE(run(ds).out.find("in blocks of 64"), std::string::npos);
  EXPECT_NE(run(ds + " --block-size 16").out.find("in blocks of 16"), std::string::npos);
  EXPECT_NE(run("bench --model " + fixture_dir("qwen2-tiny") + " --prompt-len 8 --gen-len 2").out.find("in blocks of 16"),
            std::string::npos);
  EXPECT_NE(run(ds + " --block-size -1").status, 0);  // CLI11's range check
}

// With a GPU it prints its table; without one (or without CUDA) it must fail with status 1, not crash.
TEST(Cli, BenchGemmRunsOrFailsCleanly) {
  Result r = run("bench-gemm --m 16 --nk 256x256 --repeats 1 --inner 1");
  if (r.status == 0) {
    EXPECT_NE(r.out.find("TFLOP/s"), std::string::npos);
  } else {
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
  }
  EXPECT_EQ(run("bench-gemm --nk 7168").status, 1);  // a malformed shape
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* cmd :
       {"score", "generate", "tokenize", "detokenize", "template", "chat", "bench", "bench-gemm", "plan", "serve"}) {
    Result r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("--"), std::string::npos) << cmd;
  }
  EXPECT_EQ(run("--help").status, 0);
}

TEST(Cli, SpeculativeDecodingGivesTheSameTokensAndRefusesBadLookups) {
  nlohmann::json g = fixture_ref("ds3-tiny")["greedy"];
  const std::string base = "generate --model " + fixture_dir("ds3-tiny") + " --ids " + join(g["prompt_ids"]) +
                           " --max-tokens " + std::to_string(g["output_ids"].size()) + " --ignore-eos --json";
  Result r = run(base + " --num-speculative-tokens 3 --prompt-lookup-min 1");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1))["ids"], g["output_ids"]);
  EXPECT_EQ(run(base + " --num-speculative-tokens 3 --prompt-lookup-min 5 --prompt-lookup-max 2").status, 1);
}

// DeepSeek-V3's MTP layer as the drafter, one draft a step or chained: the reference's greedy
// tokens, in generate and bench; a model without the layer, or an unknown method, is refused.
TEST(Cli, MtpDraftsGiveTheSameTokensAndNeedTheLayer) {
  TempPath dir("cli_mtp");
  make_mtp_checkpoint("ds3-tiny", MtpWeights::Random, dir.path());
  nlohmann::json g = fixture_ref("ds3-tiny")["greedy"];
  const std::string args = " --ids " + join(g["prompt_ids"]) + " --max-tokens " +
                           std::to_string(g["output_ids"].size()) + " --ignore-eos --json --speculative-method mtp";
  for (const char* k : {" --num-speculative-tokens 1", " --num-speculative-tokens 3"}) {
    Result r = run("generate --model " + dir.path().string() + args + k);
    ASSERT_EQ(r.status, 0) << k;
    EXPECT_EQ(nlohmann::json::parse(r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1))["ids"], g["output_ids"]) << k;
  }
  EXPECT_EQ(run("generate --model " + dir.path().string() + " --ids 1,2 --speculative-method eagle").status, 1);
  EXPECT_EQ(run("generate --model " + fixture_dir("ds3-tiny") + args + " --num-speculative-tokens 1").status, 1);
  Result bench = run("bench --model " + dir.path().string() + " --prompt-len 8 --gen-len 4 --batch 1,2 --speculative-method mtp");
  ASSERT_EQ(bench.status, 0);
  EXPECT_NE(bench.out.find("with MTP drafts tok/s"), std::string::npos) << bench.out;
  EXPECT_NE(bench.out.find("| 2 | "), std::string::npos) << bench.out;
}

// llama.cpp's --json-schema: the output is a whole text of the schema (greedy or sampled), and a
// schema that cannot be enforced is refused with exit status 1.
TEST(Cli, GenerateHoldsItsOutputToAJsonSchema) {
  const std::string schema = R"({"type":"object","properties":{"ok":{"type":"boolean"},"n":{"enum":[1,2]}},"required":["ok"]})";
  TempPath file("cli_schema.json");
  for (const std::string& flag : {"--json-schema '" + schema + "'", "--json-schema-file " + file.write(schema)}) {
    for (const char* sampling : {"", " --temperature 1 --seed 4"}) {
      Result r = run("generate --model " + fixture_dir("qwen2-tiny") + " --prompt 'Answer:' --max-tokens 300 --json " + flag +
                     sampling);
      ASSERT_EQ(r.status, 0) << flag;
      const nlohmann::json out = nlohmann::json::parse(r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1));
      EXPECT_EQ(out["finish_reason"], "stop");
      const nlohmann::json value = nlohmann::json::parse(out["text"].get<std::string>());
      EXPECT_TRUE(value["ok"].is_boolean()) << out["text"];
    }
  }
  EXPECT_EQ(run("generate --model " + fixture_dir("qwen2-tiny") + " --prompt x --json-schema '{\"pattern\":\"a\"}'").status, 1);
}
