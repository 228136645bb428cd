// dsinfer bench-gemm: DeepSeek's block-scaled FP8 GEMM (activation quantization included)
// against cuBLASLt's per-tensor FP8 (the card's FP8 ceiling) and bf16 products of the same
// shapes, and the grouped FP8 MoE GEMM at DeepSeek-V3's MoE shape, on one GPU, as markdown tables.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#ifdef DSINFER_WITH_CUDA
#include "backend/cuda/gemm_bench.h"
#endif

namespace dsinfer {
namespace {

struct BenchGemmOptions {
  std::string m = "128,4096";
  // DeepSeek-V3 projections: q_b, expert down, dense gate/up, dense down, o_proj, expert gate+up.
  std::string nk = "24576x1536,7168x2048,18432x7168,7168x18432,7168x16384,4096x7168";
  int repeats = 10, inner = 10, device = 0;
  int moe_tokens = 4096;  // 0: no MoE rows
};

int64_t parse_dim(const std::string& item, const std::string& list) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(item, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != item.size() || v <= 0) fail("bad dimension '", item, "' in '", list, "'");
  return v;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t at = text.find(sep, pos);
    out.push_back(text.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
    if (at == std::string::npos) return out;
    pos = at + 1;
  }
}

#ifdef DSINFER_WITH_CUDA
std::string cell(double tflops) {
  if (std::isnan(tflops)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", tflops);
  return b;
}

std::string ratio(double a, double b) {
  if (std::isnan(a) || std::isnan(b) || b <= 0) return "n/a";
  char s[32];
  std::snprintf(s, sizeof s, "%.0f %%", 100.0 * a / b);
  return s;
}

void print_table(const cuda::GemmBenchResult& r) {
  std::printf("device: %s\n", r.device.c_str());
  std::printf("FP8 dense peak (cuBLASLt per-tensor FP8, fast accumulation, M=N=K=8192): %.0f TFLOP/s\n\n", r.peak.tensor);
  std::printf("| M | N | K | block FP8 incl. quant | block FP8 GEMM only | per-tensor FP8 | bf16 | block / per-tensor | block / peak |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const auto& w : r.rows)
    std::printf("| %lld | %lld | %lld | %s | %s | %s | %s | %s | %s |\n", static_cast<long long>(w.shape.m),
                static_cast<long long>(w.shape.n), static_cast<long long>(w.shape.k), cell(w.block).c_str(),
                cell(w.block_gemm).c_str(), cell(w.tensor).c_str(), cell(w.bf16).c_str(), ratio(w.block, w.tensor).c_str(),
                ratio(w.block, r.peak.tensor).c_str());
  std::printf("\nTFLOP/s = 2 M N K / median time of %s; n/a: the GPU or shape has no block-scaled FP8 path.\n",
              "a repeat (each repeat times several products on rotating operands, so none reads its inputs from L2); "
              "at 1-4 tokens the per-tensor ceiling is skipped and the skinny kernel's bytes are timed below");
}

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// Products of 1-4 tokens: what linear runs at decode, bytes over time against the copy rate.
void print_skinny(const cuda::GemmBenchResult& r) {
  if (r.skinny.empty()) return;
  std::printf("\nSkinny FP8 products (1-%lld tokens, through the backend's linear: what a decode step runs; copy "
              "bandwidth %.0f GB/s in this process)\n\n",
              static_cast<long long>(cuda::kSkinnyMaxRows), r.copy_bandwidth / 1e9);
  std::printf("| M | N | K | MB moved | us | GB/s | of copy | kernel |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const auto& w : r.skinny) {
    const double rate = w.bytes / (w.us * 1e-6);
    std::printf("| %lld | %lld | %lld | %.1f | %s | %s | %s | %s |\n", static_cast<long long>(w.shape.m),
                static_cast<long long>(w.shape.n), static_cast<long long>(w.shape.k), w.bytes / 1e6,
                fixed(w.us, 1).c_str(), cell(rate / 1e9).c_str(), ratio(rate, r.copy_bandwidth).c_str(),
                w.kernel.empty() ? "n/a" : w.kernel.c_str());
  }
  std::printf("\nMB moved: the e4m3 weights and their 128 x 128 block scales, x and out in bf16; n/a: linear takes "
              "no skinny kernel there. kernel: the tensor-core kernel's form (deep: two blocks an SM, at 1-2 tokens "
              "each warp's next step in flight; wide: three) and its splits of K, or the CUDA-core kernel.\n");
}

std::string ms_cell(double ms) { return fixed(ms, 3); }

void print_moe(const cuda::MoeBenchRow& m, double peak) {
  const cuda::MoeBenchShape& s = m.shape;
  const long long pairs = static_cast<long long>(s.tokens) * s.top_k;
  std::printf("\nGrouped FP8 MoE GEMM: %d tokens x top-%d of %d experts (%lld rows), hidden %lld, inter %lld, "
              "random routing, distinct e4m3 weights per expert (128x128 block scales)\n\n",
              s.tokens, s.top_k, s.experts, pairs, static_cast<long long>(s.hidden), static_cast<long long>(s.inter));
  std::printf("| launch | N | K | ms | TFLOP/s | / FP8 peak | GB moved | memory floor ms | floor / ms |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  auto line = [&](const char* name, const std::string& n, const std::string& k, double ms, double tf, double bytes) {
    const double floor = m.floor_ms(bytes);
    std::printf("| %s | %s | %s | %s | %s | %s | %.2f | %s | %s |\n", name, n.c_str(), k.c_str(), ms_cell(ms).c_str(),
                cell(tf).c_str(), ratio(tf, peak).c_str(), bytes / 1e9, ms_cell(floor).c_str(), ratio(floor, ms).c_str());
  };
  line("gate+up, SiLU epilogue", std::to_string(2 * s.inter), std::to_string(s.hidden), m.gate_up_ms, m.gate_up_tflops(),
       m.gate_up_bytes());
  line("down", std::to_string(s.hidden), std::to_string(s.inter), m.down_ms, m.down_tflops(), m.down_bytes());
  line("both", "", "", m.gate_up_ms + m.down_ms, m.gemm_tflops(), m.gate_up_bytes() + m.down_bytes());
  std::printf("\nmoe_experts, whole call (permutation, gather, products, combine): %s ms, path: %s\n",
              ms_cell(m.experts_ms).c_str(), m.experts_path.c_str());
  std::printf("TFLOP/s = 2 x rows x N x K (useful products only) / median time; DSINFER_FP8_GEMM=dequant times the "
              "old per-expert path of moe_experts.\n");
  std::printf("GB moved: the %d active experts' e4m3 weights and block scales, the quantized rows and their scales, "
              "the output (act and y in bf16); memory floor = GB / the copy bandwidth measured in this process, "
              "%.0f GB/s.\n",
              m.active_experts, m.copy_bandwidth / 1e9);
}
#endif

void run_bench_gemm(const BenchGemmOptions& o) {
  std::vector<int64_t> ms;
  for (const std::string& item : split(o.m, ',')) ms.push_back(parse_dim(item, o.m));
  std::vector<std::pair<int64_t, int64_t>> nks;
  for (const std::string& item : split(o.nk, ',')) {
    const std::vector<std::string> parts = split(item, 'x');
    if (parts.size() != 2) fail("bad N x K '", item, "' in '", o.nk, "' (expected e.g. 7168x2048)");
    nks.emplace_back(parse_dim(parts[0], o.nk), parse_dim(parts[1], o.nk));
  }
#ifdef DSINFER_WITH_CUDA
  cuda::GemmBenchOptions b;
  b.repeats = o.repeats;
  b.inner = o.inner;
  b.device = o.device;
  for (int64_t m : ms)
    for (const auto& [n, k] : nks) b.shapes.push_back({m, n, k});
  b.moe = o.moe_tokens > 0;
  b.moe_shape.tokens = o.moe_tokens;
  const cuda::GemmBenchResult r = cuda::bench_fp8_gemm(b);
  print_table(r);
  print_skinny(r);
  if (b.moe) print_moe(r.moe, r.peak.tensor);
#else
  fail("bench-gemm needs the CUDA backend, and this dsinfer was built without it");
#endif
}

CommandRegistration reg({"bench-gemm",
                         "Time the block-scaled FP8 GEMM against cuBLASLt per-tensor FP8 and bf16 on a GPU",
                         [](CLI::App& app) {
                           auto o = std::make_shared<BenchGemmOptions>();
                           app.add_option("--m", o->m,
                                          "Comma-separated token counts M (1-4: also the skinny kernels decode runs, "
                                          "against the copy bandwidth)")->capture_default_str();
                           app.add_option("--nk", o->nk, "Comma-separated weight shapes NxK")->capture_default_str();
                           app.add_option("--repeats", o->repeats, "Timed samples per variant")->capture_default_str();
                           app.add_option("--inner", o->inner, "Products per sample")->capture_default_str();
                           app.add_option("--gpu", o->device, "CUDA device index")->capture_default_str();
                           app.add_option("--moe-tokens", o->moe_tokens,
                                          "Tokens of the DeepSeek-V3 MoE rows (top-8 of 256 experts; 0: none)")
                               ->capture_default_str();
                           app.callback([o] { run_bench_gemm(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
