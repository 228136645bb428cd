#include "model/weight_loader.h"

#include <cstring>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/log.h"

namespace dsinfer {

Weight WeightLoader::host_weight(const std::string& name, const Shape& expected) const {
  const TensorEntry& e = store_.get(name);
  if (e.view.shape != expected)
    fail("tensor '", name, "' in '", e.file, "' has shape ", shape_str(e.view.shape), ", expected ",
         shape_str(expected));
  Weight w;
  w.w = e.view;
  if (e.view.dtype == DType::F8_E4M3) {
    std::string scale_name = name.substr(0, name.size() - std::strlen("weight")) + "weight_scale_inv";
    if (expected.size() != 2) fail("FP8 tensor '", name, "' is not a matrix");
    const TensorEntry& s = store_.get(scale_name);
    w.block_rows = config_.fp8_block_rows;
    w.block_cols = config_.fp8_block_cols;
    Shape scale_shape = {(expected[0] + w.block_rows - 1) / w.block_rows, (expected[1] + w.block_cols - 1) / w.block_cols};
    if (s.view.shape != scale_shape || s.view.dtype != DType::F32)
      fail("scale tensor '", scale_name, "' has shape ", shape_str(s.view.shape), " ", dtype_name(s.view.dtype),
           ", expected ", shape_str(scale_shape), " F32 (", w.block_rows, "x", w.block_cols, " blocks)");
    w.scale = s.view;
  } else if (e.view.dtype != DType::F32 && e.view.dtype != DType::BF16 && e.view.dtype != DType::F16) {
    fail("tensor '", name, "' has dtype ", dtype_name(e.view.dtype), " (supported: F32, BF16, F16, F8_E4M3)");
  }
  return w;
}

namespace {

// Columns [begin, begin + count) of every row of a row-major [rows, cols] tensor into `dst`.
void copy_columns(const Tensor& src, int64_t begin, int64_t count, void* dst) {
  const size_t es = dtype_size(src.dtype);
  const int64_t cols = src.dim(1);
  for (int64_t r = 0; r < src.dim(0); ++r)
    std::memcpy(static_cast<char*>(dst) + r * count * es, src.ptr<char>() + (r * cols + begin) * es, count * es);
}

}  // namespace

Weight WeightLoader::host_part(const std::string& name, const Shape& expected, const Part& part, Buffer& copy) {
  Weight w = host_weight(name, expected);
  if (part.count < 0) return w;
  const bool rows = part.axis == Part::Axis::Rows;
  const size_t axis = rows ? 0 : 1;
  if (axis >= expected.size() || part.begin < 0 || part.count < 1 || part.begin + part.count > expected[axis])
    fail("tensor '", name, "' of shape ", shape_str(expected), ": ", rows ? "rows" : "columns", " [", part.begin, ", ",
         part.begin + part.count, ") are out of range");
  const int64_t end = part.begin + part.count;
  int64_t block = 1;  // scale blocks along the axis (FP8); a part must be whole blocks
  if (!w.scale.empty()) {
    block = rows ? w.block_rows : w.block_cols;
    if (part.begin % block || (part.count % block && end != expected[axis]))
      fail("FP8 tensor '", name, "': ", rows ? "rows" : "columns", " [", part.begin, ", ", end,
           ") are not whole ", w.block_rows, "x", w.block_cols, " scale blocks");
  }
  const int64_t s_begin = part.begin / block, s_end = (end + block - 1) / block;
  if (rows) {
    w.w = w.w.slice_rows(part.begin, end);
    if (!w.scale.empty()) w.scale = w.scale.slice_rows(s_begin, s_end);
    return w;
  }
  // The scales follow the values, 64-byte aligned (FP8 values may end anywhere).
  const size_t w_bytes = (static_cast<size_t>(expected[0]) * part.count * dtype_size(w.w.dtype) + 63) / 64 * 64;
  const size_t s_bytes = w.scale.empty() ? 0 : static_cast<size_t>(w.scale.dim(0)) * (s_end - s_begin) * sizeof(float);
  copy = host_alloc(w_bytes + s_bytes);
  copy_columns(w.w, part.begin, part.count, copy.data());
  Weight out = w;
  out.w = Tensor{w.w.dtype, {expected[0], part.count}, copy.data(), Device{}};
  if (!w.scale.empty()) {
    out.scale = Tensor{DType::F32, {w.scale.dim(0), s_end - s_begin}, static_cast<char*>(copy.data()) + w_bytes, Device{}};
    copy_columns(w.scale, s_begin, s_end - s_begin, out.scale.data);
  }
  return out;
}

void WeightLoader::keep_used(const std::vector<Weight>& uploaded, std::vector<Buffer>& copies) {
  for (Buffer& b : copies) {
    if (!b.data()) continue;
    const char* begin = static_cast<const char*>(b.data());
    for (const Weight& w : uploaded)
      if (w.w.data >= begin && w.w.data < begin + b.bytes()) {
        storage_.push_back(std::move(b));
        break;
      }
  }
}

Weight WeightLoader::get(const std::string& name, const Shape& expected, const Part& part) {
  return get_adjacent({{name, expected, part}}).front();
}

std::vector<Weight> WeightLoader::get_adjacent(const std::vector<Named>& named) {
  std::vector<Weight> host;
  std::vector<Buffer> copies(named.size());
  for (size_t i = 0; i < named.size(); ++i) {
    host.push_back(host_part(named[i].name, named[i].shape, named[i].part, copies[i]));
    loaded_bytes_ += host.back().nbytes();
  }
  std::vector<Weight> uploaded =
      host.size() == 1 ? std::vector<Weight>{backend_.upload_weight(host[0], storage_)} : backend_.upload_weights(host, storage_);
  keep_used(uploaded, copies);
  return uploaded;
}

std::vector<float> WeightLoader::get_f32(const std::string& name, const Shape& expected, const Part& part) {
  Buffer copy;
  Weight w = host_part(name, expected, part, copy);
  const int64_t rows = w.w.shape.size() == 1 ? 1 : w.w.dim(0);
  const int64_t cols = w.w.shape.back();
  std::vector<float> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r) weight_row_to_f32(w, r, out.data() + r * cols);
  return out;
}

Tensor WeightLoader::upload_f32(const std::vector<float>& data, Shape shape) {
  storage_.push_back(backend_.alloc(data.size() * sizeof(float)));
  loaded_bytes_ += data.size() * sizeof(float);
  Tensor t{DType::F32, std::move(shape), storage_.back().data(), backend_.device()};
  backend_.copy_to_device(data.data(), t);
  return t;
}

Tensor WeightLoader::upload_act(const std::vector<float>& data, Shape shape) {
  const DType dtype = backend_.act_dtype();
  if (dtype == DType::F32) return upload_f32(data, std::move(shape));
  if (dtype != DType::BF16 && dtype != DType::F16)
    fail("upload_act: activation dtype ", dtype_name(dtype), " of backend ", backend_.name(), " is not F32, BF16 or F16");
  std::vector<uint16_t> half(data.size());
  for (size_t i = 0; i < data.size(); ++i) half[i] = dtype == DType::BF16 ? f32_to_bf16(data[i]) : f32_to_f16(data[i]);
  storage_.push_back(backend_.alloc(half.size() * sizeof(uint16_t)));
  loaded_bytes_ += half.size() * sizeof(uint16_t);
  Tensor t{dtype, std::move(shape), storage_.back().data(), backend_.device()};
  backend_.copy_to_device(half.data(), t);
  return t;
}

void log_skipped_mtp_tensors(const TensorStore& store, int num_layers) {
  static const std::regex layer_re(R"(^model\.layers\.(\d+)\.)");
  std::set<int> layers;
  size_t count = 0;
  for (const std::string& name : store.names()) {
    std::smatch m;
    if (std::regex_search(name, m, layer_re) && std::stoi(m[1]) >= num_layers) {
      layers.insert(std::stoi(m[1]));
      ++count;
    }
  }
  if (count)
    log_info("skipping ", count, " tensors of multi-token-prediction layer(s) ", *layers.begin(), "..", *layers.rbegin(),
             " (not used for generation)");
}

}  // namespace dsinfer
