#include "plan/plot_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "plan/units.h"

namespace dsinfer::plan {

namespace {

constexpr double kWidth = 880, kHeight = 520;
constexpr double kLeft = 80, kRight = 250, kTop = 50, kBottom = 60;  // margins; the legend sits right

struct Line {
  std::string label, color;
  double fixed_gib = 0;      // weights + workspace
  double gib_per_token = 0;  // KV cache growth per token of context, all sequences of a replica
};

struct Axes {
  double x_max, y_max;
  double x(double v) const { return kLeft + v / x_max * (kWidth - kLeft - kRight); }
  double y(double v) const { return kHeight - kBottom - v / y_max * (kHeight - kTop - kBottom); }
};

std::string escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '&') out += "&amp;";
    else if (ch == '<') out += "&lt;";
    else if (ch == '>') out += "&gt;";
    else if (ch == '"') out += "&quot;";
    else out += ch;
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// A 1-2-5 step giving about `count` ticks over [0, max].
double tick_step(double max, int count) {
  const double raw = max / count, mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

std::string token_label(double v) {
  if (v >= 1e6) return cat(v / 1e6, "M");
  if (v >= 1e3) return cat(v / 1e3, "k");
  return cat(v);
}

std::string text(double x, double y, const std::string& s, const std::string& extra = "") {
  return cat("<text x=\"", num(x), "\" y=\"", num(y), "\"", extra, ">", escape(s), "</text>\n");
}

std::string line(double x1, double y1, double x2, double y2, const std::string& style) {
  return cat("<line x1=\"", num(x1), "\" y1=\"", num(y1), "\" x2=\"", num(x2), "\" y2=\"", num(y2), "\" ", style, "/>\n");
}

std::vector<Line> precision_lines(const PlanModel& m, const PlanOptions& o, const PlanResult& r) {
  struct Pair { WeightDtype w; KvDtype kv; const char* color; };
  const Pair pairs[] = {{WeightDtype::BF16, KvDtype::BF16, "#1f77b4"},
                        {WeightDtype::FP8Block, KvDtype::FP8, "#ff7f0e"},
                        {WeightDtype::Int8Channel, KvDtype::Int8, "#2ca02c"},
                        {WeightDtype::Int4Group, KvDtype::Int4, "#9467bd"}};
  const int64_t per_replica = (o.batch + r.layout.dp - 1) / r.layout.dp;
  std::vector<Line> lines;
  for (const Pair& p : pairs) {
    PlanOptions v = o;
    v.weights = p.w;
    v.kv = p.kv;
    const PlanResult q = plan_for_layout(m, v, r.layout);
    lines.push_back(Line{cat("weights ", to_string(p.w), ", KV ", to_string(p.kv)), p.color,
                         double(q.memory.weight_bytes + q.memory.activations.total()) / kGiB,
                         double(per_replica) * q.memory.kv_bytes_per_token / kGiB});
  }
  return lines;
}

std::string axes_svg(const Axes& a) {
  std::string s;
  const double x0 = a.x(0), y0 = a.y(0), x1 = a.x(a.x_max), y1 = a.y(a.y_max);
  const double xs = tick_step(a.x_max, 6), ys = tick_step(a.y_max, 6);
  for (double v = 0; v <= a.x_max * 1.0001; v += xs) {
    s += line(a.x(v), y0, a.x(v), y1, "stroke=\"#e5e5e5\"");
    s += text(a.x(v), y0 + 18, token_label(v), " text-anchor=\"middle\"");
  }
  for (double v = 0; v <= a.y_max * 1.0001; v += ys) {
    s += line(x0, a.y(v), x1, a.y(v), "stroke=\"#e5e5e5\"");
    s += text(x0 - 8, a.y(v) + 4, cat(v), " text-anchor=\"end\"");
  }
  s += line(x0, y0, x1, y0, "stroke=\"#333\"") + line(x0, y0, x0, y1, "stroke=\"#333\"");
  s += text((x0 + x1) / 2, kHeight - 15, "context length (tokens per sequence)", " text-anchor=\"middle\"");
  s += text(20, (y0 + y1) / 2, "memory per GPU (GiB)",
            cat(" text-anchor=\"middle\" transform=\"rotate(-90 20 ", num((y0 + y1) / 2), ")\""));
  return s;
}

// A straight line from context 0, cut where it leaves the top of the plot.
std::string memory_line_svg(const Axes& a, const Line& l) {
  double x_end = a.x_max, y_end = l.fixed_gib + l.gib_per_token * a.x_max;
  if (y_end > a.y_max && l.gib_per_token > 0) {
    x_end = std::max(0.0, (a.y_max - l.fixed_gib) / l.gib_per_token);
    y_end = a.y_max;
  }
  if (l.fixed_gib > a.y_max) return "";  // the weights alone are off the chart
  return line(a.x(0), a.y(l.fixed_gib), a.x(x_end), a.y(y_end), cat("stroke=\"", l.color, "\" stroke-width=\"2.5\""));
}

std::string legend_svg(const std::vector<Line>& lines, const std::string& capacity, const std::string& usable) {
  const double x = kWidth - kRight + 20;
  double y = kTop + 10;
  std::string s;
  auto entry = [&](const std::string& label, const std::string& style) {
    s += line(x, y, x + 28, y, style);
    s += text(x + 36, y + 4, label);
    y += 22;
  };
  for (const Line& l : lines) entry(l.label, cat("stroke=\"", l.color, "\" stroke-width=\"2.5\""));
  entry(capacity, "stroke=\"#d62728\" stroke-width=\"2\"");
  entry(usable, "stroke=\"#d62728\" stroke-dasharray=\"6 4\"");
  entry("--context", "stroke=\"#555\" stroke-dasharray=\"2 3\"");
  return s;
}

}  // namespace

std::string memory_plot_svg(const PlanModel& m, const PlanOptions& o, const PlanResult& r) {
  const std::vector<Line> lines = precision_lines(m, o, r);
  const double capacity = o.gpu.memory_bytes() / kGiB, usable = capacity * o.mem_util;
  const double x_max = double(std::max<int64_t>(r.options.context, r.config.max_position_embeddings));
  double top = capacity;
  for (const Line& l : lines) top = std::max(top, l.fixed_gib + l.gib_per_token * x_max);
  const Axes a{x_max, std::min(top, 2.5 * capacity) * 1.05};

  std::string s = cat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"",
                      kWidth, "\" height=\"", kHeight, "\" viewBox=\"0 0 ", kWidth, " ", kHeight,
                      "\" font-family=\"sans-serif\" font-size=\"12\">\n");
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += text(kLeft, 22, cat(r.model_name, " on ", r.layout.num_gpus(), " x ", o.gpu.name, " (", to_string(r.layout), ")"),
            " font-size=\"15\" font-weight=\"bold\"");
  s += text(kLeft, 40, cat("memory per GPU: weights + workspace + KV cache of ", o.batch, " sequence",
                           o.batch == 1 ? "" : "s", ", against context length"));
  s += axes_svg(a);
  for (const Line& l : lines) s += memory_line_svg(a, l);
  s += line(a.x(0), a.y(capacity), a.x(x_max), a.y(capacity), "stroke=\"#d62728\" stroke-width=\"2\"");
  s += line(a.x(0), a.y(usable), a.x(x_max), a.y(usable), "stroke=\"#d62728\" stroke-dasharray=\"6 4\"");
  const double cx = a.x(double(r.options.context));
  s += line(cx, a.y(0), cx, a.y(a.y_max), "stroke=\"#555\" stroke-dasharray=\"2 3\"");
  s += legend_svg(lines, cat(o.gpu.name, " capacity ", num(capacity), " GiB"),
                  cat("usable at mem-util ", o.mem_util));
  s += "</svg>\n";
  return s;
}

void write_memory_plot(const std::string& path, const PlanModel& m, const PlanOptions& o, const PlanResult& r) {
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot write the plot to '", path, "'");
  out << memory_plot_svg(m, o, r);
  if (!out.flush()) fail("cannot write the plot to '", path, "'");
}

}  // namespace dsinfer::plan
