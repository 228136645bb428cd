// WeightLoader's tensor-parallel parts: row slices, column copies, FP8 scale blocks and errors.
#include <gtest/gtest.h>

#include <cstring>

#include "../temp_path.h"
#include "core/error.h"
#include "io/safetensors_writer.h"
#include "model/weight_loader.h"

using namespace dsinfer;

namespace {

// A BF16 [rows, cols] tensor holding r * cols + c at (r, c).
OwnedTensor counting_bf16(int64_t rows, int64_t cols) {
  OwnedTensor t{DType::BF16, {rows, cols}, std::vector<unsigned char>(rows * cols * 2)};
  for (int64_t i = 0; i < rows * cols; ++i) {
    const uint16_t v = f32_to_bf16(static_cast<float>(i));
    std::memcpy(t.bytes.data() + 2 * i, &v, 2);
  }
  return t;
}

OwnedTensor floats(Shape shape, std::vector<float> v) {
  OwnedTensor t{DType::F32, std::move(shape), std::vector<unsigned char>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

float at_bf16(const Weight& w, int64_t r, int64_t c) { return bf16_to_f32(w.w.ptr<uint16_t>()[r * w.in_features() + c]); }

// A checkpoint written to disk and opened as the engine opens one (memory-mapped).
struct Fixture {
  std::map<std::string, OwnedTensor> tensors;
  dsinfer::testing::TempPath dir{"weight_parts"};
  std::unique_ptr<Backend> backend = make_cpu_backend();
  ModelConfig config;
  std::vector<Buffer> storage;
  size_t loaded = 0;
  std::unique_ptr<TensorStore> store;

  Fixture() {
    tensors["m.weight"] = counting_bf16(4, 6);
    // FP8 [256, 384]: 2 x 3 blocks of 128, block (i, j) scaled by 10 i + j.
    OwnedTensor q{DType::F8_E4M3, {256, 384}, std::vector<unsigned char>(256 * 384, 0x38)};  // 1.0
    tensors["q.weight"] = std::move(q);
    tensors["q.weight_scale_inv"] = floats({2, 3}, {0, 1, 2, 10, 11, 12});
    std::filesystem::create_directories(dir.path());
    write_safetensors((dir.path() / "model.safetensors").string(), tensors);
    store = std::make_unique<TensorStore>(TensorStore::open_dir(dir.path().string()));
  }
  WeightLoader loader() { return WeightLoader(*store, *backend, config, storage, loaded); }
};

}  // namespace

TEST(WeightParts, RowsAreAViewAndColumnsACopyOfTheRightValues) {
  Fixture f;
  WeightLoader w = f.loader();
  const Weight rows = w.get("m.weight", {4, 6}, Part{Part::Axis::Rows, 2, 2});
  ASSERT_EQ(rows.w.shape, (Shape{2, 6}));
  EXPECT_EQ(at_bf16(rows, 0, 0), 12.0f);
  EXPECT_EQ(at_bf16(rows, 1, 5), 23.0f);
  const Weight cols = w.get("m.weight", {4, 6}, Part{Part::Axis::Cols, 3, 3});
  ASSERT_EQ(cols.w.shape, (Shape{4, 3}));
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(at_bf16(cols, r, c), static_cast<float>(r * 6 + 3 + c));
  EXPECT_EQ(f.storage.size(), 1u);  // the CPU uses the copy in place, so the model keeps it
  EXPECT_EQ(f.loaded, 2u * 6 * 2 + 4u * 3 * 2);
  const Weight whole = w.get("m.weight", {4, 6});
  EXPECT_EQ(whole.w.shape, (Shape{4, 6}));
}

TEST(WeightParts, Fp8PartsCarryTheirScaleBlocks) {
  Fixture f;
  WeightLoader w = f.loader();
  const Weight rows = w.get("q.weight", {256, 384}, Part{Part::Axis::Rows, 128, 128});
  ASSERT_EQ(rows.scale.shape, (Shape{1, 3}));
  EXPECT_EQ(rows.scale.ptr<float>()[0], 10.0f);
  const Weight cols = w.get("q.weight", {256, 384}, Part{Part::Axis::Cols, 256, 128});
  ASSERT_EQ(cols.w.shape, (Shape{256, 128}));
  ASSERT_EQ(cols.scale.shape, (Shape{2, 1}));
  EXPECT_EQ(cols.scale.ptr<float>()[0], 2.0f);
  EXPECT_EQ(cols.scale.ptr<float>()[1], 12.0f);
  std::vector<float> row(128);
  weight_row_to_f32(cols, 200, row.data());
  EXPECT_EQ(row[5], 12.0f);  // 1.0 x the scale of block (1, 2)
}

TEST(WeightParts, PartsOutOfRangeOrAcrossScaleBlocksAreErrorsNamingTheTensor) {
  Fixture f;
  WeightLoader w = f.loader();
  auto message = [&](const std::string& name, const Shape& s, Part p) {
    try {
      w.get(name, s, p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("m.weight", {4, 6}, {Part::Axis::Rows, 3, 2}).find("'m.weight'"), std::string::npos);
  EXPECT_NE(message("m.weight", {4, 6}, {Part::Axis::Cols, 0, 7}).find("out of range"), std::string::npos);
  EXPECT_NE(message("q.weight", {256, 384}, {Part::Axis::Cols, 64, 128}).find("scale blocks"), std::string::npos);
  EXPECT_NE(message("q.weight", {256, 384}, {Part::Axis::Rows, 0, 100}).find("scale blocks"), std::string::npos);
}
