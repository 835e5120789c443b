// performer-generate: sample from a causal checkpoint with the recurrent decoder (FAVOR+ and ReLU
// carry an O(1) state per layer and head; exact softmax keeps a key/value cache).
// Exit codes (train/USAGE.md): 0 ok, 2 bad flags, unreadable checkpoint, invalid prompt.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "autograd/parallel.h"
#include "performer/generate.h"
#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/tool_main.h"
#include "train/run_directory.h"

namespace {

// A refusal: printed by main, exit code 2.
struct Refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct GenerateArgs {
  std::string checkpoint_path, prompt;
  int64_t tokens = 200, top_k = 0, threads = 1;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 1;
  bool greedy = false;
};

// The number flags as given (read whole by read_numbers, which names a bad one as written).
struct NumberTexts {
  std::string tokens, temperature, top_k, top_p, seed, threads;
};

void add_options(CLI::App& app, GenerateArgs& a, NumberTexts& n) {
  app.add_option("--checkpoint", a.checkpoint_path, "checkpoint file (.ckpt) or run directory (its latest checkpoint)")
      ;
  app.add_option("--prompt", a.prompt,
                 "text to continue (text models; required), or amino-acid letters (protein models; may be empty: "
                 "generation starts at <bos>)");
  app.add_option("--tokens", n.tokens, "new tokens to generate at most (default 200)");
  app.add_option("--temperature", n.temperature, "softmax temperature (> 0; default 1)");
  app.add_option("--top-k", n.top_k, "sample among the k most likely tokens (0 = all, the default)");
  app.add_option("--top-p", n.top_p,
                 "nucleus sampling: smallest set of tokens with this much probability, in (0, 1] (default 1)");
  app.add_flag("--greedy", a.greedy, "always take the most likely token");
  app.add_option("--seed", n.seed, "sampling seed (default 1)");
  app.add_option("--threads", n.threads, "worker threads (0 = all cores; default 1)");
  for (CLI::Option* o : app.get_options()) o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void read_numbers(const NumberTexts& n, GenerateArgs& a) {
  if (a.checkpoint_path.empty()) throw Refused("--checkpoint is required: a checkpoint file or a run directory");
  constexpr int64_t kMax = static_cast<int64_t>(pf::kMaxCount);
  if (!n.tokens.empty()) a.tokens = pf::int_flag("--tokens", n.tokens, 0, kMax, "must be >= 0");
  if (!n.top_k.empty()) a.top_k = pf::int_flag("--top-k", n.top_k, 0, kMax, "must be >= 0 (0 = all)");
  if (!n.seed.empty())
    a.seed = static_cast<uint64_t>(
        pf::int_flag("--seed", n.seed, 0, INT64_MAX, "must be in [0, 9223372036854775807]"));
  if (!n.threads.empty()) a.threads = pf::threads_flag(n.threads);
  if (!n.temperature.empty())
    a.temperature = pf::real_flag("--temperature", n.temperature, pf::Range{0, 1e6, true, false, "must be in (0, 1000000]"});
  if (!n.top_p.empty()) a.top_p = pf::real_flag("--top-p", n.top_p, pf::Range{0, 1, true, false, "must be in (0, 1]"});
}

pf::SamplingOptions sampling_options(const GenerateArgs& a) {
  pf::SamplingOptions opt;
  opt.temperature = static_cast<float>(a.temperature);
  opt.top_k = a.top_k;
  opt.top_p = static_cast<float>(a.top_p);
  opt.greedy = a.greedy;
  try {
    opt.validate();
  } catch (const std::exception& e) {
    throw Refused(e.what());
  }
  return opt;
}

// The prompt as token ids (protein models start at <bos>).
std::vector<int32_t> prompt_ids(const GenerateArgs& a, const pf::Vocab& vocab) {
  std::vector<int32_t> ids;
  if (vocab.bos_id() >= 0) ids.push_back(vocab.bos_id());
  try {
    const std::vector<int32_t> p = vocab.encode(a.prompt);
    ids.insert(ids.end(), p.begin(), p.end());
  } catch (const std::exception& e) {
    throw Refused(std::string("--prompt: ") + e.what());
  }
  if (ids.empty()) throw Refused("--prompt is required for a text (byte) model: give the text to continue");
  return ids;
}

// How many tokens fit after the prompt: learned positions end at the model's max_seq_len.
int64_t tokens_that_fit(const pf::ModelConfig& mc, size_t prompt_tokens, int64_t tokens) {
  if (mc.positions != pf::PositionKind::Learned) return tokens;
  const int64_t room = mc.max_seq_len - static_cast<int64_t>(prompt_tokens) + 1;
  if (room < 1)
    throw Refused("--prompt is " + std::to_string(prompt_tokens) + " tokens, more than the model's context of " +
                  std::to_string(mc.max_seq_len) + " positions (learned positions)");
  if (tokens <= room) return tokens;
  std::fprintf(stderr, "note: generating %lld tokens, not %lld: the model's learned positions end at %lld\n",
               static_cast<long long>(room), static_cast<long long>(tokens), static_cast<long long>(mc.max_seq_len));
  return room;
}

int run(const GenerateArgs& a) {
  pf::OpenedCheckpoint opened;
  try {
    opened = pf::open_checkpoint(a.checkpoint_path);
  } catch (const std::exception& e) {
    throw Refused(e.what());
  }
  const pf::Checkpoint& ckpt = opened.checkpoint;
  if (!ckpt.model_config.causal)
    throw Refused(opened.path +
                  " is a masked-LM (bidirectional) model; performer-generate needs a causal model "
                  "(trained with --objective causal)");
  const pf::SamplingOptions opt = sampling_options(a);
  const pf::Vocab& vocab = ckpt.vocab;
  const std::vector<int32_t> ids = prompt_ids(a, vocab);
  std::unique_ptr<pf::PerformerLM> model = pf::make_model(ckpt);
  model->eval();
  const pf::ModelConfig& mc = model->config();
  const int64_t tokens = tokens_that_fit(mc, ids.size(), a.tokens);
  pf::Generator gen(a.seed);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> out = pf::generate(*model, ids, tokens, opt, gen, vocab.eos_id());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const bool at_eos = vocab.bos_id() >= 0 && static_cast<int64_t>(out.size()) < tokens;
  std::vector<int32_t> all = ids;
  all.insert(all.end(), out.begin(), out.end());
  const std::string text = vocab.decode(all, /*skip_special=*/true);
  std::fwrite(text.data(), 1, text.size(), stdout);  // bytes: a 0x00 token is text too
  std::fputc('\n', stdout);
  std::fprintf(stderr, "generated %zu tokens in %.3f s (%.1f tokens/s, %s decoding)%s\n", out.size(), s,
               s > 0 ? static_cast<double>(out.size()) / s : 0.0,
               mc.attention == pf::AttentionKind::Softmax      ? "key/value cache"
               : mc.attention == pf::AttentionKind::FavorLocal ? "recurrent FAVOR state + window of keys"
                                                               : "recurrent FAVOR state",
               at_eos ? "; stopped at <eos>" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"performer-generate: continue a prompt with a causal Performer checkpoint.", "performer-generate"};
  GenerateArgs args;
  NumberTexts numbers;
  add_options(app, args, numbers);
  return pf::tool_main(app, argc, argv, args, numbers, read_numbers, run);
}
