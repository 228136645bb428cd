#include "model/weight_loader.h"

#include <cstring>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/log.h"

namespace dsinfer {

namespace {

std::string scale_name_of(const std::string& name) {
  return name.substr(0, name.size() - std::strlen("weight")) + "weight_scale_inv";
}

// A tensor as [rows, cols] (a vector is one row) and a region of it: rows [r0, r1) x cols [c0, c1).
struct Region {
  int64_t r0, r1, c0, c1;
  Shape shape(size_t dims) const { return dims == 1 ? Shape{c1 - c0} : Shape{r1 - r0, c1 - c0}; }
};
int64_t rows_of(const Tensor& t) { return t.shape.size() == 1 ? 1 : t.dim(0); }

// The region's values into dst, row-major: copied from memory, or made by the entry's generator.
// Whole rows are one piece; a column part's rows are made in parallel (each row's piece is too
// short for the generator to spread over the cores itself).
void read_region(const TensorEntry& e, const Region& g, void* dst) {
  const size_t es = dtype_size(e.view.dtype);
  const int64_t cols = e.view.shape.back(), n = g.c1 - g.c0;
  auto piece = [&](int64_t first, int64_t count, char* out) {
    if (e.view.data)
      std::memcpy(out, e.view.ptr<char>() + first * es, count * es);
    else
      e.generate(first, count, out);
  };
  char* out = static_cast<char*>(dst);
  if (n == cols) return piece(g.r0 * cols, (g.r1 - g.r0) * cols, out);
#pragma omp parallel for if (!e.view.data && (g.r1 - g.r0) * n > (int64_t{1} << 16))
  for (int64_t r = g.r0; r < g.r1; ++r) piece(r * cols + g.c0, n, out + (r - g.r0) * n * es);
}

}  // namespace

Weight WeightLoader::host_weight(const std::string& name, const Shape& expected) const {
  const TensorEntry& e = store_.get(name);
  if (e.view.shape != expected)
    fail("tensor '", name, "' in '", e.file, "' has shape ", shape_str(e.view.shape), ", expected ",
         shape_str(expected));
  Weight w;
  w.w = e.view;
  if (e.view.dtype == DType::F8_E4M3) {
    const std::string scale_name = scale_name_of(name);
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

Weight WeightLoader::host_part(const std::string& name, const Shape& expected, const Part& part, Buffer& copy) {
  Weight w = stored_part(name, expected, part, copy);
  if (!quantize_ || w.w.dtype == DType::F8_E4M3 || !quantize_->contains(name)) return w;
  Buffer quantized;
  Weight q = quantize_weight_fp8(w, quantized);
  copy = std::move(quantized);  // the stored values' copy, if one was made, is done with
  return q;
}

Weight WeightLoader::stored_part(const std::string& name, const Shape& expected, const Part& part, Buffer& copy) {
  Weight w = host_weight(name, expected);
  // FP8 by dtype: a generated tensor's views hold no data, so they read as empty.
  const bool scaled = w.w.dtype == DType::F8_E4M3;
  const bool whole = part.count < 0, rows = part.axis == Part::Axis::Rows;
  Region values{0, rows_of(w.w), 0, expected.back()};
  Region scales = !scaled ? Region{} : Region{0, w.scale.dim(0), 0, w.scale.dim(1)};
  if (!whole) {
    const size_t axis = rows ? 0 : 1;
    const int64_t end = part.begin + part.count;
    if (axis >= expected.size() || part.begin < 0 || part.count < 1 || end > expected[axis])
      fail("tensor '", name, "' of shape ", shape_str(expected), ": ", rows ? "rows" : "columns", " [", part.begin,
           ", ", end, ") are out of range");
    int64_t block = 1;  // scale blocks along the axis (FP8); a part must be whole blocks
    if (scaled) {
      block = rows ? w.block_rows : w.block_cols;
      if (part.begin % block || (part.count % block && end != expected[axis]))
        fail("FP8 tensor '", name, "': ", rows ? "rows" : "columns", " [", part.begin, ", ", end, ") are not whole ",
             w.block_rows, "x", w.block_cols, " scale blocks");
    }
    const int64_t s_begin = part.begin / block, s_end = (end + block - 1) / block;
    if (rows && expected.size() == 2) {
      values.r0 = part.begin, values.r1 = end;
      scales.r0 = s_begin, scales.r1 = s_end;
    } else {  // columns, or a vector's elements
      values.c0 = part.begin, values.c1 = end;
      scales.c0 = s_begin, scales.c1 = s_end;
    }
  }
  const TensorEntry& stored = store_.get(name);
  if (stored.view.data && (whole || (rows && expected.size() == 2))) {  // in memory, whole rows: a view
    if (whole) return w;
    w.w = w.w.slice_rows(values.r0, values.r1);
    if (scaled) w.scale = w.scale.slice_rows(scales.r0, scales.r1);
    return w;
  }
  // A copy: columns, a vector's elements, or generated values. The scales follow the values,
  // 64-byte aligned (FP8 values may end anywhere).
  const size_t w_bytes = (shape_numel(values.shape(expected.size())) * dtype_size(w.w.dtype) + 63) / 64 * 64;
  const size_t s_bytes = !scaled ? 0 : shape_numel(scales.shape(2)) * sizeof(float);
  copy = host_alloc(w_bytes + s_bytes);
  read_region(stored, values, copy.data());
  Weight out = w;
  out.w = Tensor{w.w.dtype, values.shape(expected.size()), copy.data(), Device{}};
  if (scaled) {
    out.scale = Tensor{DType::F32, scales.shape(2), static_cast<char*>(copy.data()) + w_bytes, Device{}};
    read_region(store_.get(scale_name_of(name)), scales, out.scale.data);
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

void log_unused_layers(const TensorStore& store, const ModelConfig& config, bool mtp_loaded) {
  static const std::regex layer_re(R"(^model\.layers\.(\d+)\.)");
  const int mtp_end = config.num_layers + config.num_nextn_predict_layers;
  std::set<int> mtp, extra;
  size_t mtp_count = 0, extra_count = 0;
  for (const std::string& name : store.names()) {
    std::smatch m;
    if (!std::regex_search(name, m, layer_re)) continue;
    const int layer = std::stoi(m[1]);
    if (layer < config.num_layers) continue;
    (layer < mtp_end ? mtp : extra).insert(layer);
    ++(layer < mtp_end ? mtp_count : extra_count);
  }
  if (mtp_count && !mtp_loaded)
    log_info("skipping ", mtp_count, " tensors of multi-token-prediction layer(s) ", *mtp.begin(), "..", *mtp.rbegin(),
             " (not used for generation)");
  if (extra_count)
    log_warn("the checkpoint holds ", extra_count, " tensors of layer(s) ", *extra.begin(), "..", *extra.rbegin(),
             ", past config.json's ", config.num_layers, " layers", config.num_nextn_predict_layers ? " and its multi-token-prediction layers" : "",
             ": they are not used (do config.json and the weights belong together?)");
}

}  // namespace dsinfer
