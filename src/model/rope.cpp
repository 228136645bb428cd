#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace dsinfer {
namespace {

double yarn_get_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// base^(2i/dim) evaluated in float32 like torch's `base ** (arange(0, dim, 2).float() / dim)`.
std::vector<float> base_inv_freq(double base, int dim) {
  std::vector<float> f(dim / 2);
  for (int i = 0; i < dim / 2; ++i) {
    float e = static_cast<float>(2 * i) / static_cast<float>(dim);
    f[i] = 1.0f / std::pow(static_cast<float>(base), e);
  }
  return f;
}

void apply_llama3(std::vector<float>& inv_freq, const RopeScaling& r) {
  const double old_ctx = r.original_max_position_embeddings;
  const double low_wavelen = old_ctx / r.low_freq_factor, high_wavelen = old_ctx / r.high_freq_factor;
  for (float& f : inv_freq) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen > low_wavelen) {
      f = static_cast<float>(f / r.factor);
    } else if (wavelen >= high_wavelen) {  // medium frequencies: interpolate smoothly
      const double smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      f = static_cast<float>((1 - smooth) * f / r.factor + smooth * f);
    }
  }
}

// YaRN (as transformers' _compute_yarn_parameters): blend interpolated and extrapolated
// frequencies with a linear ramp between the correction dims of beta_fast and beta_slow.
float apply_yarn(std::vector<float>& inv_freq, const ModelConfig& c, int dim) {
  const RopeScaling& r = c.rope;
  const double base = c.rope_theta;
  double factor = r.factor;
  const double orig = r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings
                                                              : c.max_position_embeddings;
  double attention = r.attention_factor;
  if (attention == 0.0) {
    attention = (r.mscale != 0.0 && r.mscale_all_dim != 0.0)
                    ? yarn_get_mscale(factor, r.mscale) / yarn_get_mscale(factor, r.mscale_all_dim)
                    : yarn_get_mscale(factor, 1.0);
  }
  auto correction_dim = [&](double rotations) {
    return dim * std::log(orig / (rotations * 2 * M_PI)) / (2 * std::log(base));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  for (int i = 0; i < dim / 2; ++i) {
    float ramp = std::clamp(static_cast<float>((i - low) / (high - low)), 0.0f, 1.0f);
    float extrapolation = 1.0f - ramp;
    float interp = inv_freq[i] / static_cast<float>(factor);
    inv_freq[i] = interp * (1.0f - extrapolation) + inv_freq[i] * extrapolation;
  }
  return static_cast<float>(attention);
}

}  // namespace

RopeSpec compute_rope(const ModelConfig& c) {
  RopeSpec s;
  s.rot_dim = c.is_deepseek() ? c.qk_rope_head_dim : c.head_dim;
  s.style = c.is_deepseek() ? RopeStyle::Interleaved : RopeStyle::Neox;
  s.inv_freq = base_inv_freq(c.rope_theta, s.rot_dim);
  switch (c.rope.type) {
    case RopeType::Default: break;
    case RopeType::Linear:
      for (float& f : s.inv_freq) f = static_cast<float>(f / c.rope.factor);
      break;
    case RopeType::Llama3: apply_llama3(s.inv_freq, c.rope); break;
    case RopeType::Yarn: s.attention_factor = apply_yarn(s.inv_freq, c, s.rot_dim); break;
  }
  return s;
}

float deepseek_softmax_scale(const ModelConfig& c) {
  double scale = 1.0 / std::sqrt(static_cast<double>(c.qk_head_dim()));
  if (c.rope.type == RopeType::Yarn && c.rope.mscale_all_dim != 0.0) {
    double m = yarn_get_mscale(c.rope.factor, c.rope.mscale_all_dim);
    scale *= m * m;
  }
  return static_cast<float>(scale);
}

}  // namespace dsinfer
