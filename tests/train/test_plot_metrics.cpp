// scripts/plot-metrics.py on the metrics.jsonl of real (short) performer-train runs: a PNG and an SVG
// with both runs, and clear errors. Skipped when the Python (PF_TEST_PYTHON) has no matplotlib.
#include <gtest/gtest.h>

#include <cstdint>

#include "train_test_util.h"

namespace pf {
namespace {

using test::contains;

uint32_t big_endian32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

std::string matplotlib_unavailable() {
  const test::CommandResult r = test::run_command({PF_TEST_PYTHON, "-c", "import matplotlib"});
  if (r.exit_code == 0) return "";
  return std::string(PF_TEST_PYTHON) + " cannot import matplotlib (Debian: apt-get install python3-matplotlib)";
}

test::CommandResult tiny_run(const test::TempDir& dir, const std::string& data, const std::string& name,
                             const std::string& attention) {
  std::vector<std::string> args = {PF_TRAIN_BIN};
  for (const std::string& f : test::tiny_flags()) args.push_back(f);
  args.insert(args.end(), {"--steps", "20", "--attention", attention, "--data", data, "--out", dir.path(name)});
  return test::run_command(args);
}

TEST(PlotMetrics, WritesAPngAndAnSvgOfSeveralRuns) {
  if (const std::string why = matplotlib_unavailable(); !why.empty()) GTEST_SKIP() << why;
  test::TempDir dir;
  const std::string data = dir.write("train.txt", test::word_text(3000, 31));
  ASSERT_EQ(tiny_run(dir, data, "favor-run", "favor").exit_code, 0);
  ASSERT_EQ(tiny_run(dir, data, "softmax-run", "softmax").exit_code, 0);
  const std::string prefix = dir.path("plots/loss");
  const test::CommandResult r = test::run_command(
      {PF_TEST_PYTHON, PF_PLOT_SCRIPT, dir.path("favor-run"), dir.path("softmax-run"), "--out", prefix});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, prefix + ".png") && contains(r.out, prefix + ".svg")) << r.out;

  const std::string png = test::read_file(prefix + ".png");
  ASSERT_GE(png.size(), 33u) << "too short for a PNG";
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << "PNG signature";
  EXPECT_EQ(png.substr(12, 4), "IHDR") << "first chunk";
  const uint32_t width = big_endian32(png, 16), height = big_endian32(png, 20);
  EXPECT_GE(width, 400u);
  EXPECT_LE(width, 4000u);
  EXPECT_GE(height, 150u);
  EXPECT_LE(height, 4000u);
  EXPECT_GT(png.size(), 5000u) << "two panels of curves, not an empty image";
  EXPECT_LT(png.size(), 2000000u);
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND") << "complete file";

  const std::string svg = test::read_file(prefix + ".svg");
  EXPECT_TRUE(contains(svg, "<svg")) << svg.substr(0, 200);
  // Legend entries (SVG text is drawn as glyph paths; the labels are kept in comments / ids).
  EXPECT_TRUE(contains(svg, "favor-run train") && contains(svg, "softmax-run validation"));
}

TEST(PlotMetrics, RefusesADirectoryWithoutMetrics) {
  test::TempDir dir;
  const test::CommandResult r =
      test::run_command({PF_TEST_PYTHON, PF_PLOT_SCRIPT, dir.path(""), "--out", dir.path("loss")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "no metrics.jsonl")) << r.err;
}

}  // namespace
}  // namespace pf
