// Trains a tiny Performer for a few steps through the installed headers and libraries, saves a
// checkpoint and loads it back.
#include <pf.h>

#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  std::ofstream(dir + "/corpus.txt") << std::string(200, 'a') + "the quick brown fox jumps over the lazy dog\n";
  pf::TrainConfig cfg;
  cfg.data.train_files = {dir + "/corpus.txt"};
  cfg.model.dim = 16;
  cfg.model.depth = 1;
  cfg.model.heads = 2;
  cfg.model.ff_hidden = 32;
  cfg.model.features = 8;
  cfg.data.seq_len = 16;
  cfg.data.batch_size = 2;
  cfg.schedule.total_steps = 3;
  cfg.schedule.warmup = 1;
  cfg.run.threads = 1;
  pf::Trainer trainer(cfg);
  while (!trainer.done()) trainer.step();
  pf::save_checkpoint(dir + "/c.ckpt", trainer.checkpoint());
  const pf::Checkpoint c = pf::load_checkpoint(dir + "/c.ckpt");
  std::printf("consumer ok: step %lld, %lld parameters\n", static_cast<long long>(c.progress.step),
              static_cast<long long>(pf::make_model(c)->num_parameters()));
  return c.progress.step == 3 ? 0 : 1;
}
