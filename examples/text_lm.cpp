// A character-level Performer language model on any text file, written with the public API only,
// as a libtorch-style loop: zero_grad / forward / loss / backward / step.
//
//   text_lm CORPUS [STEPS] [CHECKPOINT]
//
// Trains for STEPS (default 300) optimizer steps, reports the validation loss, saves a checkpoint
// (default text_lm.ckpt), loads it back into a fresh model and continues the start of the
// validation text with it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "pf.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS [STEPS] [CHECKPOINT]\n", argv[0]);
    return 2;
  }
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 300;
  const std::string checkpoint_path = argc > 3 ? argv[3] : "text_lm.ckpt";

  // Data: byte-level windows of 64 tokens, 10% of the file held out for validation.
  const pf::DataConfig data_cfg{
      .train_files = {argv[1]}, .format = pf::Format::Text, .val_fraction = 0.1, .seq_len = 64, .batch_size = 8};
  pf::DataModule data(data_cfg);
  std::printf("%s\n", data.describe().c_str());

  // Model: a small causal FAVOR+ Performer.
  // (redraw_every stays 0: one projection for the whole run trained best, QUALITY.md.)
  const pf::ModelConfig model_cfg{.vocab_size = data.vocab().size(), .dim = 64, .ff_hidden = 256, .features = 32,
                                  .max_seq_len = data_cfg.seq_len, .attention = pf::AttentionKind::Favor};
  pf::PerformerLM model(model_cfg);

  pf::AdamOptions adam;
  adam.lr = 3e-3f;
  adam.weight_decay = 0.01f;
  pf::AdamW optimizer(model.named_parameters(), adam);
  pf::ScheduleConfig schedule{pf::ScheduleKind::Cosine, adam.lr, /*warmup=*/std::min<int64_t>(20, steps), steps, 0.1f};

  for (int64_t step = 0; step < steps; ++step) {
    optimizer.set_lr(pf::learning_rate_at(schedule, step));
    pf::Batch batch = data.next_train_batch();  // inputs, targets, key_mask: (B,T)
    optimizer.zero_grad();
    pf::Var logits = model.forward(batch.inputs, batch.batch, batch.seq, &batch.key_mask);  // (B,T,V)
    pf::Var loss = pf::cross_entropy(pf::reshape(logits, {batch.batch * batch.seq, logits.size(-1)}), batch.targets);
    loss.backward();
    pf::clip_grad_norm(model.parameters(), 1.0f);
    optimizer.step();
    model.maybe_redraw(step + 1);  // FAVOR+ projections are redrawn between optimizer steps
    if ((step + 1) % 50 == 0 || step + 1 == steps)
      std::printf("step %lld  loss %.4f  lr %.2e\n", static_cast<long long>(step + 1), loss.item(), optimizer.lr());
  }

  const pf::EvalMetrics val = pf::evaluate(model, data.eval_batches(20));
  std::printf("validation: loss %.4f  bits/token %.3f  accuracy %.1f%%\n", val.loss, val.bits_per_token,
              100.0 * val.accuracy);

  pf::save_checkpoint(checkpoint_path, model, optimizer, data, steps);
  std::printf("saved %s\n", checkpoint_path.c_str());

  // Load it back (model, optimizer and data cursor could all be restored; here only the model).
  const pf::Checkpoint ckpt = pf::load_checkpoint(checkpoint_path);
  std::unique_ptr<pf::PerformerLM> loaded = pf::make_model(ckpt);
  loaded->eval();
  const std::vector<pf::Batch> val_batches = data.eval_batches(1);
  std::vector<int32_t> prompt(val_batches[0].inputs.begin(), val_batches[0].inputs.begin() + 16);
  pf::SamplingOptions sampling;
  sampling.temperature = 0.8f;
  pf::Generator gen(7);
  const std::vector<int32_t> more = pf::generate(*loaded, prompt, 40, sampling, gen);
  std::printf("prompt: %s\nsample: %s\n", ckpt.vocab.decode(prompt).c_str(), ckpt.vocab.decode(more, true).c_str());
  return std::isfinite(val.loss) ? 0 : 1;
}
