// The official `openai` npm client against the real server (tests/server/openai_client).
#include <filesystem>

#include "server_process.h"
#include "../temp_path.h"

using namespace dsinfer::testing;

namespace {

const std::string kClientDir = std::string(DSINFER_SOURCE_DIR) + "/tests/server/openai_client";

TEST(OpenAiClient, NpmClientTalksToTheServer) {
  if (!std::filesystem::exists(kClientDir + "/node_modules/openai"))
    GTEST_SKIP() << "the openai npm package is not installed: run scripts/setup.sh (npm ci in " << kClientDir << ")";
  ServerProcess s("qwen2-tiny", {"--served-model-name", "tiny-qwen", "--api-key", "test-key"});
  ASSERT_TRUE(s.ready());
  const dsinfer::testing::TempPath log("openai_client_" + std::to_string(s.port()) + ".log");
  std::string cmd = "node " + kClientDir + "/client.mjs http://127.0.0.1:" + std::to_string(s.port()) + "/v1 tiny-qwen > " +
                    log.path().string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(log.path());
  std::stringstream out;
  out << in.rdbuf();
  EXPECT_EQ(rc, 0) << out.str() << "\nserver log:\n" << s.log();
}

}  // namespace
