// Loading checkpoints: valid files, and a clear error naming what and where for each bad one.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/model_dir.h"
#include "io/safetensors_writer.h"

using namespace dsinfer;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("dsinfer_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

void write_raw(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string with_header(const std::string& json, size_t data_bytes) {
  std::string s(8, '\0');
  uint64_t n = json.size();
  std::memcpy(s.data(), &n, 8);
  return s + json + std::string(data_bytes, '\0');
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripsTensorsThroughTheWriter) {
  TempDir d;
  OwnedTensor t{DType::BF16, {2, 3}, std::vector<unsigned char>(12, 7)};
  write_safetensors(d.file("model.safetensors"), {{"a.weight", t}});
  TensorStore s = TensorStore::open_dir(d.str());
  ASSERT_TRUE(s.has("a.weight"));
  EXPECT_EQ(s.get("a.weight").view.shape, (Shape{2, 3}));
  EXPECT_EQ(static_cast<unsigned char*>(s.get("a.weight").view.data)[5], 7);
}

TEST(Safetensors, ReportsTruncatedAndCorruptHeaders) {
  TempDir d;
  write_raw(d.file("model.safetensors"), "abc");
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("too short"), std::string::npos);
  std::string big(8, '\0');
  uint64_t n = 1 << 20;
  std::memcpy(big.data(), &n, 8);
  write_raw(d.file("model.safetensors"), big + "{}");
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("exceeds the file size"), std::string::npos);
  write_raw(d.file("model.safetensors"), with_header("{not json", 0));
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("not a JSON object"), std::string::npos);
  write_raw(d.file("model.safetensors"),
            with_header(R"({"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", 4));
  std::string e = error_of([&] { TensorStore::open_dir(d.str()); });
  EXPECT_NE(e.find("'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  write_raw(d.file("model.safetensors"),
            with_header(R"({"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("needs 6"), std::string::npos);
  write_raw(d.file("model.safetensors"),
            with_header(R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,8]}})", 8));
  e = error_of([&] { TensorStore::open_dir(d.str()); });
  EXPECT_NE(e.find("unsupported tensor dtype 'Q4'"), std::string::npos) << e;
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  write_raw(d.file("model.safetensors"), with_header(R"({"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},)"
                                                     R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}})",
                                                     10));
  e = error_of([&] { TensorStore::open_dir(d.str()); });
  EXPECT_NE(e.find("tensors 'a' and 'b' overlap"), std::string::npos) << e;
  // A tensor inside a longer one, with an empty tensor between their starts.
  write_raw(d.file("model.safetensors"), with_header(R"({"a":{"dtype":"BF16","shape":[50],"data_offsets":[0,100]},)"
                                                     R"("e":{"dtype":"BF16","shape":[0],"data_offsets":[50,50]},)"
                                                     R"("b":{"dtype":"BF16","shape":[10],"data_offsets":[60,80]}})",
                                                     100));
  e = error_of([&] { TensorStore::open_dir(d.str()); });
  EXPECT_NE(e.find("tensors 'a' and 'b' overlap"), std::string::npos) << e;
}

TEST(Safetensors, ReadsShardsThroughTheIndexAndReportsBrokenIndexes) {
  TempDir d;
  write_safetensors(d.file("a.safetensors"), {{"x", OwnedTensor{DType::F32, {1}, std::vector<unsigned char>(4)}}});
  write_safetensors(d.file("b.safetensors"), {{"y", OwnedTensor{DType::F32, {2}, std::vector<unsigned char>(8)}}});
  write_raw(d.file("model.safetensors.index.json"),
            R"({"metadata":{},"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})");
  TensorStore s = TensorStore::open_dir(d.str());
  EXPECT_TRUE(s.has("x") && s.has("y"));
  EXPECT_NE(error_of([&] { s.get("z"); }).find("missing tensor 'z'"), std::string::npos);
  write_raw(d.file("model.safetensors.index.json"), R"({"weight_map":{"x":"missing.safetensors"}})");
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("missing checkpoint shard"), std::string::npos);
  write_raw(d.file("model.safetensors.index.json"), R"({"weight_map":{"y":"a.safetensors"}})");
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("does not hold it"), std::string::npos);
  write_raw(d.file("model.safetensors.index.json"), R"({"weight_map":{"x":"a.safetensors","y":""}})");
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("shard name '' of tensor 'y'"), std::string::npos);
  // A tensor the index places in one shard but another shard holds too: which copy is meant?
  write_safetensors(d.file("c.safetensors"), {{"x", OwnedTensor{DType::F32, {1}, std::vector<unsigned char>(4, 1)}},
                                              {"y", OwnedTensor{DType::F32, {2}, std::vector<unsigned char>(8)}}});
  write_raw(d.file("model.safetensors.index.json"), R"({"weight_map":{"x":"a.safetensors","y":"c.safetensors"}})");
  std::string e = error_of([&] { TensorStore::open_dir(d.str()); });
  EXPECT_NE(e.find("places tensor 'x' in shard 'a.safetensors' but shard 'c.safetensors' holds it too"),
            std::string::npos) << e;
  write_raw(d.file("model.safetensors.index.json"), R"([1,2)");
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("corrupt checkpoint index"), std::string::npos);
}

TEST(ModelDir, ReportsMissingDirectoriesAndFiles) {
  EXPECT_NE(error_of([] { ModelDir::open("/nonexistent/model"); }).find("does not exist"), std::string::npos);
  TempDir d;
  EXPECT_NE(error_of([&] { ModelDir::open(d.str()); }).find("config.json"), std::string::npos);
  write_raw(d.file("config.json"), "{}");
  EXPECT_NE(error_of([&] { TensorStore::open_dir(d.str()); }).find("no weights"), std::string::npos);
}
