// dsinfer plan, run as a user would.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {

struct CliRun {
  int status = -1;
  std::string out;  // stdout and stderr
};

CliRun run_plan(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(DSINFER_BINARY) + " plan " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  r.status = pclose(p);
  return r;
}

TEST(PlanCli, JsonForAModel) {
  const CliRun r = run_plan("--model deepseek-r1-distill-qwen-7b --gpu L4 --batch 4 --price 0.8 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["params"]["total"], 7615616512);
  EXPECT_EQ(j["kv_cache"]["bytes_per_token"], 57344);
  EXPECT_EQ(j["gpu"]["name"], "L4");
  EXPECT_TRUE(j["fits"].get<bool>());
  EXPECT_GT(j["cost"]["usd_per_million_output_tokens"].get<double>(), 0);
}

TEST(PlanCli, TableAndPlotForAFixtureDirectory) {
  const auto svg = std::filesystem::temp_directory_path() / "dsinfer_plan_cli_test.svg";
  const CliRun r = run_plan(std::string("--model ") + DSINFER_FIXTURES + "/ds3-tiny --kv-dtype fp8 --gpu-mem 2 --gpu-bw 100 " +
                    "--gpu-tflops 10 --plot " + svg.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("on 1 x custom"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total 8,323,944"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(svg));
  std::filesystem::remove(svg);
}

TEST(PlanCli, ListAndErrors) {
  const CliRun list = run_plan("--list");
  ASSERT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("deepseek-r1-distill-llama-70b"), std::string::npos);
  EXPECT_NE(list.out.find("MI300X"), std::string::npos);
  const CliRun model = run_plan("--model nope");
  EXPECT_NE(model.status, 0);
  EXPECT_NE(model.out.find("unknown model 'nope' (built-in: deepseek-r1-distill-llama-70b"), std::string::npos);
  const CliRun gpu = run_plan("--model deepseek-v3 --gpu X1");
  EXPECT_NE(gpu.status, 0);
  EXPECT_NE(gpu.out.find("unknown GPU 'X1' (known: A100-40"), std::string::npos);
  const CliRun custom = run_plan("--model deepseek-v3 --gpu-mem 80");
  EXPECT_NE(custom.status, 0);
  EXPECT_NE(custom.out.find("--gpu-bw"), std::string::npos);
}

}  // namespace
