// TrainConfig: everything that defines a training run, one field per performer-train flag.
//
// The field names are the flag names with '-' written '_' (--seq-len -> seq_len), and the same keys
// (with '-') are the keys of the config file (`performer-train --config run/config.toml`). The fields
// are listed once, in visit_fields(), and every consumer walks that list: the command line, the
// config-file writer, checkpoint serialization and the resume-conflict check. A new flag is one line
// there.
//
// A config turns into the lower layers' option structs with model_config(), data_config() and
// schedule_config(); validate() checks every field and names the flag in its message.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/gemm.h"
#include "data/data_module.h"
#include "nn/schedule.h"
#include "performer/config.h"

namespace pf {

// The corpus performer-train uses when no --data is given (Debian package mmseqs2-examples).
inline constexpr const char* kDefaultCorpus = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz";
inline constexpr const char* kDefaultCorpusPackage = "mmseqs2-examples";

// --warmup's default: adapt to --steps (TrainConfig::effective_warmup).
inline constexpr int64_t kAutoWarmup = -1;

struct TrainConfig {
  // ---- data
  std::vector<std::string> data{kDefaultCorpus};  // training corpus files
  std::vector<std::string> val_data;              // validation files (else --val-fraction of --data)
  double val_fraction = 0.05;
  std::string format = "auto";       // auto | text | fasta
  std::string objective = "causal";  // causal | mlm
  int64_t seq_len = 128;             // T
  int64_t batch_size = 16;           // B
  double mask_prob = 0.15;           // mlm only
  bool pack = false;                 // proteins: records end to end
  bool skip_bad_records = false;     // FASTA: skip malformed records
  std::string cache_dir;             // where .gz corpora are decompressed ("" = data/corpus_file.h rule)
  std::string tokenizer = "bytes";      // text: bytes | sentencepiece (data/tokenizer.h)
  std::string tokenizer_model;          // sentencepiece: an existing .model file
  int64_t vocab_size = 0;               // sentencepiece: pieces of the model trained on the training split
  std::string tokenizer_type = "bpe";   // sentencepiece training: bpe | unigram
  int64_t tokenizer_sample_bytes = int64_t{64} << 20;  // sentencepiece training: bytes of the seeded sample
  uint64_t tokenizer_sample_seed = 1;                  // sentencepiece training: seed of that sample
  // ---- model
  std::string preset;  // "" | tiny | small | b1 | b2 (performer/presets.h): defaults that explicit flags override
  int64_t dim = 128;
  int64_t depth = 2;
  int64_t heads = 4;
  int64_t ff_hidden = 512;
  int64_t features = 64;
  std::string attention = "favor-local";  // or favor, relu, softmax; favor-local is causal only (see cli.cpp)
  std::string positions = "learned";  // learned | sinusoidal | rotary
  int64_t redraw_every = 0;           // optimizer steps between projection redraws, 0 = never (QUALITY.md)
  bool antithetic_features = false;   // favor: random features in pairs (w, -w)
  bool orthogonal_features = true;    // favor, relu: orthogonal random features (false: iid Gaussian rows)
  bool shared_key_shift = false;      // favor: one running key stabilizer instead of one per key
  double kernel_eps = 1e-6;           // favor: feature floor
  int64_t chunk_size = 64;            // causal favor, relu: chunk length of the fused kernel
  int64_t local_window = 16;          // favor-local: recent keys scored exactly
  std::string feature_map = "favor+";  // favor, favor-local: favor+ | favor++
  double favorpp_z = 4.0;             // favor++: the |q' + k'|^2 its parameter A is optimal for
  int64_t short_conv = 0;             // short convolution of q, k, v: taps (0 = off)
  bool local_mix = false;             // favor-local: learned per-head far-field gain
  double dropout = 0.0;
  bool tie_embeddings = false;
  std::string init_from;  // safetensors file whose weights start a fresh run ("" = random initialization)
  // ---- optimizer
  std::string optimizer = "adamw";  // sgd | adam | adamw
  double lr = 2e-3;
  double beta1 = 0.9, beta2 = 0.99;  // adam, adamw
  double momentum = 0.9;             // sgd
  double weight_decay = 0.01;
  int64_t warmup = kAutoWarmup;      // kAutoWarmup (-1): min(50, steps / 10), see effective_warmup()
  std::string schedule = "cosine";  // constant | cosine | linear
  double min_lr_ratio = 0.1;
  double clip = 1.0;  // global gradient norm, 0 = off
  int64_t grad_accum = 1;
  // ---- run
  int64_t steps = 2500;
  double time_limit = 0.0;    // seconds of training wall time (all runs of this output), 0 = none
  uint64_t seed = 1;
  int64_t threads = 0;        // 0 = all cores
  std::string precision = "auto";  // fp32 | bf16 | auto: how matrix products are computed (autograd/gemm.h)
  bool recompute_blocks = false;  // keep only half-block inputs; recompute them in the backward
  int64_t eval_every = 250;   // 0 = only at the end
  int64_t eval_batches = 40;  // 0 = the whole validation set
  int64_t save_every = 500;   // 0 = only at the end
  int64_t keep = 3;
  int64_t log_every = 10;
  int64_t sample_tokens = 120;
  int64_t max_nonfinite = 5;  // stop after this many non-finite steps in a row
  std::string out;            // output directory ("" = runs/<timestamp>, chosen by the CLI)
  int64_t world_size = 1;     // ranks of the job (set from mpirun -np, recorded; train/distributed.h)

  bool operator==(const TrainConfig&) const = default;

  // Throws std::invalid_argument naming the flag, its value and the rule, e.g.
  // "--heads 3 must divide --dim 128". Does not touch the file system (see check_files()).
  void validate() const;
  // Throws std::invalid_argument if a --data / --val-data / --init-from file is missing or unreadable;
  // for the default corpus the message names the Debian package to install.
  void check_files() const;

  ModelConfig model_config(int64_t vocab_size) const;  // max_seq_len = seq_len, causal = objective
  DataConfig data_config() const;
  ScheduleConfig schedule_config() const;
  // --precision resolved for this machine ("auto" -> bf16 where supported, else fp32).
  Precision matmul_precision() const;

  // The warm-up the run uses: --warmup when given (>= 0), else min(50, steps / 10), so that a short
  // run (--steps 2, --steps 40) gets a proportionate warm-up instead of an error.
  int64_t effective_warmup() const;
};

// How a flag is treated when a run is resumed from a checkpoint.
enum class FlagKind {
  Model,  // shape or meaning of the parameters: must match the checkpoint
  Data,   // the data stream (files, batching, seed): must match, or the cursor means nothing
  Free,   // may change on resume (steps, lr, evaluation, output ...)
};

// What the flag list says about one field.
struct FieldInfo {
  const char* key;    // the flag without "--" (e.g. "seq-len"), also the config-file key
  const char* group;  // Data, Model, Optimizer or Run (--help and the config file)
  FlagKind kind;
  const char* help;
};

// Calls v(FieldInfo, member pointer) for every field, in the order of the config file. Member types:
// std::vector<std::string>, std::string, int64_t, uint64_t, double, bool.
template <class V>
void visit_fields(V&& v) {
  using C = TrainConfig;
  using K = FlagKind;
  const char* group = "Data";
  auto f = [&](const char* key, auto member, FlagKind kind, const char* help) {
    v(FieldInfo{key, group, kind, help}, member);
  };
  // data and val-data may change on resume (a moved corpus): the data cursor checks the content.
  f("data", &C::data, K::Free,
    "training corpus files (text or FASTA, optionally .gz; prepared once into the cache, see --cache-dir), or one "
    "dataset directory written by performer-prepare");
  f("val-data", &C::val_data, K::Free, "validation files (default: --val-fraction of --data)");
  f("val-fraction", &C::val_fraction, K::Data, "share of --data held out for validation, in [0, 1)");
  f("format", &C::format, K::Data, "corpus format: auto, text or fasta");
  f("objective", &C::objective, K::Model, "causal (next token) or mlm (masked tokens, bidirectional model)");
  f("seq-len", &C::seq_len, K::Model, "tokens per training row (T); also the model's context for learned positions");
  f("batch-size", &C::batch_size, K::Data, "rows per batch (B)");
  f("mask-prob", &C::mask_prob, K::Data, "mlm: probability that a token is selected for prediction");
  f("pack", &C::pack, K::Data, "proteins: pack records end to end instead of one per row");
  f("skip-bad-records", &C::skip_bad_records, K::Data, "FASTA: skip malformed records instead of failing");
  f("cache-dir", &C::cache_dir, K::Free,
    "where corpora are prepared once (token shards under datasets/) and .gz files decompressed (default: "
    "$XDG_CACHE_HOME/performer-cpp, else ~/.cache/performer-cpp, else $TMPDIR)");
  f("tokenizer", &C::tokenizer, K::Model,
    "text tokenizer: bytes (256 byte tokens) or sentencepiece (subwords: --tokenizer-model FILE, or --vocab-size N "
    "to train one on the training split)");
  // Compared by content on resume (the checkpoint embeds the model), so a moved file may be given.
  f("tokenizer-model", &C::tokenizer_model, K::Free,
    "sentencepiece: an existing SentencePiece .model file (on resume it must be the checkpoint's own tokenizer)");
  f("vocab-size", &C::vocab_size, K::Model,
    "sentencepiece: train a model of this many pieces on the training split (0 = take --tokenizer-model's)");
  f("tokenizer-type", &C::tokenizer_type, K::Model, "sentencepiece training: bpe or unigram");
  f("tokenizer-sample-bytes", &C::tokenizer_sample_bytes, K::Model,
    "sentencepiece training: the model is trained on a sample of this many bytes of the training split (whole "
    "lines from evenly spread blocks; all of it when smaller), at least 1048576");
  f("tokenizer-sample-seed", &C::tokenizer_sample_seed, K::Model, "sentencepiece training: the seed of that sample");
  group = "Model";
  f("preset", &C::preset, K::Free, "model and batch shape preset (tiny, small, b1, b2); explicit flags override it");
  f("dim", &C::dim, K::Model, "model width (C)");
  f("depth", &C::depth, K::Model, "number of blocks (L)");
  f("heads", &C::heads, K::Model, "attention heads (H); must divide --dim");
  f("ff-hidden", &C::ff_hidden, K::Model, "feed-forward width");
  f("features", &C::features, K::Model, "random features per head (M) for favor and relu");
  f("attention", &C::attention, K::Model,
    "favor-local (exact softmax over the last --local-window keys, FAVOR+ before them; both sides with mlm), favor "
    "(FAVOR+ softmax kernel), relu (generalized) or softmax (exact); the default is favor-local, and favor with "
    "--objective mlm");
  f("positions", &C::positions, K::Model, "learned, sinusoidal or rotary");
  f("redraw-every", &C::redraw_every, K::Free, "optimizer steps between random-feature redraws (0 = never)");
  f("antithetic-features", &C::antithetic_features, K::Model,
    "draw the random features in antithetic pairs (w, -w): the paper's hyperbolic estimator, lower variance at "
    "the same --features (even)");
  f("orthogonal-features", &C::orthogonal_features, K::Model,
    "draw each head's random features as orthogonal blocks (false: independent Gaussian rows)");
  f("shared-key-shift", &C::shared_key_shift, K::Model,
    "favor: stabilize keys by one running maximum instead of each key's own (an ablation; QUALITY.md)");
  f("kernel-eps", &C::kernel_eps, K::Model, "favor: floor added to every positive feature, >= 0");
  f("chunk-size", &C::chunk_size, K::Model,
    "causal favor and relu: positions per chunk of the fused kernel (speed only; the result does not depend on it "
    "beyond rounding)");
  f("local-window", &C::local_window, K::Model,
    "favor-local: the number of most recent keys (the query's own included) scored exactly");
  f("feature-map", &C::feature_map, K::Model,
    "random features of favor and favor-local: favor+ (positive) or favor++ (optimal positive, lower variance)");
  f("favorpp-z", &C::favorpp_z, K::Model,
    "favor++: the mean |q' + k'|^2 (q' = q D^-1/4) its parameter A is chosen for; 0 = FAVOR+");
  f("short-conv", &C::short_conv, K::Model,
    "depthwise convolution of q, k and v along time with this many taps (0 = off; centered with mlm)");
  f("local-mix", &C::local_mix, K::Model, "favor-local: learn a per-head gain of the far field (LoLCATs-style mixing)");
  f("dropout", &C::dropout, K::Free, "dropout probability in [0, 1)");
  f("tie-embeddings", &C::tie_embeddings, K::Model, "share the token embedding with the output head");
  f("init-from", &C::init_from, K::Free,
    "start a fresh run from the weights of this safetensors file (performer-export, or PyTorch) instead of a random "
    "initialization; the model flags must describe the same model");
  group = "Optimizer";
  f("optimizer", &C::optimizer, K::Model, "sgd, adam or adamw");
  f("lr", &C::lr, K::Free, "peak learning rate");
  f("beta1", &C::beta1, K::Free, "adam, adamw: first-moment decay");
  f("beta2", &C::beta2, K::Free, "adam, adamw: second-moment decay");
  f("momentum", &C::momentum, K::Free, "sgd: momentum");
  f("weight-decay", &C::weight_decay, K::Free, "weight decay (decoupled for adamw; not on biases, norms, embeddings)");
  f("warmup", &C::warmup, K::Free,
    "linear warm-up steps; -1 (the default) = min(50, --steps / 10). An explicit value must not exceed --steps");
  f("schedule", &C::schedule, K::Free, "learning-rate schedule after warm-up: constant, cosine or linear");
  f("min-lr-ratio", &C::min_lr_ratio, K::Free, "final learning rate as a fraction of --lr (cosine, linear)");
  f("clip", &C::clip, K::Free, "clip the global gradient norm to this value (0 = off)");
  f("grad-accum", &C::grad_accum, K::Free, "micro-batches accumulated per optimizer step");
  group = "Run";
  f("steps", &C::steps, K::Free, "optimizer steps in the whole run (also the schedule length)");
  f("time-limit", &C::time_limit, K::Free,
    "stop after this many seconds of training (all runs so far), with an evaluation and a checkpoint; "
    "0 = no limit. The schedule still follows --steps");
  f("seed", &C::seed, K::Data, "seed of the model initialization, the data order and sampling");
  f("threads", &C::threads, K::Free, "worker threads (0 = all cores); resume is bit-exact only with the same count");
  f("precision", &C::precision, K::Free,
    "matrix products: fp32, bf16 (bf16 inputs, fp32 accumulation, fp32 weights and optimizer state; needs "
    "AVX512-BF16) or auto (the default: bf16 where the CPU has it, else fp32; QUALITY.md)");
  f("recompute-blocks", &C::recompute_blocks, K::Free,
    "save memory: keep only each half-block's input in the forward and recompute the half-block in the "
    "backward (same results, 26-70% more time per step on the B2 benchmarks)");
  f("eval-every", &C::eval_every, K::Free, "evaluate every N steps (0 = only at the end)");
  f("eval-batches", &C::eval_batches, K::Free, "validation batches per evaluation (0 = all)");
  f("save-every", &C::save_every, K::Free, "checkpoint every N steps (0 = only at the end)");
  f("keep", &C::keep, K::Free, "how many periodic checkpoints to keep (best.ckpt is kept besides)");
  f("log-every", &C::log_every, K::Free,
    "write a metrics line (and a progress line when not on a terminal) every N steps");
  f("sample-tokens", &C::sample_tokens, K::Free, "length of the sample generated at the end (0 = none)");
  f("max-nonfinite", &C::max_nonfinite, K::Free, "stop after this many non-finite steps in a row");
  f("out", &C::out, K::Free, "output directory (config, metrics.jsonl, checkpoints)");
  f("world-size", &C::world_size, K::Free,
    "ranks of the job: recorded, not a setting (performer-train sets it from mpirun -np; a value given is replaced)");
}

// The TrainConfig fields that are DataConfig fields, one list for both directions:
// TrainConfig::data_config() copies them one way and config_from() (train/checkpoint.h) the other,
// so that no field can be dropped in one direction only.
// Calls v(train member, data member) for every field of the same type in both, then the two fields
// whose types differ (format: text and enum; threads: int64_t and int) with their conversions.
template <class V>
void visit_data_fields(V&& v) {
  using T = TrainConfig;
  using D = DataConfig;
  v(&T::data, &D::train_files);
  v(&T::val_data, &D::val_files);
  v(&T::val_fraction, &D::val_fraction);
  v(&T::objective, &D::objective);
  v(&T::seq_len, &D::seq_len);
  v(&T::batch_size, &D::batch_size);
  v(&T::pack, &D::pack);
  v(&T::skip_bad_records, &D::skip_bad_records);
  v(&T::mask_prob, &D::mask_prob);
  v(&T::seed, &D::seed);
  v(&T::cache_dir, &D::cache_dir);
  v(&T::tokenizer, &D::tokenizer);
  v(&T::tokenizer_model, &D::tokenizer_model);
  v(&T::vocab_size, &D::vocab_size);
  v(&T::tokenizer_type, &D::tokenizer_type);
  v(&T::tokenizer_sample_bytes, &D::tokenizer_sample_bytes);
  v(&T::tokenizer_sample_seed, &D::tokenizer_sample_seed);
}

DataConfig to_data_config(const TrainConfig& t);
void from_data_config(const DataConfig& d, TrainConfig& t);
// The numeric rules, next to the field list: every int64_t, uint64_t and double field has one, and
// every value given for it (flag, config file, checkpoint) is checked against it as it is read
// (set_field) and again by validate(). `rule` is the message for a value outside [lo, hi] (lo_open /
// hi_open: the bound itself is outside). Sizes are bounded far above what fits (the memory estimate,
// train/memory_estimate.h, refuses what does not fit); the bounds keep arithmetic exact. --threads is
// also bounded by the machine (max_threads()).
struct NumericRule {
  const char* key;
  double lo, hi;
  bool lo_open, hi_open;
  const char* rule;
};
inline constexpr double kMaxCount = 1e15;
inline constexpr double kMaxFloat = 3.4028234663852886e38;  // lr, weight decay, clip travel as float
inline constexpr double kMaxSeed = 9223372036854775807.0;  // a TOML integer (signed 64 bits)
inline constexpr NumericRule kNumericRules[] = {
    {"val-fraction", 0, 1, false, true, "must be in [0, 1)"},
    {"seq-len", 1, kMaxCount, false, false, "must be > 0"},
    {"batch-size", 1, kMaxCount, false, false, "must be > 0"},
    {"mask-prob", 0, 1, true, false, "must be in (0, 1]"},
    {"vocab-size", 0, 2147483647, false, false, "must be >= 0 and fit a 32-bit token id"},
    {"tokenizer-sample-bytes", 1048576, kMaxCount, false, false, "must be at least 1048576 (1 MiB)"},
    {"tokenizer-sample-seed", 0, kMaxSeed, false, false, "must be in [0, 9223372036854775807]"},
    {"dim", 1, kMaxCount, false, false, "must be > 0"},
    {"depth", 1, kMaxCount, false, false, "must be > 0"},
    {"heads", 1, kMaxCount, false, false, "must be > 0"},
    {"ff-hidden", 1, kMaxCount, false, false, "must be > 0"},
    {"features", 1, kMaxCount, false, false, "must be > 0"},
    {"redraw-every", 0, kMaxCount, false, false, "must be >= 0 (0 = never)"},
    {"kernel-eps", 0, kMaxFloat, false, false, "must be finite and >= 0"},
    {"chunk-size", 1, kMaxCount, false, false, "must be > 0"},
    {"local-window", 1, kMaxCount, false, false, "must be > 0"},
    {"favorpp-z", 0, 1e6, false, false, "must be in [0, 1000000]"},
    {"short-conv", 0, 64, false, false, "must be in [0, 64]"},
    {"dropout", 0, 1, false, true, "must be in [0, 1)"},
    {"lr", 0, kMaxFloat, true, false, "must be finite and > 0 (a float: at most 3.4e38)"},
    {"beta1", 0, 1, false, true, "must be in [0, 1)"},
    {"beta2", 0, 1, false, true, "must be in [0, 1)"},
    {"momentum", 0, 1, false, true, "must be in [0, 1)"},
    {"weight-decay", 0, kMaxFloat, false, false, "must be >= 0 (a float: at most 3.4e38)"},
    {"warmup", -1, kMaxCount, false, false, "must be >= 0 (or -1: min(50, --steps / 10))"},
    {"min-lr-ratio", 0, 1, false, false, "must be in [0, 1]"},
    {"clip", 0, kMaxFloat, false, false, "must be >= 0 (0 = off; a float: at most 3.4e38)"},
    {"grad-accum", 1, kMaxCount, false, false, "must be > 0"},
    {"steps", 1, kMaxCount, false, false, "must be > 0"},
    {"time-limit", 0, 1e12, false, false, "must be a number of seconds >= 0 (0 = no limit)"},
    {"seed", 0, kMaxSeed, false, false, "must be in [0, 9223372036854775807]"},
    {"threads", 0, kMaxCount, false, false, "must be >= 0 (0 = all cores)"},
    {"eval-every", 0, kMaxCount, false, false, "must be >= 0"},
    {"eval-batches", 0, kMaxCount, false, false, "must be >= 0"},
    {"save-every", 0, kMaxCount, false, false, "must be >= 0"},
    {"keep", 1, kMaxCount, false, false, "must be > 0"},
    {"log-every", 1, kMaxCount, false, false, "must be > 0"},
    {"sample-tokens", 0, kMaxCount, false, false, "must be >= 0"},
    {"max-nonfinite", 1, kMaxCount, false, false, "must be > 0"},
    {"world-size", 1, 1e9, false, false, "must be > 0"},
};
// The rule of a numeric field (nullptr for other keys).
const NumericRule* numeric_rule(const std::string& key);
// Whether v satisfies the rule (NaN never does).
bool within(const NumericRule& r, double v);
// The smallest --vocab-size SentencePiece trains here: 256 byte pieces (byte fallback) + <unk>, <s>, </s>.
inline constexpr int64_t kMinSentencePieceVocab = 260;
// The largest --threads accepted: 4 x the cores of this machine (more only oversubscribes them).
int64_t max_threads();

// A value that cannot be read or breaks its field's rule, as written: what() is "--key text: rule".
class FieldValueError : public std::invalid_argument {
 public:
  FieldValueError(const std::string& key, const std::string& text, const std::string& rule)
      : std::invalid_argument("--" + key + " " + text + ": " + rule), key(key), text(text), rule(rule) {}
  std::string key, text, rule;
};

// The preset names and what each sets (keys as in visit_fields, values as on the command line).
const std::map<std::string, std::map<std::string, std::string>>& presets();
// Sets the preset's fields on c (throws std::invalid_argument naming --preset if unknown).
void apply_preset(TrainConfig& c, const std::string& preset);
// Sets one field from its text form, as the command line would: the text must be of the field's type,
// whole, and within its NumericRule (throws FieldValueError naming the flag and the text as given).
void set_field(TrainConfig& c, const std::string& key, const std::string& value);
// The text form of one field ("128", "favor", "a.txt b.txt" for lists).
std::string field_text(const TrainConfig& c, const std::string& key);

// Every field as key -> text (the form checkpoints store, so adding a flag keeps old checkpoints
// readable), and back: keys missing from the map keep their defaults, unknown keys throw.
std::map<std::string, std::string> config_to_map(const TrainConfig& c);
TrainConfig config_from_map(const std::map<std::string, std::string>& m);


}  // namespace pf
