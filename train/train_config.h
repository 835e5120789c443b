// TrainConfig: everything that defines a training run, as a composition of the typed configs of the
// layers that use the settings: DataConfig and TokenizerConfig (data/data_config.h), ModelConfig
// (performer/config.h), OptimizerConfig (nn/optimizer.h), ScheduleConfig (nn/schedule.h), and RunConfig
// and DistributedConfig below.
//
// Each setting is declared once, in its config's visit_fields: flag name (also the config-file and
// checkpoint key), type, default (the member's initializer), range, resume rule and help. Enumerated
// settings are enums with one name table each (base/enum_names.h). visit_fields() below walks all the
// lists, and every consumer walks it: the command line (train/cli.h), the config file
// (train/config_file.h), validation, the checkpoint's config (train/checkpoint.h), the resume
// comparison, --print-config; the safetensors metadata walks ModelConfig's list (train/interop.h), and a
// test checks train/USAGE.md against it. Adding a setting is one line in one list plus its use.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/gemm.h"
#include "base/fields.h"
#include "data/data_config.h"
#include "nn/optimizer.h"
#include "nn/schedule.h"
#include "performer/config.h"

namespace pf {

// The corpus performer-train uses when no --data is given (Debian package mmseqs2-examples).
inline constexpr const char* kDefaultCorpus = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz";
inline constexpr const char* kDefaultCorpusPackage = "mmseqs2-examples";

// The settings of a run that no lower layer owns: length and stopping, evaluation, checkpoints,
// logging, threads and precision. performer-train's defaults.
struct RunConfig {
  std::string preset;  // "" | tiny | small | b1 | b2 | b3 (performer/presets.h)
  std::string init_from;  // safetensors file whose weights start a fresh run ("" = random initialization)
  int64_t grad_accum = 1;
  double time_limit = 0.0;  // seconds of training wall time (all runs of this output), 0 = none
  uint64_t seed = 1;        // also the data's and the model's seed (TrainConfig::data_config, model_config)
  int64_t threads = 0;      // 0 = all cores
  std::optional<Precision> precision;  // how matrix products are computed; empty = auto (bf16 where supported)
  bool recompute_blocks = false;  // keep only half-block inputs; recompute them in the backward
  int64_t eval_every = 250;   // 0 = only at the end
  int64_t eval_batches = 40;  // 0 = the whole validation set
  int64_t save_every = 500;   // 0 = only at the end
  int64_t keep = 3;
  int64_t log_every = 10;
  int64_t sample_tokens = 120;
  int64_t max_nonfinite = 5;  // stop after this many non-finite steps in a row
  std::string out;            // output directory ("" = runs/<timestamp>, chosen by the CLI)

  template <class V>
  static void visit_fields(V&& v);
};

// The data-parallel job (train/distributed.h).
struct DistributedConfig {
  int64_t world_size = 1;  // ranks of the job (set from mpirun -np, recorded)

  template <class V>
  static void visit_fields(V&& v) {
    v(FieldSpec{"world-size",
                "ranks of the job: recorded, not a setting (performer-train sets it from mpirun -np; a value given is "
                "replaced)",
                OnResume::Free, Range{1, 1e9, false, false, "must be > 0"}},
      &DistributedConfig::world_size);
  }
};

// Everything that defines a training run, composed of the typed configs of the layers that use them.
// Each field is declared once, in its config's visit_fields (with its flag, help, resume rule and
// range); TrainConfig's visit_fields walks them all, and every consumer walks that: the command line
// (train/cli.h), the config file (train/config_file.h), validation, checkpoints (train/checkpoint.h),
// the resume comparison and --print-config. The safetensors metadata walks ModelConfig's list.
//
// Fields without a flag of their own are set from another setting by model_config() and data_config():
// model.vocab_size (the data's vocabulary), model.max_seq_len (= data.seq_len), model.causal (= data
// objective), model.seed and data.seed (= run.seed), data.threads (= run.threads).
struct TrainConfig {
  DataConfig data;  // data.tokenizer: TokenizerConfig
  ModelConfig model;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  RunConfig run;
  DistributedConfig distributed;

  TrainConfig() { data.train_files = {kDefaultCorpus}; }

  // Equal settings (the fields with flags; derived fields are not settings).
  bool operator==(const TrainConfig& o) const;

  // Throws std::invalid_argument naming the flag, its value and the rule, e.g.
  // "--heads 3: must divide --dim 128". Does not touch the file system (see check_files()).
  void validate() const;
  // Throws std::invalid_argument if a --data / --val-data / --init-from file is missing or unreadable;
  // for the default corpus the message names the Debian package to install.
  void check_files() const;

  // The library configs with their derived fields set.
  ModelConfig model_config(int64_t vocab_size) const;
  DataConfig data_config() const;
  const ScheduleConfig& schedule_config() const { return schedule; }
  // --precision resolved for this machine (auto -> bf16 where supported, else fp32).
  Precision matmul_precision() const;
  int64_t effective_warmup() const { return schedule.effective_warmup(); }
};

// What the composed list says about one field.
struct FieldInfo {
  const char* key;    // the flag without "--" (e.g. "seq-len"), also the config-file and checkpoint key
  const char* group;  // Data, Tokenizer, Model, Optimizer, Schedule, Run, Distributed (--help, config file)
  OnResume kind;
  const char* help;
  Range range;
  FieldSpec spec() const { return FieldSpec{key, help, kind, range}; }
};

inline const FieldSpec& spec_of(const FieldSpec& s) { return s; }
inline const FieldSpec& spec_of(const ModelField& f) { return f.spec; }

// Calls v(FieldInfo, get) for every field with a flag, in the order of the config file, where
// get(config) is the field of a (const or not) TrainConfig.
template <class V>
void visit_fields(V&& v) {
  auto each = [&](const char* group, auto part) {
    return [&v, group, part](const auto& spec, auto member) {
      const FieldSpec& s = spec_of(spec);
      if (!s.key) return;  // set from another field
      v(FieldInfo{s.key, group, s.resume, s.help, s.range}, [part, member](auto& c) -> auto& { return part(c).*member; });
    };
  };
  DataConfig::visit_fields(each("Data", [](auto& c) -> auto& { return c.data; }));
  TokenizerConfig::visit_fields(each("Tokenizer", [](auto& c) -> auto& { return c.data.tokenizer; }));
  ModelConfig::visit_fields(each("Model", [](auto& c) -> auto& { return c.model; }));
  OptimizerConfig::visit_fields(each("Optimizer", [](auto& c) -> auto& { return c.optimizer; }));
  ScheduleConfig::visit_fields(each("Schedule", [](auto& c) -> auto& { return c.schedule; }));
  RunConfig::visit_fields(each("Run", [](auto& c) -> auto& { return c.run; }));
  DistributedConfig::visit_fields(each("Distributed", [](auto& c) -> auto& { return c.distributed; }));
}

template <class V>
void RunConfig::visit_fields(V&& v) {
  using C = RunConfig;
  constexpr auto F = OnResume::Free;
  v(FieldSpec{"preset", "model and batch shape preset (tiny, small, b1, b2, b3); explicit flags override it"},
    &C::preset);
  v(FieldSpec{"init-from",
              "start a fresh run from the weights of this safetensors file (performer-export, or PyTorch) instead of "
              "a random initialization; the model flags must describe the same model"},
    &C::init_from);
  v(FieldSpec{"grad-accum", "micro-batches accumulated per optimizer step", F, kPositive}, &C::grad_accum);
  v(FieldSpec{"time-limit",
              "stop after this many seconds of training (all runs so far), with an evaluation and a checkpoint; 0 = no "
              "limit. The schedule still follows --steps",
              F, Range{0, 1e12, false, false, "must be a number of seconds >= 0 (0 = no limit)"}},
    &C::time_limit);
  v(FieldSpec{"seed", "seed of the model initialization, the data order and sampling", OnResume::Data, kSeed},
    &C::seed);
  v(FieldSpec{"threads", "worker threads (0 = all cores); resume is bit-exact only with the same count", F,
              Range{0, kMaxCount, false, false, "must be >= 0 (0 = all cores)"}},
    &C::threads);
  v(FieldSpec{"precision",
              "matrix products: fp32, bf16 (bf16 inputs, fp32 accumulation, fp32 weights and optimizer state; needs "
              "AVX512-BF16) or auto (the default: bf16 where the CPU has it, else fp32; QUALITY.md)"},
    &C::precision);
  v(FieldSpec{"recompute-blocks",
              "save memory: keep only each half-block's input in the forward and recompute the half-block in the "
              "backward (same results, 26-70% more time per step on the B2 benchmarks)"},
    &C::recompute_blocks);
  v(FieldSpec{"eval-every", "evaluate every N steps (0 = only at the end)", F, kNonNegative}, &C::eval_every);
  v(FieldSpec{"eval-batches", "validation batches per evaluation (0 = all)", F, kNonNegative}, &C::eval_batches);
  v(FieldSpec{"save-every", "checkpoint every N steps (0 = only at the end)", F, kNonNegative}, &C::save_every);
  v(FieldSpec{"keep", "how many periodic checkpoints to keep (best.ckpt is kept besides)", F, kPositive}, &C::keep);
  v(FieldSpec{"log-every", "write a metrics line (and a progress line when not on a terminal) every N steps", F,
              kPositive},
    &C::log_every);
  v(FieldSpec{"sample-tokens", "length of the sample generated at the end (0 = none)", F, kNonNegative},
    &C::sample_tokens);
  v(FieldSpec{"max-nonfinite", "stop after this many non-finite steps in a row", F, kPositive}, &C::max_nonfinite);
  v(FieldSpec{"out", "output directory (config, metrics.jsonl, checkpoints)"}, &C::out);
}

// The field called `key` ("seq-len"), or nullptr.
const FieldInfo* find_field(const std::string& key);
// The largest --threads accepted: 4 x the cores of this machine (more only oversubscribes them).
int64_t max_threads();

// The preset names and what each sets (keys as in visit_fields, values as on the command line).
const std::map<std::string, std::map<std::string, std::string>>& presets();
// Sets the preset's fields on c (throws std::invalid_argument naming --preset if unknown).
void apply_preset(TrainConfig& c, const std::string& preset);
// Sets one field from its text form, as the command line would: the text must be of the field's type,
// whole, and within its range (throws FieldValueError naming the flag and the text as given).
void set_field(TrainConfig& c, const std::string& key, const std::string& value);
// The text form of one field ("128", "favor", "a.txt b.txt" for lists).
std::string field_text(const TrainConfig& c, const std::string& key);

// Every field as key -> text (the form checkpoints store, so adding a flag keeps old checkpoints
// readable), and back: keys missing from the map keep their defaults, unknown keys throw.
std::map<std::string, std::string> config_to_map(const TrainConfig& c);
TrainConfig config_from_map(const std::map<std::string, std::string>& m);


}  // namespace pf
