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

int fail(const std::string& message) {
  std::fprintf(stderr, "performer-generate: error: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"performer-generate: continue a prompt with a causal Performer checkpoint.", "performer-generate"};
  std::string checkpoint_path, prompt;
  int64_t tokens = 200, top_k = 0, threads = 1;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 1;
  bool greedy = false;
  app.add_option("--checkpoint", checkpoint_path, "checkpoint file (.ckpt) or run directory (its latest checkpoint)")
      ->required();
  app.add_option("--prompt", prompt,
                 "text to continue (text models; required), or amino-acid letters (protein models; may be empty: "
                 "generation starts at <bos>)");
  app.add_option("--tokens", tokens, "new tokens to generate at most")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", temperature, "softmax temperature (> 0)")->check(CLI::PositiveNumber);
  app.add_option("--top-k", top_k, "sample among the k most likely tokens (0 = all)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", top_p, "nucleus sampling: smallest set of tokens with this much probability, in (0, 1]")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--greedy", greedy, "always take the most likely token");
  app.add_option("--seed", seed, "sampling seed");
  app.add_option("--threads", threads, "worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) pf::set_num_threads(static_cast<int>(threads));

  try {
    std::string path;
    pf::Checkpoint ckpt;
    try {
      path = pf::resolve_resume_path(checkpoint_path, "--checkpoint");
      ckpt = pf::load_checkpoint(path);
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    if (!ckpt.model_config.causal)
      return fail(path +
                  " is a masked-LM (bidirectional) model; performer-generate needs a causal model "
                  "(trained with --objective causal)");
    pf::SamplingOptions opt;
    opt.temperature = static_cast<float>(temperature);
    opt.top_k = top_k;
    opt.top_p = static_cast<float>(top_p);
    opt.greedy = greedy;
    try {
      opt.validate();
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    const pf::Vocab& vocab = ckpt.vocab;
    std::vector<int32_t> ids;
    const bool protein = vocab.bos_id() >= 0;
    if (protein) ids.push_back(vocab.bos_id());
    try {
      const std::vector<int32_t> p = vocab.encode(prompt);
      ids.insert(ids.end(), p.begin(), p.end());
    } catch (const std::exception& e) {
      return fail(std::string("--prompt: ") + e.what());
    }
    if (ids.empty()) return fail("--prompt is required for a text (byte) model: give the text to continue");
    std::unique_ptr<pf::PerformerLM> model = pf::make_model(ckpt);
    model->eval();
    const pf::ModelConfig& mc = model->config();
    if (mc.positions == pf::PositionKind::Learned) {
      const int64_t room = mc.max_seq_len - static_cast<int64_t>(ids.size()) + 1;
      if (room < 1)
        return fail("--prompt is " + std::to_string(ids.size()) + " tokens, more than the model's context of " +
                    std::to_string(mc.max_seq_len) + " positions (learned positions)");
      if (tokens > room) {
        std::fprintf(stderr, "note: generating %lld tokens, not %lld: the model's learned positions end at %lld\n",
                     static_cast<long long>(room), static_cast<long long>(tokens),
                     static_cast<long long>(mc.max_seq_len));
        tokens = room;
      }
    }
    pf::Generator gen(seed);
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int32_t> out = pf::generate(*model, ids, tokens, opt, gen, vocab.eos_id());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool at_eos = protein && static_cast<int64_t>(out.size()) < tokens;
    std::vector<int32_t> all = ids;
    all.insert(all.end(), out.begin(), out.end());
    std::printf("%s\n", vocab.decode(all, /*skip_special=*/true).c_str());
    std::fprintf(stderr, "generated %zu tokens in %.3f s (%.1f tokens/s, %s decoding)%s\n", out.size(), s,
                 s > 0 ? static_cast<double>(out.size()) / s : 0.0,
                 mc.attention == pf::AttentionKind::Softmax      ? "key/value cache"
                 : mc.attention == pf::AttentionKind::FavorLocal ? "recurrent FAVOR state + window of keys"
                                                                 : "recurrent FAVOR state",
                 at_eos ? "; stopped at <eos>" : "");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
