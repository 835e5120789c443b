// performer-generate: sample from a causal checkpoint with the recurrent decoder (FAVOR+ and ReLU
// carry an O(1) state per layer and head; exact softmax keeps a key/value cache).
// Exit codes: 0 ok, 2 bad flags, unreadable checkpoint, invalid prompt.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "autograd/parallel.h"
#include "performer/generate.h"
#include "train/checkpoint.h"
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

void add_options(CLI::App& app, GenerateArgs& a) {
  app.add_option("--checkpoint", a.checkpoint_path, "checkpoint file (.ckpt) or run directory (its latest checkpoint)")
      ->required();
  app.add_option("--prompt", a.prompt,
                 "text to continue (text models; required), or amino-acid letters (protein models; may be empty: "
                 "generation starts at <bos>)");
  app.add_option("--tokens", a.tokens, "new tokens to generate at most")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", a.temperature, "softmax temperature (> 0)")->check(CLI::PositiveNumber);
  app.add_option("--top-k", a.top_k, "sample among the k most likely tokens (0 = all)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", a.top_p, "nucleus sampling: smallest set of tokens with this much probability, in (0, 1]")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--greedy", a.greedy, "always take the most likely token");
  app.add_option("--seed", a.seed, "sampling seed");
  app.add_option("--threads", a.threads, "worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
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
  std::printf("%s\n", vocab.decode(all, /*skip_special=*/true).c_str());
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
  add_options(app, args);
  CLI11_PARSE(app, argc, argv);
  if (args.threads > 0) pf::set_num_threads(static_cast<int>(args.threads));
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "performer-generate: error: %s\n", e.what());
    return 2;
  }
}
