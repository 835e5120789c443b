#include <gtest/gtest.h>

#include <cereal/archives/binary.hpp>
#include <cereal/archives/json.hpp>
#include <sstream>

#include "data/vocab.h"
#include "tests/archive_round_trip.h"

namespace pf {
namespace {

TEST(Vocab, BytesRoundTripsEveryByteValue) {
  const Vocab v = Vocab::bytes();
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::vector<int32_t> ids = v.encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[static_cast<size_t>(b)], b);  // ids are the bytes
  EXPECT_EQ(v.decode(ids), all);
}

TEST(Vocab, BytesSpecials) {
  const Vocab v = Vocab::bytes();
  EXPECT_EQ(v.kind(), VocabKind::Bytes);
  EXPECT_EQ(v.name(), "bytes");
  EXPECT_EQ(v.size(), 258);
  EXPECT_EQ(v.pad_id(), 256);
  EXPECT_EQ(v.mask_id(), 257);
  EXPECT_EQ(v.bos_id(), -1);
  EXPECT_EQ(v.eos_id(), -1);
  EXPECT_TRUE(v.is_special(256));
  EXPECT_TRUE(v.is_special(257));
  EXPECT_FALSE(v.is_special(0));
  EXPECT_FALSE(v.is_special(255));
  EXPECT_EQ(v.mlm_replacement_ids().size(), 256u);
  EXPECT_EQ(v.decode(std::vector<int32_t>{'h', 'i', 256, 257}), "hi<pad><mask>");
  EXPECT_EQ(v.decode(std::vector<int32_t>{'h', 256, 'i'}, /*skip_special=*/true), "hi");
}

TEST(Vocab, ProteinRoundTripsAllResidueCodes) {
  const Vocab v = Vocab::protein();
  const std::string codes = "ACDEFGHIKLMNPQRSTVWYXBZUO";
  const std::vector<int32_t> ids = v.encode(codes);
  ASSERT_EQ(ids.size(), codes.size());
  for (int32_t id : ids) EXPECT_FALSE(v.is_special(id));
  EXPECT_EQ(v.decode(ids), codes);
  EXPECT_EQ(v.encode("acdefghiklmnpqrstvwyxbzuo"), ids);  // lowercase is the same residue
}

TEST(Vocab, ProteinSpecials) {
  const Vocab v = Vocab::protein();
  EXPECT_EQ(v.name(), "protein");
  EXPECT_EQ(v.size(), 29);
  const std::vector<int32_t> specials = {v.pad_id(), v.bos_id(), v.eos_id(), v.mask_id()};
  for (size_t i = 0; i < specials.size(); ++i) {
    EXPECT_GE(specials[i], 0);
    EXPECT_TRUE(v.is_special(specials[i]));
    for (size_t j = 0; j < i; ++j) EXPECT_NE(specials[i], specials[j]);
  }
  std::vector<int32_t> ids = {v.bos_id()};
  for (int32_t id : v.encode("MKV")) ids.push_back(id);
  ids.push_back(v.eos_id());
  ids.push_back(v.pad_id());
  EXPECT_EQ(v.decode(ids), "<bos>MKV<eos><pad>");
  EXPECT_EQ(v.decode(ids, /*skip_special=*/true), "MKV");
  // Masked-LM random replacements are the 20 standard amino acids.
  EXPECT_EQ(v.decode(v.mlm_replacement_ids()), "ACDEFGHIKLMNPQRSTVWY");
}

TEST(Vocab, ProteinEncodeNamesTheInvalidCharacter) {
  const Vocab v = Vocab::protein();
  try {
    v.encode("MKJV");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'J'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("position 2"), std::string::npos) << msg;
  }
}

TEST(Vocab, DecodeRejectsOutOfRangeIds) {
  EXPECT_THROW(Vocab::protein().decode(std::vector<int32_t>{29}), std::out_of_range);
  EXPECT_THROW(Vocab::bytes().decode(std::vector<int32_t>{-1}), std::out_of_range);
}

TEST(Vocab, FromNameRejectsUnknown) {
  EXPECT_EQ(Vocab::from_name("protein"), Vocab::protein());
  EXPECT_THROW(Vocab::from_name("dna"), std::invalid_argument);
}

template <class Out, class In>
Vocab round_trip(const Vocab& v) {
  return test::archive_round_trip<Out, In>(v);
}

TEST(Vocab, CerealRoundTripBinaryAndJson) {
  for (const Vocab& v : {Vocab::bytes(), Vocab::protein()}) {
    const Vocab b = round_trip<cereal::BinaryOutputArchive, cereal::BinaryInputArchive>(v);
    EXPECT_EQ(b, v);
    EXPECT_EQ(b.kind(), v.kind());
    EXPECT_EQ(b.pad_id(), v.pad_id());
    const Vocab j = round_trip<cereal::JSONOutputArchive, cereal::JSONInputArchive>(v);
    EXPECT_EQ(j, v);
  }
  // A checkpoint decodes its own tokens.
  const Vocab p = round_trip<cereal::BinaryOutputArchive, cereal::BinaryInputArchive>(Vocab::protein());
  EXPECT_EQ(p.decode(Vocab::protein().encode("MKVLA")), "MKVLA");
}

TEST(Vocab, LoadingADifferentTokenTableFailsAndLeavesTheVocabUnchanged) {
  std::stringstream ss;
  {
    cereal::JSONOutputArchive ar(ss);
    ar(cereal::make_nvp("vocab", Vocab::protein()));
  }
  std::string json = ss.str();
  const size_t at = json.find("\"A\"");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, 3, "\"J\"");  // a token table this build does not have
  std::stringstream tampered(json);
  Vocab v = Vocab::bytes();
  cereal::JSONInputArchive ar(tampered);
  EXPECT_THROW(ar(cereal::make_nvp("vocab", v)), std::runtime_error);
  EXPECT_EQ(v, Vocab::bytes());
}

}  // namespace
}  // namespace pf
