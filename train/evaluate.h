// The loss of a batch, and evaluation over many batches (loss, bits per token, perplexity, accuracy).
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/var.h"
#include "data/batch.h"
#include "performer/model.h"

namespace pf {

// Counts for one or more batches. Accuracy: the arg-max prediction equals the target (for masked-LM
// models only masked positions have targets, so this is masked-token accuracy).
struct LossStats {
  double loss_sum = 0.0;  // nats, summed over targets
  int64_t targets = 0;
  int64_t correct = 0;
  int64_t target_bytes = 0;  // bytes of the original text the targets stand for (Batch::target_bytes)
  void add(const LossStats& o) {
    loss_sum += o.loss_sum;
    targets += o.targets;
    correct += o.correct;
    target_bytes += o.target_bytes;
  }
};

struct EvalMetrics {
  double loss = 0.0;            // nats per target token
  double bits_per_token = 0.0;  // loss / ln 2
  double perplexity = 0.0;      // exp(loss)
  double accuracy = 0.0;        // in [0, 1]
  int64_t tokens = 0;           // targets evaluated
  int64_t batches = 0;
  // Causal text models: total nats / ln 2 / bytes, where bytes counts the bytes of the original text
  // that the scored targets stand for (every byte of the evaluated text but those of its first token,
  // which has no context; data/tokenizer.h says how subword bytes are counted). Byte tokenizers: equal
  // to bits_per_token. NaN and bytes = 0 when not defined (proteins, masked LM).
  double bits_per_byte = 0.0;
  int64_t bytes = 0;
  bool has_bits_per_byte() const { return bytes > 0; }
  static EvalMetrics from(const LossStats& s, int64_t batches);
};

// The loss, target count and arg-max hits of one batch, without a tape (the training loss is
// batch_loss in train/loss.h).
LossStats batch_stats(PerformerLM& model, const Batch& batch);

// Evaluation mode, no tape; restores the model's training mode afterwards.
EvalMetrics evaluate(PerformerLM& model, const std::vector<Batch>& batches);

// Entropy (nats) of the target-token frequencies of these batches: the loss of the best model that
// knows only how often each token occurs. A model has learned something once it is below this.
double unigram_entropy(const std::vector<Batch>& batches, int32_t vocab_size);

}  // namespace pf
