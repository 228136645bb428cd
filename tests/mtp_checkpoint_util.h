// DeepSeek-V3 checkpoints with a multi-token-prediction layer, made from a fixture (the fixtures
// ship none), in V3's layout: the layer after the main ones holds enorm, hnorm, eh_proj, a decoder
// layer's tensors, shared_head.norm and copies of the embedding and head (shared_head.head), which
// the engine does not load. Its decoder layer is a copy of the last main layer's; the rest is drawn
// at random, or set so that a test can compute the layer's output by hand.
#pragma once
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "fixture_util.h"
#include "fp8_checkpoint_util.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace dsinfer::testing {

enum class MtpWeights {
  Random,              // eh_proj and the three norms random
  RandomProjection,    // as Random, but the main model's matrices / 16 (see RandomSoft) and the MTP decoder
                       // layer adds nothing (o_proj and every down_proj zero)
  RandomSoft,          // as Random, but the MTP decoder layer's matrices / 4 and the main model's / 16 (its
                       // hidden states are the layer's input): soft attention and routing, where the
                       // fixtures' rms-0.7 weights make both nearly argmax, so that bf16 flips them
  EmbeddingOnly,       // eh_proj = [I 0]; the decoder layer adds nothing (o_proj and every down_proj zero)
  HiddenOnly,          // eh_proj = [0 I], hnorm and shared_head.norm ones; the layer adds nothing
  HiddenOnlyHeadNorm,  // as HiddenOnly, but shared_head.norm random
};

// The norms a test needs to compute an EmbeddingOnly layer's output.
struct MtpNorms {
  std::vector<float> enorm, head_norm;
};

inline OwnedTensor f32_tensor(const Shape& shape, const std::vector<float>& v) {
  return owned_tensor(DType::F32, shape, v.data(), v.size() * sizeof(float));
}

inline MtpNorms make_mtp_checkpoint(const std::string& fixture, MtpWeights kind, const std::filesystem::path& dir) {
  TensorStore store = TensorStore::open_dir(fixture_dir(fixture));
  nlohmann::json config = read_json_file(fixture_dir(fixture) + "/config.json");
  const int layers = config["num_hidden_layers"].get<int>(), h = config["hidden_size"].get<int>();
  const std::string last = "model.layers." + std::to_string(layers - 1) + ".";
  const std::string mtp = "model.layers." + std::to_string(layers) + ".";
  std::map<std::string, OwnedTensor> out;
  const bool soft_main = kind == MtpWeights::RandomSoft || kind == MtpWeights::RandomProjection;
  const auto scaled = [](const Tensor& t, float by) {  // exact: powers of two
    std::vector<float> w = matrix_f32(t);
    for (float& x : w) x *= by;
    return f32_tensor(t.shape, w);
  };
  for (const std::string& name : store.names()) {
    const Tensor& t = store.get(name).view;
    const bool matrix = name.rfind("model.layers.", 0) == 0 && t.shape.size() == 2 &&
                        (name.find("_proj.weight") != std::string::npos || name.ends_with("mlp.gate.weight"));
    out[name] = soft_main && matrix ? scaled(t, 1.0f / 16) : owned_tensor(t.dtype, t.shape, t.data, t.nbytes());
    if (name.rfind(last, 0) != 0) continue;
    const std::string copy = mtp + name.substr(last.size());
    const bool silenced =
        (kind != MtpWeights::Random && kind != MtpWeights::RandomSoft) &&
        (name.find("o_proj.weight") != std::string::npos || name.find("down_proj.weight") != std::string::npos);
    if (silenced)
      out[copy] = f32_tensor(t.shape, std::vector<float>(static_cast<size_t>(t.numel()), 0.0f));
    else if (kind == MtpWeights::RandomSoft && matrix)
      out[copy] = scaled(t, 0.25f);
    else
      out[copy] = owned_tensor(t.dtype, t.shape, t.data, t.nbytes());
  }
  out[mtp + "embed_tokens.weight"] = out["model.embed_tokens.weight"];
  out[mtp + "shared_head.head.weight"] = out["lm_head.weight"];
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> around_one(0.5f, 1.5f);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(2.0f * h));
  auto vec = [&](size_t n, auto&& draw) {
    std::vector<float> v(n);
    for (float& x : v) x = draw();
    return v;
  };
  MtpNorms norms{vec(h, [&] { return around_one(rng); }), vec(h, [&] { return around_one(rng); })};
  std::vector<float> hnorm = vec(h, [&] { return around_one(rng); });
  std::vector<float> eh(static_cast<size_t>(h) * 2 * h, 0.0f);
  const bool random_eh =
      kind == MtpWeights::Random || kind == MtpWeights::RandomProjection || kind == MtpWeights::RandomSoft;
  if (random_eh) eh = vec(eh.size(), [&] { return normal(rng); });
  const bool hidden_half = kind == MtpWeights::HiddenOnly || kind == MtpWeights::HiddenOnlyHeadNorm;
  for (int i = 0; i < h && !random_eh; ++i) eh[static_cast<size_t>(i) * 2 * h + i + (hidden_half ? h : 0)] = 1.0f;
  if (hidden_half) hnorm.assign(h, 1.0f);
  if (kind == MtpWeights::HiddenOnly) norms.head_norm.assign(h, 1.0f);
  out[mtp + "enorm.weight"] = f32_tensor({h}, norms.enorm);
  out[mtp + "hnorm.weight"] = f32_tensor({h}, hnorm);
  out[mtp + "shared_head.norm.weight"] = f32_tensor({h}, norms.head_norm);
  out[mtp + "eh_proj.weight"] = f32_tensor({h, 2 * h}, eh);
  std::filesystem::create_directories(dir);
  write_safetensors((dir / "model.safetensors").string(), out);
  config["num_nextn_predict_layers"] = 1;
  std::ofstream(dir / "config.json") << config.dump();
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    if (std::filesystem::exists(fixture_dir(fixture) + "/" + f))
      std::filesystem::copy_file(fixture_dir(fixture) + "/" + f, dir / f);
  return norms;
}

}  // namespace dsinfer::testing
