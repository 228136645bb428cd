// The SVG plot: written, well-formed, and carrying its lines, capacity and legend.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "plan/model_catalog.h"
#include "plan/plot_svg.h"

namespace dsinfer::plan {
namespace {

// Checks that tags nest and close; returns "" or what is wrong.
std::string xml_problem(const std::string& doc) {
  std::vector<std::string> open;
  size_t pos = 0;
  while ((pos = doc.find('<', pos)) != std::string::npos) {
    const size_t end = doc.find('>', pos);
    if (end == std::string::npos) return "unclosed '<'";
    const std::string tag = doc.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.starts_with("?")) continue;
    if (tag.starts_with("/")) {
      if (open.empty() || open.back() != tag.substr(1)) return "mismatched </" + tag.substr(1) + ">";
      open.pop_back();
    } else if (!tag.ends_with("/")) {
      open.push_back(tag.substr(0, tag.find(' ')));
    }
  }
  for (char c : {'&'}) {
    for (size_t i = doc.find(c); i != std::string::npos; i = doc.find(c, i + 1))
      if (doc.compare(i, 5, "&amp;") && doc.compare(i, 4, "&lt;") && doc.compare(i, 4, "&gt;") && doc.compare(i, 6, "&quot;"))
        return "bare '&'";
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

TEST(PlanPlot, WellFormedWithLegend) {
  PlanModel m = load_plan_model("deepseek-v3");
  m.name = "v3 <&> test";  // must be escaped
  PlanOptions o;
  o.gpu = find_gpu("H200");
  o.batch = 32;
  const PlanResult r = make_plan(m, o);
  const std::string svg = memory_plot_svg(m, o, r);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_TRUE(svg.starts_with("<?xml"));
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("v3 &lt;&amp;&gt; test"), std::string::npos);
  for (const char* label : {"weights bf16, KV bf16", "weights fp8, KV fp8", "weights int8, KV int8",
                            "weights int4, KV int4", "H200 capacity 141.0 GiB", "context length",
                            "memory per GPU (GiB)"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
}

TEST(PlanPlot, WritesTheFile) {
  const PlanModel m = load_plan_model("deepseek-r1-distill-qwen-7b");
  const PlanOptions o;
  const PlanResult r = make_plan(m, o);
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "dsinfer_plan_plot_test.svg";
  write_memory_plot(path.string(), m, o, r);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(xml_problem(text.str()), "");
  EXPECT_NE(text.str().find("</svg>"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_THROW(write_memory_plot("/nonexistent-dir/plot.svg", m, o, r), Error);
}

}  // namespace
}  // namespace dsinfer::plan
