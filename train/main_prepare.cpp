// performer-prepare: a corpus tokenized once into a prepared dataset (data/prepared.h): token shards
// read by memory map, a record index, a manifest with every checksum. performer-train --data DIR
// trains from it; performer-train --data FILE does the same preparation into the cache by itself.
// Exit codes: 0 ok, 1 internal error, 2 bad flags or input (a missing or malformed file, a full disk).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "data/prepared.h"
#include "train/train_config.h"

namespace {

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "performer-prepare: error: %s\n", message.c_str());
  return code;
}

std::string mb(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "performer-prepare: tokenize a corpus once into a prepared dataset (memory-mapped token shards, a record\n"
      "index, a manifest of checksums). Train from it with performer-train --data DIR. Without --out the dataset\n"
      "goes to the cache, where performer-train --data FILE finds it.",
      "performer-prepare"};
  pf::DataConfig c;  // performer-train's defaults
  std::string out, format = "auto", tokenizer = "bytes", tokenizer_type = "bpe";
  app.add_option("--data", c.train_files, "corpus files (text or FASTA, optionally .gz)")->required();
  app.add_option("--val-data", c.val_files, "validation files (default: --val-fraction of --data)");
  app.add_option("--out", out, "the dataset directory to write (must not exist; default: the cache)");
  app.add_option("--cache-dir", c.cache_dir,
                 "the cache (default: $XDG_CACHE_HOME/performer-cpp, else ~/.cache/performer-cpp, else $TMPDIR)");
  app.add_option("--format", format, "corpus format: auto, text or fasta");
  app.add_option("--val-fraction", c.val_fraction, "share of --data held out for validation, in [0, 1)")
      ->capture_default_str();
  app.add_option("--tokenizer", tokenizer, "text tokenizer: bytes or sentencepiece")->capture_default_str();
  app.add_option("--vocab-size", c.tokenizer.vocab_size, "sentencepiece: train a model of this many pieces");
  app.add_option("--tokenizer-model", c.tokenizer.model, "sentencepiece: an existing .model file");
  app.add_option("--tokenizer-type", tokenizer_type, "sentencepiece training: bpe or unigram")->capture_default_str();
  app.add_option("--tokenizer-sample-bytes", c.tokenizer.sample_bytes,
                 "sentencepiece training: bytes of the seeded sample of the training split")
      ->capture_default_str();
  app.add_option("--tokenizer-sample-seed", c.tokenizer.sample_seed, "sentencepiece training: seed of that sample")
      ->capture_default_str();
  app.add_flag("--skip-bad-records", c.skip_bad_records, "FASTA: skip malformed records instead of failing");
  app.add_option("--threads", c.threads, "worker threads (0 = all cores); the output is the same for any count")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(2, e.what());
  }
  try {
    pf::parse_field(pf::FieldSpec{"format", ""}, format, c.format);
    pf::parse_field(pf::FieldSpec{"tokenizer", ""}, tokenizer, c.tokenizer.kind);
    pf::parse_field(pf::FieldSpec{"tokenizer-type", ""}, tokenizer_type, c.tokenizer.type);
    c.seq_len = 1;  // not used by preparation; DataConfig checks them
    c.batch_size = 1;
    c.validate();
    if (c.threads > 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())))
      return fail(2, "--threads " + std::to_string(c.threads) + ": more than 4x this machine's " +
                         std::to_string(std::thread::hardware_concurrency()) + " cores");
    for (const std::string& f : c.train_files)
      if (!std::filesystem::exists(f)) return fail(2, "--data " + f + ": no such file");
    for (const std::string& f : c.val_files)
      if (!std::filesystem::exists(f)) return fail(2, "--val-data " + f + ": no such file");
  } catch (const std::exception& e) {
    return fail(2, e.what());
  }
  pf::PreparedInfo info;
  try {
    pf::prepare_dataset(c, out, &info);
    const pf::PreparedDataset d = pf::PreparedDataset::open(info.dir, c.threads);
    const pf::Manifest& m = d.manifest();
    int64_t input = 0;
    for (const auto* list : {&m.sources, &m.val_sources})
      for (const pf::SourceFile& s : *list) input += s.size;
    std::printf("%s %s: %s\n", info.reused ? "reused" : "prepared", info.dir.c_str(),
                m.kind == "fasta" ? (std::to_string(m.train.records) + " train / " + std::to_string(m.val.records) +
                                     " val records, " + std::to_string(m.stats.skipped_records) + " skipped")
                                        .c_str()
                                  : (std::to_string(m.train.token_count) + " train / " +
                                     std::to_string(m.val.token_count) + " val tokens (" + m.tokenizer + ")")
                                        .c_str());
    std::printf("  %s of input in %.1f s (%.1f MB/s), fingerprint %s\n", mb(input).c_str(), info.seconds,
                info.seconds > 0 ? static_cast<double>(input) / 1e6 / info.seconds : 0.0, pf::hex64(m.fingerprint).c_str());
    std::printf("train: performer-train --data %s ...\n", info.dir.c_str());
  } catch (const std::invalid_argument& e) {
    return fail(2, e.what());
  } catch (const std::runtime_error& e) {
    return fail(2, e.what());
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
  return 0;
}
