// SentencePiece tokenizers (data/tokenizer.h), the sentencepiece Vocab and the DataModule on a
// SentencePiece-encoded text: training, loading, encode/decode round trips, byte accounting (checked
// against the SentencePiece library called directly), errors, serialization, and the batches.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <cereal/archives/binary.hpp>
#include <cereal/archives/json.hpp>
#include <fstream>
#include <numeric>
#include <sstream>

#include "data/base64.h"
#include "data/data_module.h"
#include "data/text_corpus.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "tests/temp_dir.h"
#include "tests/text_samples.h"
#include "tests/archive_round_trip.h"

namespace pf {
namespace {

using test::syllable_text;

class Tokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = syllable_text(1500, 7);
    model_ = SentencePieceModel::train(text_, {.vocab_size = 320, .model_type = SentencePieceType::Bpe});
  }
  std::string text_;
  std::shared_ptr<const SentencePieceModel> model_;
};

TEST_F(Tokenizer, TrainsTheRequestedVocabularyAndRoundTripsExactly) {
  EXPECT_EQ(model_->size(), 320);
  std::vector<int32_t> ids, bytes;
  model_->encode(text_, ids, &bytes);
  EXPECT_LT(ids.size(), text_.size() / 2);  // subwords: far fewer tokens than bytes
  EXPECT_EQ(model_->decode(ids), text_);     // newlines, punctuation and multi-byte characters kept
  // Text the model never saw: unseen characters fall back to byte pieces, still exact.
  const std::string unseen = "Zebra\tquartz\r\n\x01\xc3\xa7 日本 \n\n  two  spaces";
  std::vector<int32_t> u;
  model_->encode(unseen, u);
  EXPECT_EQ(model_->decode(u), unseen);
  for (int32_t id : u) EXPECT_FALSE(model_->is_unknown(id));
}

TEST_F(Tokenizer, ByteCountsPartitionTheTextAndMatchTheLibrary) {
  std::vector<int32_t> ids, bytes;
  model_->encode(text_, ids, &bytes);
  ASSERT_EQ(bytes.size(), ids.size());
  EXPECT_EQ(std::accumulate(bytes.begin(), bytes.end(), int64_t{0}), static_cast<int64_t>(text_.size()));
  // Independently: the library's own ids, and for a model without normalization each token's bytes are
  // the bytes its decoded prefix grows by (a byte piece inside a character adds none until the character
  // is complete).
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(model_->proto()).ok());
  std::vector<int> lib_ids;
  ASSERT_TRUE(sp.Encode(text_, &lib_ids).ok());
  ASSERT_EQ(lib_ids.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(lib_ids[i], ids[i]) << i;
  int64_t pos = 0;
  int checked = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = sp.IdToPiece(ids[i]);
    if (sp.IsByte(ids[i])) {  // part of a character: its bytes count with the character's last piece
      pos += bytes[i];
      continue;
    }
    std::string surface;  // the piece with SentencePiece's whitespace mark U+2581 as a space
    for (size_t p = 0; p < piece.size();) {
      if (piece.compare(p, 3, "\xe2\x96\x81") == 0) {
        surface += ' ';
        p += 3;
      } else {
        surface += piece[p++];
      }
    }
    ASSERT_EQ(bytes[i], static_cast<int32_t>(surface.size())) << "token " << i << " '" << piece << "'";
    ASSERT_EQ(text_.compare(static_cast<size_t>(pos), surface.size(), surface), 0) << i;
    pos += bytes[i];
    ++checked;
  }
  EXPECT_GT(checked, 1000);
}

TEST_F(Tokenizer, LoadsFromBytesAndFilesAndRefusesOthers) {
  const test::TempDir dir;
  const std::string path = dir.write("m.model", model_->proto());
  const auto loaded = SentencePieceModel::from_file(path);
  EXPECT_EQ(loaded->proto(), model_->proto());
  EXPECT_EQ(loaded->hash_hex(), model_->hash_hex());
  EXPECT_EQ(loaded->hash_hex().size(), 16u);
  std::vector<int32_t> a, b;
  model_->encode(text_, a);
  loaded->encode(text_, b);
  EXPECT_EQ(a, b);

  auto message = [](auto f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { SentencePieceModel::from_file(dir.path("missing.model")); })
                .find("--tokenizer-model " + dir.path("missing.model") + ": cannot open"),
            std::string::npos);
  const std::string corrupt = dir.write("corrupt.model", "this is not a protobuf\xff\xff\xff");
  EXPECT_NE(message([&] { SentencePieceModel::from_file(corrupt); }).find("not a SentencePiece model"),
            std::string::npos);
  const std::string empty = dir.write("empty.model", "");
  EXPECT_NE(message([&] { SentencePieceModel::from_file(empty); }).find("the file is empty"), std::string::npos);
  const std::string cut = dir.write("cut.model", model_->proto().substr(0, model_->proto().size() / 2));
  EXPECT_NE(message([&] { SentencePieceModel::from_file(cut); }).find("not a SentencePiece model"), std::string::npos);
}

TEST_F(Tokenizer, RefusesAVocabularyTheTextCannotSupport) {
  std::string what;
  try {
    SentencePieceModel::train(text_.substr(0, 2000), {.vocab_size = 5000, .model_type = SentencePieceType::Bpe});
  } catch (const std::invalid_argument& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("--vocab-size 5000"), std::string::npos) << what;
  EXPECT_NE(what.find("Vocabulary size too high (5000)"), std::string::npos) << what;
  EXPECT_NE(what.find("Please set it to a value <="), std::string::npos) << what;
}

TEST_F(Tokenizer, UnigramTrainsAndTrainingIsDeterministic) {
  const auto u = SentencePieceModel::train(text_, {.vocab_size = 320, .model_type = SentencePieceType::Unigram});
  std::vector<int32_t> ids;
  u->encode(text_, ids);
  EXPECT_EQ(u->decode(ids), text_);
  EXPECT_NE(u->proto(), model_->proto());
  EXPECT_EQ(SentencePieceModel::train(text_, {.vocab_size = 320, .model_type = SentencePieceType::Bpe})->proto(), model_->proto());
}

TEST_F(Tokenizer, VocabAppendsPadAndMaskAndSerializesTheModel) {
  const Vocab v = Vocab::sentencepiece(model_);
  EXPECT_EQ(v.kind(), VocabKind::SentencePiece);
  EXPECT_EQ(v.name(), "sentencepiece");
  EXPECT_EQ(v.size(), 322);
  EXPECT_EQ(v.pad_id(), 320);
  EXPECT_EQ(v.mask_id(), 321);
  EXPECT_EQ(v.bos_id(), -1);
  const std::vector<int32_t> ids = v.encode("kalo miten");
  std::vector<int32_t> with_pad = ids;
  with_pad.push_back(v.pad_id());
  with_pad.insert(with_pad.end(), ids.begin(), ids.end());
  EXPECT_EQ(v.decode(with_pad, /*skip_special=*/true), "kalo mitenkalo miten");
  EXPECT_EQ(v.decode(with_pad), "kalo miten<pad>kalo miten");
  EXPECT_THROW(v.decode(std::vector<int32_t>{322}), std::out_of_range);
  for (int32_t id : v.mlm_replacement_ids()) EXPECT_FALSE(model_->is_control(id) || model_->is_unknown(id));

  const Vocab back = test::archive_round_trip(v);
  EXPECT_TRUE(back == v);
  EXPECT_EQ(back.model_proto(), model_->proto());
  EXPECT_FALSE(back == Vocab::bytes());
  // Text archives too (the model's bytes as a JSON string).
  const Vocab from_json = test::archive_round_trip<cereal::JSONOutputArchive, cereal::JSONInputArchive>(v);
  EXPECT_TRUE(from_json == v);
  // Another model with the same pieces count is a different vocabulary.
  const Vocab other = Vocab::sentencepiece(SentencePieceModel::train(syllable_text(1500, 8), {.vocab_size = 320}));
  EXPECT_FALSE(other == v);
}

// Archives written before the SentencePiece vocabulary (Vocab version 1: name and tokens, no model)
// still load.
TEST(TokenizerVocab, Version1ArchivesStillLoad) {
  std::stringstream ss;
  {
    cereal::BinaryOutputArchive ar(ss);
    std::vector<std::string> labels;
    const Vocab p = Vocab::protein();
    for (int32_t id = 0; id < p.size(); ++id) labels.push_back(p.label(id));
    ar(std::uint32_t{1}, std::string("protein"), labels);  // what version 1 wrote: version, name, tokens
  }
  Vocab back;
  {
    cereal::BinaryInputArchive ar(ss);
    ar(back);
  }
  EXPECT_TRUE(back == Vocab::protein());
  EXPECT_EQ(back.model_proto(), "");
}

TEST(TokenizerDataModule, EncodesTheSplitAndCountsValidationBytes) {
  const test::TempDir dir;
  const std::string text = syllable_text(3000, 11);
  const std::string file = dir.write("corpus.txt", text);
  DataConfig dc;
  dc.train_files = {file};
  dc.val_fraction = 0.1;
  dc.seq_len = 16;
  dc.batch_size = 4;
  dc.seed = 3;
  dc.tokenizer.kind = TokenizerKind::SentencePiece;
  dc.tokenizer.vocab_size = 330;
  DataModule dm(dc);
  ASSERT_EQ(dm.vocab().kind(), VocabKind::SentencePiece);
  EXPECT_EQ(dm.vocab().size(), 332);
  EXPECT_NE(dm.describe().find("sentencepiece 330 pieces"), std::string::npos) << dm.describe();

  // The held-out tail: the last 10% of the bytes, moved forward to a character boundary.
  size_t val_begin = text.size() - static_cast<size_t>(static_cast<double>(text.size()) * 0.1);
  while ((static_cast<unsigned char>(text[val_begin]) & 0xC0) == 0x80) ++val_begin;
  const std::string train_text = text.substr(0, val_begin), val_text = text.substr(val_begin);
  // The tokenizer was trained on the training part only.
  const auto expected_model = SentencePieceModel::train(train_text, {.vocab_size = 330});
  EXPECT_EQ(dm.vocab().model_proto(), expected_model->proto());

  // Every validation token but the first is a target once, in order; the bytes they stand for are the
  // validation text minus the first token's bytes (the library's encoding, decoded by the library).
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(dm.vocab().model_proto()).ok());
  std::vector<int> val_ids;
  ASSERT_TRUE(sp.Encode(val_text, &val_ids).ok());
  std::string first;
  // The first token's bytes: decode the shortest prefix of ids that yields non-empty text.
  for (size_t k = 1; k <= val_ids.size() && first.empty(); ++k)
    ASSERT_TRUE(sp.Decode(std::vector<int>(val_ids.begin(), val_ids.begin() + static_cast<long>(k)), &first).ok());
  std::vector<int32_t> targets;
  int64_t bytes = 0;
  for (const Batch& b : dm.eval_batches(0)) {
    for (int32_t t : b.targets)
      if (t != kIgnoreIndex) targets.push_back(t);
    bytes += b.target_bytes;
  }
  ASSERT_EQ(targets.size() + 1, val_ids.size());
  for (size_t i = 0; i < targets.size(); ++i) ASSERT_EQ(targets[i], val_ids[i + 1]) << i;
  EXPECT_EQ(bytes, static_cast<int64_t>(val_text.size() - first.size()));

  // Training batches are windows of the training ids.
  std::vector<int> train_ids;
  ASSERT_TRUE(sp.Encode(train_text, &train_ids).ok());
  const Batch b = dm.next_train_batch();
  EXPECT_EQ(b.target_bytes, 0);
  const std::vector<int32_t> row(b.inputs.begin(), b.inputs.begin() + 16);
  bool found = false;
  for (size_t o = 0; o + 17 <= train_ids.size() && !found; ++o)
    found = std::equal(row.begin(), row.end(), train_ids.begin() + static_cast<long>(o)) &&
            b.targets[15] == train_ids[o + 16];
  EXPECT_TRUE(found);

  // The same data with the model given as bytes (a checkpoint's) gives the same stream.
  DataConfig again = dc;
  again.tokenizer.vocab_size = 0;
  again.tokenizer.proto = dm.vocab().model_proto();
  DataModule dm2(again);
  EXPECT_TRUE(dm2.vocab() == dm.vocab());
  EXPECT_EQ(dm2.next_train_batch().inputs, b.inputs);
}

TEST(TokenizerDataModule, ByteTokenizerBytesEqualTargets) {
  const test::TempDir dir;
  DataConfig dc;
  dc.train_files = {dir.write("c.txt", syllable_text(500, 2))};
  dc.val_fraction = 0.2;
  dc.seq_len = 16;
  dc.batch_size = 4;
  DataModule dm(dc);
  for (const Batch& b : dm.eval_batches(0)) EXPECT_EQ(b.target_bytes, b.num_targets());
}

TEST(TokenizerDataModule, RefusesBadCombinations) {
  const test::TempDir dir;
  const std::string text = dir.write("c.txt", syllable_text(800, 2));
  const std::string fasta = dir.write("p.fasta", ">a\nMKVLAAGIVG\n>b\nMSTNPKPQRK\n");
  auto message = [&](DataConfig dc) {
    dc.seq_len = 16;
    dc.batch_size = 4;
    try {
      DataModule dm(dc);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  DataConfig dc;
  dc.train_files = {fasta};
  dc.tokenizer.kind = TokenizerKind::SentencePiece;
  dc.tokenizer.vocab_size = 300;
  EXPECT_NE(message(dc).find("--tokenizer sentencepiece applies to text corpora, but " + fasta + " is FASTA"),
            std::string::npos)
      << message(dc);
  dc.train_files = {text};
  dc.tokenizer.vocab_size = 0;
  EXPECT_NE(message(dc).find("needs --tokenizer-model FILE"), std::string::npos);
  dc.tokenizer.kind = TokenizerKind::Bytes;
  dc.tokenizer.vocab_size = 300;
  EXPECT_NE(message(dc).find("--vocab-size 300: applies to --tokenizer sentencepiece only"), std::string::npos);
  // A given model whose size is not --vocab-size.
  const std::string model =
      dir.write("m.model", SentencePieceModel::train(syllable_text(800, 2), {.vocab_size = 300})->proto());
  dc.tokenizer.kind = TokenizerKind::SentencePiece;
  dc.tokenizer.model = model;
  dc.tokenizer.vocab_size = 310;
  EXPECT_NE(message(dc).find("--vocab-size 310: the tokenizer model (" + model + ") has 300 pieces"),
            std::string::npos)
      << message(dc);
  dc.tokenizer.vocab_size = 300;
  EXPECT_EQ(message(dc), "no error");
}

TEST(Base64, MatchesTheRfc4648TestVectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
  EXPECT_THROW(base64_decode("Zm9"), std::invalid_argument);
  EXPECT_THROW(base64_decode("Zm9*"), std::invalid_argument);
}

}  // namespace
}  // namespace pf
