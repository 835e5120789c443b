// Data-parallel training in your own loop: a character-level Performer LM trained by every rank of an
// MPI job, with pf::dist::GradientSync doing what PyTorch's DistributedDataParallel does.
//
//   mpirun -np 2 distributed_lm CORPUS [STEPS] [CHECKPOINT]      (also runs as one process)
//
// Every rank builds the same data stream and model (same seeds), rank 0's weights are broadcast, and
// each step every rank draws the same global batch, trains on its own rows, averages the gradients
// with the other ranks (fused buckets) and takes the same optimizer step. Rank 0 reports, evaluates
// and saves the checkpoint; at the end every rank checks that all replicas are bit-identical.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "pf.h"

int main(int argc, char** argv) {
  pf::dist::Session mpi(&argc, &argv);
  const int rank = pf::dist::rank(), ranks = pf::dist::size();
  if (argc < 2) {
    if (rank == 0) std::fprintf(stderr, "usage: %s CORPUS [STEPS] [CHECKPOINT]\n", argv[0]);
    return 2;
  }
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 200;
  const std::string checkpoint_path = argc > 3 ? argv[3] : "distributed_lm.ckpt";

  // The same data stream on every rank: a global batch of 8 windows of 64 bytes.
  const pf::DataConfig data_cfg{
      .train_files = {argv[1]}, .format = pf::Format::Text, .val_fraction = 0.1, .seq_len = 64, .batch_size = 8};
  pf::DataModule data(data_cfg);
  if (data_cfg.batch_size % ranks != 0) {
    if (rank == 0) std::fprintf(stderr, "this example needs a rank count that divides 8\n");
    return 2;
  }

  const pf::ModelConfig model_cfg{.vocab_size = data.vocab().size(), .dim = 64, .ff_hidden = 256, .features = 32,
                                  .max_seq_len = data_cfg.seq_len, .attention = pf::AttentionKind::Favor};
  pf::PerformerLM model(model_cfg);
  model.dropout_generator().seed(1000 + static_cast<uint64_t>(rank));  // own dropout masks per rank

  pf::dist::GradientSync sync(model);  // parameters and buffers (the random projections), in a fixed order
  sync.broadcast_from_root();          // every replica starts from rank 0's weights

  pf::AdamOptions adam;
  adam.lr = 3e-3f;
  pf::AdamW optimizer(model.named_parameters(), adam);
  pf::ScheduleConfig schedule{pf::ScheduleKind::Cosine, adam.lr, /*warmup=*/std::min<int64_t>(20, steps), steps, 0.1f};
  const int64_t rows = data_cfg.batch_size / ranks;
  double comm_ms = 0.0;

  for (int64_t step = 0; step < steps; ++step) {
    optimizer.set_lr(pf::learning_rate_at(schedule, step));
    const pf::Batch global = data.next_train_batch();  // the same batch on every rank
    // This rank's rows.
    pf::Batch b;
    b.batch = rows;
    b.seq = global.seq;
    const auto first = static_cast<ptrdiff_t>(rank * rows * global.seq), last = first + rows * global.seq;
    b.inputs.assign(global.inputs.begin() + first, global.inputs.begin() + last);
    b.targets.assign(global.targets.begin() + first, global.targets.begin() + last);
    b.key_mask.assign(global.key_mask.begin() + first, global.key_mask.begin() + last);

    optimizer.zero_grad();
    pf::Var loss = pf::batch_loss(model, b);
    loss.backward();
    sync.average_gradients();  // every rank now holds the mean of the ranks' gradients
    comm_ms += sync.last_reduce_ms();
    pf::clip_grad_norm(model.parameters(), 1.0f);
    optimizer.step();
    const double mean_loss = pf::dist::sum(loss.item()) / ranks;
    if (rank == 0 && ((step + 1) % 50 == 0 || step + 1 == steps))
      std::printf("step %lld  loss %.4f  allreduce %.2f ms/step\n", static_cast<long long>(step + 1), mean_loss,
                  comm_ms / static_cast<double>(step + 1));
  }

  const bool identical = sync.replicas_identical();  // collective: a checksum of every replica
  if (rank == 0) {
    const pf::EvalMetrics val = pf::evaluate(model, data.eval_batches(20));
    std::printf("validation: loss %.4f  bits/token %.3f\n", val.loss, val.bits_per_token);
    pf::save_checkpoint(checkpoint_path, model, optimizer, data, steps);
    std::printf("saved %s\n", checkpoint_path.c_str());
    std::printf("%d rank(s), %lld gradient buckets of up to 4 MB, %lld gradient bytes per step; replicas %s\n",
                ranks, static_cast<long long>(sync.num_buckets()), static_cast<long long>(sync.gradient_bytes()),
                identical ? "identical" : "DIFFER");
  }
  return identical ? 0 : 1;
}
