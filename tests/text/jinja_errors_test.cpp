// Jinja behaviour that the generated feature table does not cover: errors (which must name
// the template line and column), transformers-only tags and source newline handling.
#include <gtest/gtest.h>

#include "core/error.h"
#include "jinja_helpers.h"

using dsinfer::Error;

namespace {

// The message of the dsinfer::Error that rendering `source` throws ("" when none is thrown).
std::string error_of(const std::string& source, const std::string& context = "{}") {
  try {
    render_jinja(source, context);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JinjaErrors, SyntaxErrorsNameLineAndColumn) {
  EXPECT_NE(error_of("line one\n{% if x %}\nunclosed").find("line 3"), std::string::npos);
  EXPECT_NE(error_of("a\nb {{ 1 + }}").find("line 2, column 10"), std::string::npos);
  EXPECT_NE(error_of("{% frobnicate %}").find("unknown or unsupported tag 'frobnicate'"), std::string::npos);
  EXPECT_NE(error_of("{% endif %}").find("unexpected 'endif'"), std::string::npos);
  EXPECT_NE(error_of("{{ 'open string }}").find("unterminated string literal"), std::string::npos);
  EXPECT_NE(error_of("{# never closed").find("missing end of comment tag"), std::string::npos);
  EXPECT_NE(error_of("{{ x ").find("missing '}}'"), std::string::npos);
  EXPECT_NE(error_of("{% break %}").find("outside of a loop"), std::string::npos);
  EXPECT_NE(error_of("{{ (1 }}").find("line 1"), std::string::npos);
}

TEST(JinjaErrors, RuntimeErrorsNamePosition) {
  std::string e = error_of("ok\n{{ missing.attr }}");
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  EXPECT_NE(e.find("'missing' is undefined"), std::string::npos) << e;
  e = error_of("{{ m.content.strip() }}", R"({"m": {"role": "user"}})");
  EXPECT_NE(e.find("'dict object' has no attribute 'content'"), std::string::npos) << e;
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("can only concatenate str"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 // 0 }}").find("by zero"), std::string::npos);
  EXPECT_NE(error_of("{{ x | nosuchfilter }}").find("no filter named 'nosuchfilter'"), std::string::npos);
  EXPECT_NE(error_of("{% for a, b in [1] %}{% endfor %}").find("unpack"), std::string::npos);
  EXPECT_NE(error_of("{% set s = 'x' %}{% set s.a = 1 %}").find("non-namespace"), std::string::npos);
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("recursion"), std::string::npos);
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplateMessage) {
  std::string e = error_of("{{ raise_exception('Conversation roles must alternate') }}");
  EXPECT_NE(e.find("Conversation roles must alternate"), std::string::npos) << e;
}

TEST(JinjaSource, NewlinesAreNormalizedAndOneTrailingNewlineDropped) {
  EXPECT_EQ(render_jinja("x\r\ny\rz\n\n"), "x\ny\nz\n");
  EXPECT_EQ(render_jinja("{{ 'a\r\nb' }}"), "a\nb");
}

TEST(JinjaSource, GenerationBlocksRenderTheirBody) {
  // transformers registers {% generation %} (to mark assistant tokens); it renders as-is.
  EXPECT_EQ(render_jinja("{%- generation %}kept{% endgeneration -%}\n"), "kept");
}

TEST(JinjaSource, StrftimeNowFormatsTheCurrentDate) {
  std::string year = render_jinja("{{ strftime_now('%Y') }}");
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
}

}  // namespace
