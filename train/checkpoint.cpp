#include "train/checkpoint.h"


#include <zlib.h>

#include <cereal/archives/binary.hpp>
#include <cereal/types/common.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstring>
#include <sstream>
#include <type_traits>

#include "autograd/serialize.h"
#include "base/file_header.h"
#include "base/format.h"
#include "base/atomic_file.h"

namespace pf {

namespace {

uint32_t crc32_of(const char* data, size_t n) {
  return static_cast<uint32_t>(::crc32_z(0L, reinterpret_cast<const Bytef*>(data), n));
}

// Bytes of the header as write_file_header lays them out (magic, kind length + kind, version).
size_t header_size() {
  return 8 + 8 + std::strlen(kCheckpointKind) + 4;
}
constexpr size_t kFrameSize = 8 + 4;

// An istream over bytes already in memory (no copy of a possibly large payload).
class MemoryBuffer : public std::streambuf {
 public:
  MemoryBuffer(const char* data, size_t size) {
    char* p = const_cast<char*>(data);  // read-only use: the get area is never written
    setg(p, p, p + size);
  }
};

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw CheckpointError(source + ": " + what);
}

std::string describe_shape(const ModelConfig& m) {
  return "dim " + std::to_string(m.dim) + ", depth " + std::to_string(m.depth) + ", heads " + std::to_string(m.heads) +
         ", ff-hidden " + std::to_string(m.ff_hidden) + ", features " + std::to_string(m.features) + ", attention " +
         to_string(m.attention) + ", vocab " + std::to_string(m.vocab_size);
}

}  // namespace

std::string serialize_checkpoint(const Checkpoint& c) {
  std::ostringstream payload_stream;
  {
    cereal::BinaryOutputArchive ar(payload_stream);
    ar(config_to_map(c.config), c.model_config, c.vocab, c.model_state, c.model_rng, c.optimizer_state, c.progress,
       c.trainer_rng, c.data_cursor);
    if (!c.rank_model_rngs.empty()) ar(c.rank_model_rngs);
  }
  const std::string payload = std::move(payload_stream).str();
  std::ostringstream out;
  {
    cereal::BinaryOutputArchive ar(out);
    write_file_header(ar, kCheckpointKind, kCheckpointVersion);
    ar(static_cast<uint64_t>(payload.size()), crc32_of(payload.data(), payload.size()));
  }
  out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  return std::move(out).str();
}

Checkpoint parse_checkpoint(const std::string& bytes, const std::string& source) {
  MemoryBuffer buffer(bytes.data(), bytes.size());
  std::istream in(&buffer);
  uint64_t payload_size = 0;
  uint32_t crc = 0;
  {
    cereal::BinaryInputArchive ar(in);
    try {
      read_file_header(ar, kCheckpointKind, kCheckpointVersion, source);
    } catch (const std::runtime_error& e) {
      throw CheckpointError(e.what());
    }
    if (bytes.size() < header_size() + kFrameSize)
      fail(source, "truncated checkpoint (" + std::to_string(bytes.size()) + " bytes, shorter than its frame)");
    ar(payload_size, crc);
  }
  const size_t have = bytes.size() - header_size() - kFrameSize;
  if (payload_size > have)
    fail(source, "truncated checkpoint: the payload should be " + std::to_string(payload_size) + " bytes but only " +
                     std::to_string(have) + " are present (an interrupted copy?); use an earlier checkpoint");
  if (payload_size < have)
    fail(source, "corrupt checkpoint: " + std::to_string(have - payload_size) + " unexpected bytes after the payload");
  const char* payload = bytes.data() + header_size() + kFrameSize;
  const uint32_t actual = crc32_of(payload, have);
  if (actual != crc)
    fail(source, "corrupt checkpoint: CRC-32 checksum mismatch (stored " + std::to_string(crc) + ", computed " +
                     std::to_string(actual) +
                     "); the file was damaged after it was written; use an earlier checkpoint");

  Checkpoint c;
  try {
    MemoryBuffer payload_buffer(payload, have);
    std::istream pin(&payload_buffer);
    cereal::BinaryInputArchive ar(pin);
    std::map<std::string, std::string> config;
    ar(config, c.model_config, c.vocab, c.model_state, c.model_rng, c.optimizer_state, c.progress, c.trainer_rng,
       c.data_cursor);
    if (pin.peek() != std::char_traits<char>::eof()) ar(c.rank_model_rngs);  // data-parallel runs
    c.config = config_from_map(config);
  } catch (const std::exception& e) {
    fail(source, std::string("corrupt checkpoint payload (") + e.what() + ")");
  }
  try {
    c.model_config.validate();
  } catch (const std::exception& e) {
    fail(source, std::string("checkpoint holds an invalid model config: ") + e.what());
  }
  if (c.model_config.vocab_size != c.vocab.size())
    fail(source, "checkpoint model has vocab_size " + std::to_string(c.model_config.vocab_size) +
                     " but its vocabulary '" + c.vocab.name() + "' has " + std::to_string(c.vocab.size()) + " tokens");
  return c;
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  write_file_atomic(path, serialize_checkpoint(c));
}

Checkpoint load_checkpoint(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const std::exception& e) {
    throw CheckpointError(e.what());
  }
  return parse_checkpoint(bytes, path);
}

std::string optimizer_state_bytes(const Optimizer& optimizer) {
  std::ostringstream out;
  {
    cereal::BinaryOutputArchive ar(out);
    ar(optimizer);
  }
  return std::move(out).str();
}

void load_optimizer_state_bytes(Optimizer& optimizer, const std::string& bytes) {
  std::istringstream in(bytes);
  cereal::BinaryInputArchive ar(in);
  ar(optimizer);
}

TrainConfig config_from(const ModelConfig& model, const DataConfig& data, const Optimizer* optimizer) {
  TrainConfig c;
  c.model = model;  // every model setting (the derived ones follow the data, as in a performer-train run)
  c.data = data;    // every data and tokenizer setting
  c.run.seed = data.seed;
  c.run.threads = data.threads;
  if (optimizer) {
    c.optimizer.kind = parse_enum<OptimizerKind>(optimizer->kind(), "optimizer");
    c.schedule.lr = optimizer->lr();
  }
  return c;
}

Checkpoint make_checkpoint(const PerformerLM& model, const Optimizer& optimizer, const DataModule& data,
                           const TrainProgress& progress, const TrainConfig* config, const Generator* trainer_rng) {
  Checkpoint c;
  c.config = config ? *config : config_from(model.config(), data.config(), &optimizer);
  c.model_config = model.config();
  c.vocab = data.vocab();
  for (const auto& [name, t] : model.state_dict()) c.model_state.emplace(name, t.clone());
  c.model_rng = model.rng_state();
  c.optimizer_state = optimizer_state_bytes(optimizer);
  c.progress = progress;
  c.trainer_rng = trainer_rng ? trainer_rng->state() : Generator(c.config.run.seed).state();
  c.data_cursor = data.cursor();
  return c;
}

void save_checkpoint(const std::string& path, const PerformerLM& model, const Optimizer& optimizer,
                     const DataModule& data, int64_t step) {
  TrainProgress progress;
  progress.step = step;
  progress.lr = optimizer.lr();
  save_checkpoint(path, make_checkpoint(model, optimizer, data, progress));
}

std::unique_ptr<PerformerLM> make_model(const Checkpoint& c) {
  auto model = std::make_unique<PerformerLM>(c.model_config);
  restore_model(c, *model);
  return model;
}

std::string model_config_mismatch(const ModelConfig& checkpoint, const ModelConfig& model, const std::string& model_name) {
  std::string out;
  // Every field that is fixed for the life of a model (all but dropout and redraw_every).
  ModelConfig::visit_fields([&](const ModelField& f, auto member) {
    if (!f.fixed() || checkpoint.*member == model.*member) return;
    out += std::string(out.empty() ? "" : ", ") + f.name + " " + flag_text(checkpoint.*member) +
           " in the checkpoint, " + flag_text(model.*member) + " " + model_name;
  });
  return out;
}

void restore_model(const Checkpoint& c, PerformerLM& model) {
  const ModelConfig& have = model.config();
  const ModelConfig& want = c.model_config;
  const std::string mismatch = model_config_mismatch(want, have, "in this model");
  if (!mismatch.empty())
    throw CheckpointError("checkpoint model (" + describe_shape(want) + ") does not match this model (" +
                          describe_shape(have) + "): " + mismatch);
  // Check the generator string on a scratch copy of the state before the weights change.
  const StateDict before = [&] {
    StateDict s;
    for (const auto& [name, t] : model.state_dict()) s.emplace(name, t.clone());
    return s;
  }();
  try {
    model.load_state_dict(c.model_state, /*strict=*/true);
  } catch (const std::exception& e) {
    throw CheckpointError(std::string("checkpoint parameters do not fit the model: ") + e.what());
  }
  try {
    model.set_rng_state(c.model_rng);
  } catch (const std::exception& e) {
    model.load_state_dict(before, true);
    throw CheckpointError(std::string("checkpoint model generators: ") + e.what());
  }
}

void restore_optimizer(const Checkpoint& c, Optimizer& optimizer) {
  try {
    load_optimizer_state_bytes(optimizer, c.optimizer_state);
  } catch (const std::exception& e) {
    throw CheckpointError(std::string("checkpoint optimizer state: ") + e.what());
  }
}

void restore(const Checkpoint& c, PerformerLM& model, Optimizer& optimizer, DataModule& data) {
  if (!(c.vocab == data.vocab()))
    throw CheckpointError("checkpoint vocabulary '" + c.vocab.name() + "' differs from the data's '" +
                          data.vocab().name() + "'");
  const DataCursor cursor_before = data.cursor();
  try {
    data.restore(c.data_cursor);
  } catch (const std::exception& e) {
    throw CheckpointError(std::string("checkpoint data cursor: ") + e.what());
  }
  const std::string optimizer_before = optimizer_state_bytes(optimizer);
  try {
    restore_optimizer(c, optimizer);
    restore_model(c, model);
  } catch (...) {
    load_optimizer_state_bytes(optimizer, optimizer_before);
    data.restore(cursor_before);
    throw;
  }
}

}  // namespace pf
