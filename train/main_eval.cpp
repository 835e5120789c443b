// performer-eval: loss, bits per token, perplexity and accuracy of a checkpoint on a corpus.
// Exit codes (train/USAGE.md): 0 ok, 2 bad flags, unreadable checkpoint or data.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "autograd/gemm.h"
#include "autograd/parallel.h"
#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/tool_main.h"
#include "train/evaluate.h"
#include "train/metrics.h"
#include "train/run_directory.h"

namespace {

// A refusal: printed by main, exit code 2.
struct Refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct EvalArgs {
  std::string checkpoint_path;
  std::vector<std::string> data;
  bool json = false;
  int64_t batches = 0, batch_size = 0, threads = 0;
  std::string precision;
};

// The number flags as given (read whole by read_numbers, which names a bad one as written).
struct NumberTexts {
  std::string batches, batch_size, threads;
};

void add_options(CLI::App& app, EvalArgs& a, NumberTexts& n) {
  app.add_option("--checkpoint", a.checkpoint_path, "checkpoint file (.ckpt) or run directory (its latest checkpoint)")
      ;
  app.add_option("--data", a.data, "corpus files to evaluate on (same kind as the training data)")
      ->expected(1, -1);
  app.add_flag("--json", a.json, "print one JSON object on stdout instead of text");
  app.add_option("--batches", n.batches, "evaluate at most this many batches (0 = all, the default)");
  app.add_option("--batch-size", n.batch_size, "rows per batch (default: the training batch size)");
  app.add_option("--threads", n.threads, "worker threads (0 = all cores, the default)");
  app.add_option("--precision", a.precision,
                 "matrix products: fp32, bf16 or auto (default: the checkpoint's run setting, so that the loss "
                 "equals the run's own evaluation)");
}

void read_numbers(const NumberTexts& n, EvalArgs& a) {
  if (a.checkpoint_path.empty()) throw Refused("--checkpoint is required: a checkpoint file or a run directory");
  if (a.data.empty()) throw Refused("--data is required: the corpus files to evaluate on");
  constexpr int64_t kMax = static_cast<int64_t>(pf::kMaxCount);
  if (!n.batches.empty()) a.batches = pf::int_flag("--batches", n.batches, 0, kMax, "must be >= 0 (0 = all)");
  if (!n.batch_size.empty()) a.batch_size = pf::int_flag("--batch-size", n.batch_size, 1, kMax, "must be > 0");
  if (!n.threads.empty()) a.threads = pf::threads_flag(n.threads);
  if (!a.precision.empty()) {
    pf::TrainConfig scratch;
    try {
      pf::set_field(scratch, "precision", a.precision);  // the names of --precision, from its one table
    } catch (const pf::FieldValueError& e) {
      throw Refused(e.what());
    }
  }
}

// The checkpoint's run configuration, adjusted to this evaluation (precision, batch size, format).
pf::TrainConfig eval_config(const EvalArgs& a, const pf::Checkpoint& ckpt) {
  pf::TrainConfig tc = ckpt.config;
  if (!a.precision.empty()) pf::set_field(tc, "precision", a.precision);
  try {
    pf::set_matmul_precision(tc.matmul_precision());
  } catch (const std::exception& e) {
    throw Refused("--precision " + pf::flag_text(tc.run.precision) + ": " + e.what());
  }
  tc.data.format = ckpt.vocab.kind() == pf::VocabKind::Protein ? pf::Format::Fasta : pf::Format::Text;
  if (a.batch_size > 0) tc.data.batch_size = a.batch_size;
  return tc;
}

// The files to score, read whole (no train split, no minimum length), with the checkpoint's vocabulary.
pf::DataModule load_data(const EvalArgs& a, const pf::TrainConfig& tc, const pf::Checkpoint& ckpt) {
  for (const std::string& f : a.data)
    if (!std::ifstream(f)) throw Refused("--data " + f + ": cannot open the file");
  pf::DataConfig dc = tc.data_config();
  dc.train_files.clear();
  dc.val_files = a.data;
  dc.eval_only = true;
  dc.tokenizer.proto = ckpt.vocab.model_proto();  // a SentencePiece model evaluates with its embedded tokenizer
  dc.tokenizer.model.clear();
  pf::DataModule dm = [&] {
    try {
      return pf::DataModule(dc);
    } catch (const std::exception& e) {
      throw std::runtime_error(
          std::string("--data: ") + e.what() + " (performer-eval reads the data with the checkpoint's --seq-len " +
          std::to_string(tc.data.seq_len) + " and --batch-size " + std::to_string(tc.data.batch_size) + ")");
    }
  }();
  if (!(dm.vocab() == ckpt.vocab))
    throw Refused("--data is " + dm.vocab().name() + " data but the model was trained with the " + ckpt.vocab.name() +
                  " vocabulary");
  for (const std::string& w : dm.warnings()) std::fprintf(stderr, "performer-eval: warning: %s\n", w.c_str());
  return dm;
}

void print_json(const EvalArgs& a, const pf::OpenedCheckpoint& opened, bool mlm, const pf::EvalMetrics& m,
                double unigram) {
  pf::JsonLine line;
  line.add("checkpoint", opened.path)
      .add("step", opened.checkpoint.progress.step)
      .add("objective", mlm ? "mlm" : "causal")
      .add("loss", m.loss)
      .add("bits_per_token", m.bits_per_token)
      .add("perplexity", m.perplexity)
      .add("accuracy", m.accuracy)
      .add("tokens", m.tokens)
      .add("batches", m.batches)
      .add("unigram_entropy", unigram);
  if (m.has_bits_per_byte()) line.add("bits_per_byte", m.bits_per_byte).add("bytes", m.bytes);
  std::printf("%s\n", line.add("data", a.data).str().c_str());
}

void print_text(const EvalArgs& a, const pf::OpenedCheckpoint& opened, const pf::PerformerLM& model,
                const pf::TrainConfig& tc, const pf::EvalMetrics& m, double unigram) {
  const bool mlm = !model.config().causal;
  std::printf("checkpoint: %s (step %lld, %s %s, %lld parameters)\n", opened.path.c_str(),
              static_cast<long long>(opened.checkpoint.progress.step), pf::to_string(model.config().attention).c_str(),
              mlm ? "masked LM" : "causal LM", static_cast<long long>(model.num_parameters()));
  std::string files;
  for (const std::string& f : a.data) files += (files.empty() ? "" : ", ") + f;
  std::printf("data: %s (%s)\n", files.c_str(), pf::enum_name(tc.data.format));
  std::printf("loss %.4f nats/token | %.4f bits/token | perplexity %.3f | %saccuracy %.2f%% (%lld tokens, %lld batches)\n",
              m.loss, m.bits_per_token, m.perplexity, mlm ? "masked-token " : "", 100.0 * m.accuracy,
              static_cast<long long>(m.tokens), static_cast<long long>(m.batches));
  std::printf("unigram entropy of these targets: %.4f nats/token\n", unigram);
  if (m.has_bits_per_byte())
    std::printf("%.4f bits per byte of the original text (%lld bytes: every byte but those of the first token)\n",
                m.bits_per_byte, static_cast<long long>(m.bytes));
}

int run(const EvalArgs& a) {
  pf::OpenedCheckpoint opened;
  try {
    opened = pf::open_checkpoint(a.checkpoint_path);
  } catch (const std::exception& e) {
    throw Refused(e.what());
  }
  const pf::TrainConfig tc = eval_config(a, opened.checkpoint);
  const pf::DataModule dm = load_data(a, tc, opened.checkpoint);
  std::unique_ptr<pf::PerformerLM> model = pf::make_model(opened.checkpoint);
  const std::vector<pf::Batch> eval_batches = dm.eval_batches(a.batches);
  int64_t targets = 0;
  for (const pf::Batch& b : eval_batches) targets += b.num_targets();
  if (targets == 0)
    throw Refused("--data: nothing to score (a causal model needs at least 2 tokens: one to read, one to predict)");
  const pf::EvalMetrics m = pf::evaluate(*model, eval_batches);
  const double unigram = pf::unigram_entropy(eval_batches, dm.vocab().size());
  if (a.json)
    print_json(a, opened, !model->config().causal, m, unigram);
  else
    print_text(a, opened, *model, tc, m, unigram);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "performer-eval: evaluate a checkpoint on a corpus. Every token of every file is scored once (causal: all but\n"
      "the first of each text or record): text in consecutive windows of the model's seq-len (a shorter file is\n"
      "one partial window), each FASTA record framed <bos> ... <eos> in consecutive windows of seq-len.",
      "performer-eval"};
  EvalArgs args;
  NumberTexts numbers;
  add_options(app, args, numbers);
  return pf::tool_main(app, argc, argv, args, numbers, read_numbers, run);
}
