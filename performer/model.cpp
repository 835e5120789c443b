#include "performer/model.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "autograd/ops.h"
#include "autograd/recompute.h"

namespace pf {

namespace {

const ModelConfig& validated(const ModelConfig& cfg) {
  cfg.validate();
  return cfg;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void fill_normal(Tensor& t, float stddev, Generator& gen) {
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal(0.0f, stddev);
}

}  // namespace

// ------------------------------------------------------------------ block

PerformerBlock::PerformerBlock(const ModelConfig& cfg, Generator& init_gen, Generator& proj_gen,
                               std::shared_ptr<Generator> dropout_gen) {
  ln1_ = register_module("ln1", std::make_shared<LayerNorm>(cfg.dim));
  attn_ = register_module("attn", std::make_shared<PerformerAttention>(cfg, init_gen, proj_gen));
  drop_ = register_module("drop", std::make_shared<Dropout>(cfg.dropout, dropout_gen));
  ln2_ = register_module("ln2", std::make_shared<LayerNorm>(cfg.dim));
  ff_ =
      register_module("ff", std::make_shared<FeedForward>(cfg.dim, cfg.ff_hidden, cfg.dropout, init_gen, dropout_gen));
}

Var PerformerBlock::attention_half(const Var& x, const RotaryTables* rotary, const Tensor* key_mask) const {
  return add(x, drop_->forward(attn_->forward(ln1_->forward(x), rotary, key_mask)));  // (B,T,C)
}

Var PerformerBlock::feed_forward_half(const Var& h) const {
  return add(h, ff_->forward(ln2_->forward(h)));  // (B,T,C)
}

Var PerformerBlock::forward(const Var& x, const RotaryTables* rotary, const Tensor* key_mask) const {
  return feed_forward_half(attention_half(x, rotary, key_mask));
}

// ------------------------------------------------------------------ model

PerformerLM::PerformerLM(const ModelConfig& cfg) : cfg_(validated(cfg)) {
  Generator gen(cfg_.seed);
  proj_gen_.seed(gen.fork_seed());
  dropout_gen_ = std::make_shared<Generator>(gen.fork_seed());

  tok_emb_ = register_module("tok_emb", std::make_shared<Embedding>(cfg_.vocab_size, cfg_.dim, gen));
  if (cfg_.positions == PositionKind::Learned)
    pos_emb_ = register_module("pos_emb", std::make_shared<Embedding>(cfg_.max_seq_len, cfg_.dim, gen));
  emb_drop_ = register_module("emb_drop", std::make_shared<Dropout>(cfg_.dropout, dropout_gen_));
  blocks_ = register_module("blocks", std::make_shared<ModuleList<PerformerBlock>>());
  for (int64_t l = 0; l < cfg_.depth; ++l)
    blocks_->push_back(std::make_shared<PerformerBlock>(cfg_, gen, proj_gen_, dropout_gen_));
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(cfg_.dim));
  if (!cfg_.tie_embeddings)
    head_ = register_module("head", std::make_shared<Linear>(cfg_.dim, cfg_.vocab_size, true, gen));
  if (cfg_.attention != AttentionKind::Softmax) draw_count_ = 1;

  // GPT-2 initialization over whatever the layers did by default (see model.h): every matrix
  // N(0, 0.02), every bias 0 (LayerNorm gains, 1-D "weight", stay 1); then the two matrices of each
  // block that write into the residual stream are scaled by 1/sqrt(2 L).
  for (auto& [name, p] : named_parameters()) {
    if (ends_with(name, ".attn.projection")) continue;  // a learned projection starts from its random draw
    if (p.dim() == 2) {
      fill_normal(p.value(), 0.02f, gen);
    } else if (ends_with(name, ".bias")) {
      p.value().zero();
    }
  }
  const float residual_scale = 1.0f / std::sqrt(2.0f * static_cast<float>(cfg_.depth));
  for (auto& block : *blocks_) {
    block->attn().out_proj().weight.value().vec() *= residual_scale;
    block->ff().fc2->weight.value().vec() *= residual_scale;
  }
}

Var PerformerLM::embed(const std::vector<int32_t>& ids, int64_t batch, int64_t seq, int64_t start) const {
  if (batch <= 0 || seq <= 0 || static_cast<int64_t>(ids.size()) != batch * seq)
    throw std::invalid_argument("PerformerLM: " + std::to_string(ids.size()) + " ids for batch " +
                                std::to_string(batch) + " x seq " + std::to_string(seq) +
                                " (need batch, seq > 0 and batch * seq ids)");
  if (cfg_.positions == PositionKind::Learned && start + seq > cfg_.max_seq_len)
    throw std::invalid_argument("PerformerLM: positions up to " + std::to_string(start + seq) +
                                " exceed max_seq_len (" + std::to_string(cfg_.max_seq_len) +
                                ") of the learned position table; use a longer max_seq_len or shorter sequences");
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      throw std::out_of_range("PerformerLM: token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                              " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) + ")");
  Var x = tok_emb_->forward(ids, {batch, seq});  // (B,T,C)
  if (cfg_.positions == PositionKind::Learned) {
    std::vector<int32_t> pos(static_cast<size_t>(seq));
    for (int64_t t = 0; t < seq; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(start + t);
    x = add(x, pos_emb_->forward(pos, {seq}));  // (T,C) broadcast over B
  } else if (cfg_.positions == PositionKind::Sinusoidal) {
    x = add(mul_scalar(x, std::sqrt(static_cast<float>(cfg_.dim))),
            constant(sinusoidal_positions(start, seq, cfg_.dim)));  // (T,C) broadcast over B
  }
  return emb_drop_->forward(x);
}

Var PerformerLM::head(const Var& x) const {
  Var h = ln_f_->forward(x);                                                 // (B,T,C)
  if (cfg_.tie_embeddings) return matmul(h, tok_emb_->weight, false, true);  // (B,T,C) x (V,C)^T -> (B,T,V)
  return head_->forward(h);                                                  // (B,T,V)
}

namespace {

// The (B,T) float key mask (1 = real, 0 = pad) a bidirectional model's attention reads; undefined
// when there is none, and for causal models, which need none (checked here).
Tensor attention_mask(const ModelConfig& cfg, const std::vector<uint8_t>* key_mask, int64_t batch, int64_t seq) {
  Tensor mask;
  if (key_mask) {
    if (static_cast<int64_t>(key_mask->size()) != batch * seq)
      throw std::invalid_argument("PerformerLM: key_mask has " + std::to_string(key_mask->size()) +
                                  " entries for batch " + std::to_string(batch) + " x seq " + std::to_string(seq));
    if (cfg.causal) {
      // Causal attention never lets a position see a later one, so padding after the real tokens
      // (right padding) is invisible to them and the mask is not needed. Padding before a real token
      // (left padding) would be attended to: refused rather than silently used.
      for (int64_t r = 0; r < batch; ++r) {
        const uint8_t* row = key_mask->data() + r * seq;
        for (int64_t t = 1; t < seq; ++t)
          if (row[t] && !row[t - 1])
            throw std::invalid_argument(
                "PerformerLM: key_mask row " + std::to_string(r) + " has a real token at position " +
                std::to_string(t) + " after padding at position " + std::to_string(t - 1) +
                "; a causal model supports only padding after the real tokens (right padding), which no real "
                "position attends to. Left padding would be attended to: pad on the right instead.");
      }
    } else {
      mask = Tensor({batch, seq});
      for (int64_t i = 0; i < batch * seq; ++i) mask.data()[i] = (*key_mask)[static_cast<size_t>(i)] ? 1.0f : 0.0f;
    }
  }
  return mask;
}

}  // namespace

Var PerformerLM::forward(const std::vector<int32_t>& ids, int64_t batch, int64_t seq,
                         const std::vector<uint8_t>* key_mask) {
  Var x = embed(ids, batch, seq, 0);  // (B,T,C)
  RotaryTables rotary;
  if (cfg_.positions == PositionKind::Rotary) rotary = rotary_tables(0, seq, cfg_.head_dim());
  const Tensor mask = attention_mask(cfg_, key_mask, batch, seq);
  const RotaryTables* rot = cfg_.positions == PositionKind::Rotary ? &rotary : nullptr;
  const Tensor* m = mask.defined() ? &mask : nullptr;
  if (!recompute_blocks_ || !grad_enabled()) {
    for (auto& block : *blocks_) x = block->forward(x, rot, m);
    return head(x);  // (B,T,V)
  }
  // Recomputed blocks: the backward runs each half of each block (attention, feed-forward) again,
  // after this forward has returned, so only the halves' inputs are kept and the backward holds
  // the activations of one half at a time. The closures own what a half reads (rotary tables,
  // mask); recompute_replaying replays the half's dropout masks.
  auto tables = std::make_shared<const RotaryTables>(std::move(rotary));
  const bool has_rot = rot != nullptr;
  const std::shared_ptr<Generator> gen = cfg_.dropout > 0.0f ? dropout_gen_ : nullptr;
  for (auto& block : *blocks_) {
    const PerformerBlock* b = block.get();
    x = recompute_replaying(x, gen, [b, tables, has_rot, mask](const Var& in) {
      return b->attention_half(in, has_rot ? tables.get() : nullptr, mask.defined() ? &mask : nullptr);
    });
    x = recompute_replaying(x, gen, [b](const Var& in) { return b->feed_forward_half(in); });
  }
  return head(x);  // (B,T,V)
}

// ------------------------------------------------------------------ projections and generators

void PerformerLM::redraw_projections() {
  if (cfg_.attention == AttentionKind::Softmax) return;
  for (auto& block : *blocks_) block->attn().redraw(proj_gen_);
  ++draw_count_;
}

bool PerformerLM::maybe_redraw(int64_t optimizer_step) {
  if (cfg_.attention == AttentionKind::Softmax || cfg_.redraw_every <= 0 || optimizer_step <= 0 ||
      optimizer_step % cfg_.redraw_every != 0)
    return false;
  redraw_projections();
  return true;
}

// Format: "pf-model-rng 1\n<draw_count>\n<length> <projection state>\n<length> <dropout state>\n".
std::string PerformerLM::rng_state() const {
  std::ostringstream os;
  const std::string proj = proj_gen_.state(), drop = dropout_gen_->state();
  os << "pf-model-rng 1\n"
     << draw_count_ << "\n"
     << proj.size() << " " << proj << "\n"
     << drop.size() << " " << drop << "\n";
  return os.str();
}

void PerformerLM::set_rng_state(const std::string& s) {
  std::istringstream is(s);
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("PerformerLM::set_rng_state: " + what +
                                " (expected the string written by rng_state(); the model is unchanged)");
  };
  std::string magic;
  int version = 0;
  int64_t count = -1;
  is >> magic >> version >> count;
  if (!is || magic != "pf-model-rng") fail("not a model rng state");
  if (version != 1) fail("unsupported version " + std::to_string(version));
  if (count < 0) fail("bad draw count");
  auto read_state = [&](const char* which) {
    size_t n = 0;
    is >> n;
    if (!is || is.get() != ' ') fail(std::string("bad ") + which + " generator length");
    std::string st(n, '\0');
    if (!is.read(st.data(), static_cast<std::streamsize>(n))) fail(std::string("truncated ") + which + " state");
    return st;
  };
  const std::string proj = read_state("projection"), drop = read_state("dropout");
  // Parse into temporaries first so a malformed state leaves the model unchanged.
  Generator p, d;
  try {
    p.set_state(proj);
    d.set_state(drop);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  proj_gen_ = p;
  *dropout_gen_ = d;
  draw_count_ = count;
}

}  // namespace pf
