// A causal protein language model on a FASTA file, written with the public API only, as a
// libtorch-style loop: zero_grad / forward / loss / backward / step. Checkpoints every 100 steps and
// resumes from the checkpoint when it exists (model, optimizer and data cursor together).
//
//   protein_lm FASTA [STEPS] [CHECKPOINT]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "pf.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FASTA [STEPS] [CHECKPOINT]\n", argv[0]);
    return 2;
  }
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 300;
  const std::string checkpoint_path = argc > 3 ? argv[3] : "protein_lm.ckpt";

  // One record per row, framed as <bos> residues <eos>, cropped to 64 tokens, padded with a key mask.
  const pf::DataConfig data_cfg{
      .train_files = {argv[1]}, .format = pf::Format::Fasta, .val_fraction = 0.1, .seq_len = 64, .batch_size = 8};
  pf::DataModule data(data_cfg);
  std::printf("%s\n", data.describe().c_str());

  // The vocabulary: 20 amino acids, 5 rare codes, pad, bos, eos, mask. Depth 2 and 4 heads are the defaults.
  const pf::ModelConfig model_cfg{.vocab_size = data.vocab().size(), .dim = 64, .ff_hidden = 256, .features = 32,
                                  .max_seq_len = data_cfg.seq_len, .attention = pf::AttentionKind::Favor,
                                  .positions = pf::PositionKind::Rotary};
  pf::PerformerLM model(model_cfg);

  pf::AdamOptions adam;
  adam.lr = 2e-3f;
  pf::AdamW optimizer(model.named_parameters(), adam);
  pf::ScheduleConfig schedule{pf::ScheduleKind::Cosine, adam.lr, /*warmup=*/std::min<int64_t>(20, steps), steps, 0.1f};

  int64_t start = 0;
  if (std::filesystem::exists(checkpoint_path)) {
    const pf::Checkpoint ckpt = pf::load_checkpoint(checkpoint_path);
    pf::restore(ckpt, model, optimizer, data);
    start = ckpt.progress.step;
    std::printf("resumed %s at step %lld\n", checkpoint_path.c_str(), static_cast<long long>(start));
  }

  for (int64_t step = start; step < steps; ++step) {
    optimizer.set_lr(pf::learning_rate_at(schedule, step));
    pf::Batch batch = data.next_train_batch();
    optimizer.zero_grad();
    pf::Var logits = model.forward(batch.inputs, batch.batch, batch.seq, &batch.key_mask);  // (B,T,V)
    pf::Var loss = pf::cross_entropy(pf::reshape(logits, {batch.batch * batch.seq, logits.size(-1)}), batch.targets);
    loss.backward();
    const float norm = pf::clip_grad_norm(model.parameters(), 1.0f);
    if (std::isfinite(norm)) optimizer.step();  // never apply a NaN update
    model.maybe_redraw(step + 1);
    if ((step + 1) % 100 == 0 || step + 1 == steps) {
      pf::save_checkpoint(checkpoint_path, model, optimizer, data, step + 1);
      std::printf("step %lld  loss %.4f  (checkpoint saved)\n", static_cast<long long>(step + 1), loss.item());
    }
  }

  const pf::EvalMetrics val = pf::evaluate(model, data.eval_batches(20));
  std::printf("validation: loss %.4f nats  perplexity %.2f  accuracy %.1f%%\n", val.loss, val.perplexity,
              100.0 * val.accuracy);

  // Sample a protein: start at <bos>, stop at <eos>.
  model.eval();
  pf::SamplingOptions sampling;
  pf::Generator gen(3);
  const pf::Vocab& vocab = data.vocab();
  const std::vector<int32_t> protein =
      pf::generate(model, {vocab.bos_id()}, model_cfg.max_seq_len, sampling, gen, vocab.eos_id());
  std::printf("sample (%zu residues): %s\n", protein.size(), vocab.decode(protein, true).c_str());
  return 0;
}
