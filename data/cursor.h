// DataCursor: where the training stream is, saved in checkpoints so a resumed run continues exactly.
//
// The training stream is a pure function of (seed, cursor): the record order of each epoch is
// rebuilt from (seed, epoch), and every other random draw (crop offsets, text window offsets, masking)
// comes from one generator whose state is stored here as text. Restoring a cursor therefore yields the
// same batches as the run that saved it.
//
// Save and load with cereal, e.g.
//   { cereal::BinaryOutputArchive ar(out); ar(module.cursor()); }
//   pf::DataCursor c; { cereal::BinaryInputArchive ar(in); ar(c); } module.restore(c);
#pragma once

#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace pf {

struct DataCursor {
  int64_t epoch = 0;          // completed passes over the training set
  int64_t position = 0;       // proteins: records consumed in this epoch; text: windows drawn in it
  int64_t record_offset = 0;  // packed proteins: tokens of the current framed record already emitted
  std::string rng_state;      // Generator::state() of the crop/window/masking generator
  uint64_t fingerprint = 0;   // dataset + batching settings; restore refuses a cursor from another setup
  uint64_t dataset = 0;       // the prepared dataset's content fingerprint (0: a version-1 cursor)

  bool operator==(const DataCursor&) const = default;

  template <class Archive>
  void serialize(Archive& ar, std::uint32_t version) {
    if (version != 1 && version != 2)
      throw std::runtime_error("DataCursor: unsupported serialized version " + std::to_string(version) +
                               " (this build reads versions 1 and 2)");
    ar(cereal::make_nvp("epoch", epoch), cereal::make_nvp("position", position),
       cereal::make_nvp("record_offset", record_offset), cereal::make_nvp("rng_state", rng_state),
       cereal::make_nvp("fingerprint", fingerprint));
    if (version >= 2) ar(cereal::make_nvp("dataset", dataset));
  }
};

}  // namespace pf

CEREAL_CLASS_VERSION(pf::DataCursor, 2);
