// performer-train, performer-eval, performer-generate and performer-export with a SentencePiece
// tokenizer, end to end (tiny corpora written here, tiny models, one thread): a model trained on the
// training split or given as a file, embedded in every checkpoint (no extra file afterwards), exact
// resume, bits per byte against an independent byte count, the export metadata, and every refusal.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <cmath>
#include <numbers>
#include <regex>

#include "data/base64.h"
#include "data/tokenizer.h"
#include "nn/safetensors.h"
#include "train/checkpoint.h"
#include "train/interop.h"
#include "train/run_directory.h"
#include "train_test_util.h"
#include "tests/text_samples.h"

namespace pf {
namespace {

using test::contains;


using test::syllable_text;

std::string json_raw(const std::string& json, const std::string& key) {
  std::smatch m;
  const std::regex re("\"" + key + "\":([^,}]*)");
  return std::regex_search(json, m, re) ? m[1].str() : "";
}
double json_number_field(const std::string& json, const std::string& key) {
  const std::string raw = json_raw(json, key);
  return raw.empty() ? NAN : std::stod(raw);
}

// Bytes of `text` the first token of its encoding stands for, with the SentencePiece library itself:
// the decoded text of the shortest prefix of ids that decodes to something.
size_t first_token_bytes(const std::string& model_proto, const std::string& text) {
  sentencepiece::SentencePieceProcessor sp;
  EXPECT_TRUE(sp.LoadFromSerializedProto(model_proto).ok());
  std::vector<int> ids;
  EXPECT_TRUE(sp.Encode(text, &ids).ok());
  std::string first;
  for (size_t k = 1; k <= ids.size() && first.empty(); ++k)
    EXPECT_TRUE(sp.Decode(std::vector<int>(ids.begin(), ids.begin() + static_cast<long>(k)), &first).ok());
  return first.size();
}

class TokenizerCli : public ::testing::Test {
 public:
  void SetUp() override {
    text_ = dir_.write("corpus.txt", syllable_text(4000, 5));
    val_ = dir_.write("val.txt", syllable_text(400, 9));
  }
  test::CommandResult train(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {PF_TRAIN_BIN};
    for (const std::string& f : test::tiny_flags()) args.push_back(f);
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_command(args);
  }
  std::string out(const std::string& name) const { return dir_.path(name); }

 protected:
  test::TempDir dir_;
  std::string text_, val_;
};

TEST_F(TokenizerCli, TrainsResumesExactlyEvaluatesAndGeneratesWithTheEmbeddedModel) {
  const std::vector<std::string> flags = {"--data",       text_,      "--tokenizer", "sentencepiece", "--vocab-size",
                                          "320",          "--steps",  "16",          "--eval-batches", "0"};
  std::vector<std::string> straight = flags, first = flags;
  straight.insert(straight.end(), {"--out", out("straight")});
  first.insert(first.end(), {"--out", out("resumed"), "--stop-at", "7"});
  const test::CommandResult s = train(straight);
  EXPECT_OK(s);
  EXPECT_TRUE(contains(s.err, "sentencepiece 320 pieces (bpe, trained on the training split)")) << s.err;
  EXPECT_TRUE(contains(s.err, "validation reports nats/token and bits per byte of the original text")) << s.err;
  EXPECT_TRUE(contains(s.out, "bits per byte of the original text")) << s.out;
  EXPECT_OK(train(first));
  // The tokenizer file of the run is not needed to resume: the checkpoint carries it.
  const std::string model_file = out("resumed") + "/tokenizer.model";
  ASSERT_TRUE(std::filesystem::exists(model_file));
  const std::string model_bytes = test::read_file(model_file);
  std::filesystem::remove(model_file);
  const test::CommandResult resumed = test::run_command({PF_TRAIN_BIN, "--resume", out("resumed")});
  EXPECT_OK(resumed);
  // The dataset the first run prepared is reused: its tokenizer is the checkpoint's.
  EXPECT_TRUE(contains(resumed.err, "sentencepiece 320 pieces (bpe, trained on the training split)")) << resumed.err;
  EXPECT_TRUE(contains(resumed.err, "dataset: reused")) << resumed.err;
  const auto a = test::metrics_lines(RunDirectory(out("straight")).metrics_path());
  const auto b = test::metrics_lines(RunDirectory(out("resumed")).metrics_path());
  EXPECT_GT(a.size(), 16u);
  EXPECT_EQ(a, b);
  Checkpoint ca = load_checkpoint(RunDirectory(out("straight")).latest());
  Checkpoint cb = load_checkpoint(RunDirectory(out("resumed")).latest());
  ca.progress.elapsed_s = cb.progress.elapsed_s = 0;
  ca.config.run.out = cb.config.run.out = "";
  EXPECT_EQ(serialize_checkpoint(ca), serialize_checkpoint(cb));
  EXPECT_EQ(ca.vocab.name(), "sentencepiece");
  EXPECT_EQ(ca.vocab.model_proto(), model_bytes);
  EXPECT_EQ(test::read_file(model_file), model_bytes);  // written again by the resumed run
  EXPECT_EQ(ca.model_config.vocab_size, 322);           // 320 pieces + <pad> + <mask>

  // Validation bits per byte: nats / ln 2 / (held-out bytes minus the first token's), counted here from
  // the file with the library. The held-out tail is the last 5% of the bytes, at a character boundary.
  const std::string text = test::read_file(text_);
  size_t val_begin = text.size() - static_cast<size_t>(static_cast<double>(text.size()) * 0.05);
  while ((static_cast<unsigned char>(text[val_begin]) & 0xC0) == 0x80) ++val_begin;
  const std::string held_out = text.substr(val_begin);
  const int64_t expected_bytes = static_cast<int64_t>(held_out.size() - first_token_bytes(model_bytes, held_out));
  const std::string last_eval = [&] {
    std::string l;
    for (const std::string& line : a)
      if (contains(line, "\"type\":\"eval\"")) l = line;
    return l;
  }();
  ASSERT_FALSE(last_eval.empty());
  EXPECT_EQ(json_number_field(last_eval, "val_bytes"), static_cast<double>(expected_bytes)) << last_eval;
  const double nats = json_number_field(last_eval, "val_loss") * json_number_field(last_eval, "val_tokens");
  EXPECT_NEAR(json_number_field(last_eval, "val_bits_per_byte"), nats / std::numbers::ln2 / expected_bytes, 1e-12);
  // Subwords: each token stands for several bytes.
  EXPECT_GT(static_cast<double>(expected_bytes) / json_number_field(last_eval, "val_tokens"), 2.0);

  // performer-eval on another file, with nothing but the checkpoint.
  const test::CommandResult e = test::run_command(
      {PF_EVAL_BIN, "--checkpoint", out("resumed"), "--data", val_, "--json", "--threads", "1"});
  EXPECT_OK(e);
  const std::string val_text = test::read_file(val_);
  const int64_t eval_bytes = static_cast<int64_t>(val_text.size() - first_token_bytes(model_bytes, val_text));
  EXPECT_EQ(json_number_field(e.out, "bytes"), static_cast<double>(eval_bytes)) << e.out;
  EXPECT_NEAR(json_number_field(e.out, "bits_per_byte"),
              json_number_field(e.out, "loss") * json_number_field(e.out, "tokens") / std::numbers::ln2 / eval_bytes,
              1e-12);
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(model_bytes).ok());
  std::vector<int> val_ids;
  ASSERT_TRUE(sp.Encode(val_text, &val_ids).ok());
  EXPECT_EQ(json_number_field(e.out, "tokens"), static_cast<double>(val_ids.size() - 1));
  // The same checkpoint on its own held-out text gives the run's own validation loss.
  const std::string held_file = dir_.write("held_out.txt", held_out);
  const test::CommandResult e2 = test::run_command(
      {PF_EVAL_BIN, "--checkpoint", out("resumed"), "--data", held_file, "--json", "--threads", "1"});
  EXPECT_OK(e2);
  EXPECT_EQ(json_raw(e2.out, "loss"), json_raw(last_eval, "val_loss"));
  EXPECT_EQ(json_raw(e2.out, "bits_per_byte"), json_raw(last_eval, "val_bits_per_byte"));

  // performer-generate: the prompt is encoded with the run's model and the output decoded to text.
  const test::CommandResult g = test::run_command({PF_GENERATE_BIN, "--checkpoint", out("resumed"), "--prompt",
                                                   "kalo mi", "--tokens", "12", "--seed", "3", "--threads", "1"});
  EXPECT_OK(g);
  EXPECT_EQ(g.out.rfind("kalo mi", 0), 0u) << g.out;
  EXPECT_GT(g.out.size(), std::string("kalo mi\n").size() + 8);  // 12 subword tokens of text
  EXPECT_TRUE(contains(g.err, "generated 12 tokens")) << g.err;
  EXPECT_EQ(g.out.find("<0x"), std::string::npos) << g.out;  // byte pieces are decoded, not printed

  // performer-export: the tokenizer in the metadata (base64 of the model file, and its hash).
  const std::string st = out("model.safetensors");
  EXPECT_OK(test::run_command({PF_EXPORT_BIN, "--checkpoint", out("resumed"), "--out", st}));
  const Safetensors f = load_safetensors(st);
  EXPECT_EQ(f.metadata.at("vocab"), "sentencepiece");
  EXPECT_EQ(f.metadata.at("tokenizer"), "sentencepiece");
  EXPECT_EQ(base64_decode(f.metadata.at("tokenizer_model")), model_bytes);
  EXPECT_EQ(f.metadata.at("tokenizer_fnv1a64"), SentencePieceModel::from_bytes(model_bytes, "m")->hash_hex());
  EXPECT_EQ(f.metadata.at("vocab_size"), "322");
  // --init-from with the same tokenizer is accepted, with another one refused.
  EXPECT_OK(train({"--data", text_, "--tokenizer", "sentencepiece", "--tokenizer-model", dir_.write("m.model", model_bytes),
                   "--steps", "2", "--init-from", st, "--out", out("init")}));
  const test::CommandResult other = train({"--data", val_, "--tokenizer", "sentencepiece", "--vocab-size", "320",
                                           "--steps", "2", "--init-from", st, "--out", out("init2")});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_TRUE(contains(other.err, "trained with another SentencePiece model")) << other.err;
}

TEST_F(TokenizerCli, ByteRunsReportBitsPerByteEqualToBitsPerToken) {
  EXPECT_OK(train({"--data", text_, "--steps", "5", "--eval-batches", "0", "--out", out("bytes")}));
  const auto lines = test::metrics_lines(RunDirectory(out("bytes")).metrics_path());
  int evals = 0;
  for (const std::string& l : lines) {
    if (!contains(l, "\"type\":\"eval\"")) continue;
    ++evals;
    EXPECT_NEAR(json_number_field(l, "val_bits_per_byte"), json_number_field(l, "val_bits_per_token"), 1e-12);
    EXPECT_EQ(json_number_field(l, "val_bytes"), json_number_field(l, "val_tokens"));
  }
  EXPECT_EQ(evals, 2);  // before the first step and at step 5
}

// Masked LM on subwords: <mask> is the id after <pad>; no bits per byte (the targets are masked tokens).
TEST_F(TokenizerCli, MaskedLanguageModelTrainsOnSubwords) {
  const test::CommandResult r = train({"--data", text_, "--tokenizer", "sentencepiece", "--vocab-size", "300",
                                       "--objective", "mlm", "--steps", "5", "--out", out("mlm")});
  EXPECT_OK(r);
  const auto lines = test::metrics_lines(RunDirectory(out("mlm")).metrics_path());
  int evals = 0;
  for (const std::string& l : lines)
    if (contains(l, "\"type\":\"eval\"")) {
      ++evals;
      EXPECT_FALSE(contains(l, "bits_per_byte")) << l;
    }
  EXPECT_EQ(evals, 2);
}

TEST_F(TokenizerCli, AGivenModelIsUsedAsIsAndAResumeWithAnotherIsRefused) {
  const auto m1 = SentencePieceModel::train(test::read_file(text_), {.vocab_size = 300});
  const auto m2 = SentencePieceModel::train(test::read_file(text_), {.vocab_size = 300, .model_type = SentencePieceType::Unigram});
  const std::string f1 = dir_.write("one.model", m1->proto()), f2 = dir_.write("two.model", m2->proto());
  const test::CommandResult r = train({"--data", text_, "--tokenizer", "sentencepiece", "--tokenizer-model", f1,
                                       "--steps", "8", "--stop-at", "5", "--out", out("given")});
  EXPECT_OK(r);
  EXPECT_TRUE(contains(r.err, "sentencepiece 300 pieces (" + f1 + ")")) << r.err;
  EXPECT_EQ(load_checkpoint(RunDirectory(out("given")).latest()).vocab.model_proto(), m1->proto());
  const std::string before = test::directory_fingerprint(out("given"));
  const test::CommandResult refused =
      test::run_command({PF_TRAIN_BIN, "--resume", out("given"), "--tokenizer-model", f2});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(contains(refused.err, "cannot resume: --tokenizer-model " + f2)) << refused.err;
  EXPECT_TRUE(contains(refused.err, "is not the tokenizer embedded in the checkpoint")) << refused.err;
  EXPECT_EQ(test::directory_fingerprint(out("given")), before);  // nothing written
  // The same model under another name is accepted.
  const std::string copy = dir_.write("copy.model", m1->proto());
  EXPECT_OK(test::run_command({PF_TRAIN_BIN, "--resume", out("given"), "--tokenizer-model", copy}));
}

TEST_F(TokenizerCli, RefusalsNameTheFlagAndWriteNothing) {
  const std::string fasta = dir_.write("p.fasta", test::random_fasta(50, 2));
  const std::string corrupt = dir_.write("corrupt.model", "not a model at all \x01\x02\x03");
  const struct {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--data", text_, "--tokenizer", "sentencepiece", "--tokenizer-model", out("missing.model")},
       "--tokenizer-model " + out("missing.model") + ": no such file"},
      {{"--data", text_, "--tokenizer", "sentencepiece", "--tokenizer-model", corrupt},
       "--tokenizer-model " + corrupt + ": not a SentencePiece model"},
      {{"--data", text_, "--tokenizer", "sentencepiece", "--vocab-size", "20000"},
       "--vocab-size 20000 (--tokenizer-type bpe): SentencePiece cannot train this vocabulary on the training split: "
       "Vocabulary size too high (20000). Please set it to a value <="},
      {{"--data", fasta, "--tokenizer", "sentencepiece", "--vocab-size", "300"},
       "--tokenizer sentencepiece applies to text corpora, but " + fasta + " is FASTA"},
      {{"--data", text_, "--format", "fasta", "--tokenizer", "sentencepiece", "--vocab-size", "300"},
       "--tokenizer sentencepiece: applies to text corpora; --format fasta"},
      {{"--data", text_, "--tokenizer", "sentencepiece"}, "--tokenizer sentencepiece: needs --tokenizer-model FILE"},
      {{"--data", text_, "--vocab-size", "300"}, "--vocab-size 300: applies to --tokenizer sentencepiece only"},
      {{"--data", text_, "--tokenizer-model", corrupt}, "--tokenizer-model " + corrupt + ": applies to --tokenizer"},
      {{"--data", text_, "--tokenizer-type", "unigram"}, "--tokenizer-type unigram: applies to --tokenizer"},
      {{"--data", text_, "--tokenizer", "sentencepiece", "--vocab-size", "300", "--tokenizer-type", "word"},
       "--tokenizer-type 'word': unknown value (expected one of: bpe, unigram)"},
      {{"--data", text_, "--tokenizer", "wordpiece"}, "--tokenizer 'wordpiece': unknown value"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> args = c.args;
    const std::string run = out("refused" + std::to_string(i++));
    args.insert(args.end(), {"--steps", "2", "--out", run});
    const test::CommandResult r = train(args);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "performer-train: error: " + c.message)) << r.err;
    EXPECT_FALSE(std::filesystem::exists(run)) << run;
  }
}

}  // namespace
}  // namespace pf
