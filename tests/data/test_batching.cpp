#include <gtest/gtest.h>

#include <algorithm>
#include <cereal/archives/binary.hpp>
#include <map>
#include <set>
#include <sstream>

#include "data/data_module.h"
#include "base/random.h"
#include "tests/temp_dir.h"
#include "tests/archive_round_trip.h"

namespace pf {
namespace {

using test::TempDir;

const std::string kCodes = "ACDEFGHIKLMNPQRSTVWY";

// n records "r<i>" with random standard residues of length in [min_len, max_len].
std::string random_fasta(int n, int min_len, int max_len, uint64_t seed) {
  Generator rng(seed);
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += ">r" + std::to_string(i) + "\n";
    const auto len = min_len + static_cast<int>(rng.below(static_cast<uint64_t>(max_len - min_len + 1)));
    for (int k = 0; k < len; ++k) out.push_back(kCodes[rng.below(kCodes.size())]);
    out += "\n";
  }
  return out;
}

std::string random_text(int n, uint64_t seed) {
  Generator rng(seed);
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>(rng.below(256)));
  return out;
}

DataConfig make_config(const std::string& file, int64_t T, int64_t B, uint64_t seed) {
  DataConfig cfg;
  cfg.train_files = {file};
  cfg.seq_len = T;
  cfg.batch_size = B;
  cfg.seed = seed;
  cfg.val_fraction = 0.0;
  return cfg;
}

bool same(const Batch& a, const Batch& b) {
  return a.batch == b.batch && a.seq == b.seq && a.inputs == b.inputs && a.targets == b.targets &&
         a.key_mask == b.key_mask;
}

DataCursor cereal_round_trip(const DataCursor& c) { return test::archive_round_trip(c); }

// Runs `total` batches uninterrupted, and again with a save after `cut` batches and a restore into a
// fresh module (cursor passed through a cereal binary archive); the batches after the cut must match.
void expect_resume_identical(const DataConfig& cfg, int cut, int total) {
  DataModule straight(cfg);
  std::vector<Batch> expected;
  DataCursor saved;
  for (int i = 0; i < total; ++i) {
    if (i == cut) saved = cereal_round_trip(straight.cursor());
    expected.push_back(straight.next_train_batch());
  }
  DataModule resumed(cfg);
  resumed.next_train_batch();  // a restore must not depend on where the module was
  resumed.restore(saved);
  EXPECT_EQ(resumed.cursor(), saved);
  for (int i = cut; i < total; ++i)
    EXPECT_TRUE(same(resumed.next_train_batch(), expected[static_cast<size_t>(i)])) << "batch " << i;
}

// ---- text ----

TEST(TextBatching, CausalTargetsAreInputsShiftedByOne) {
  TempDir dir;
  const std::string text = random_text(3000, 1);
  DataModule m(make_config(dir.write("t.txt", text), 32, 4, 7));
  EXPECT_EQ(m.vocab().name(), "bytes");
  for (int step = 0; step < 5; ++step) {
    const Batch b = m.next_train_batch();
    ASSERT_EQ(b.batch, 4);
    ASSERT_EQ(b.seq, 32);
    ASSERT_EQ(b.inputs.size(), 128u);
    for (int64_t r = 0; r < 4; ++r) {
      const int32_t* in = b.inputs.data() + r * 32;
      const int32_t* tg = b.targets.data() + r * 32;
      for (int t = 0; t + 1 < 32; ++t) EXPECT_EQ(tg[t], in[t + 1]);
      // The row is a real window of the corpus: inputs then the last target.
      std::string window;
      for (int t = 0; t < 32; ++t) window.push_back(static_cast<char>(in[t]));
      window.push_back(static_cast<char>(tg[31]));
      EXPECT_NE(text.find(window), std::string::npos);
    }
    EXPECT_EQ(std::count(b.key_mask.begin(), b.key_mask.end(), 1), 128);
  }
}

TEST(TextBatching, SameSeedSameBatchesDifferentSeedDifferent) {
  TempDir dir;
  const std::string file = dir.write("t.txt", random_text(5000, 2));
  DataModule a(make_config(file, 16, 4, 1)), b(make_config(file, 16, 4, 1)), c(make_config(file, 16, 4, 2));
  int differ = 0;
  for (int i = 0; i < 5; ++i) {
    const Batch x = a.next_train_batch();
    EXPECT_TRUE(same(x, b.next_train_batch()));
    differ += !same(x, c.next_train_batch());
  }
  EXPECT_EQ(differ, 5);
}

TEST(TextBatching, CursorRestoreGivesIdenticalBatches) {
  TempDir dir;
  DataConfig cfg = make_config(dir.write("t.txt", random_text(2000, 3)), 16, 4, 5);
  expect_resume_identical(cfg, 4, 12);
  cfg.objective = Objective::Mlm;
  expect_resume_identical(cfg, 3, 9);
}

TEST(TextBatching, EvalCoversTheValidationTailOnceAndIsDeterministic) {
  TempDir dir;
  const std::string text = random_text(1000, 4);
  DataConfig cfg = make_config(dir.write("t.txt", text), 30, 2, 5);
  cfg.val_fraction = 0.1;  // bytes [900, 1000)
  DataModule m(cfg);
  const std::vector<Batch> before = m.eval_batches(0);
  // 99 targets (the first held-out byte has no context) in rows of 30: 30+30+30+9 -> 2 batches.
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[1].batch, 2);
  std::string predicted;
  for (const Batch& b : before)
    for (size_t i = 0; i < b.targets.size(); ++i)
      if (b.targets[i] != kIgnoreIndex) {
        predicted.push_back(static_cast<char>(b.targets[i]));
        EXPECT_EQ(b.key_mask[i], 1);
      } else {
        EXPECT_EQ(b.key_mask[i], 0);
        EXPECT_EQ(b.inputs[i], m.vocab().pad_id());
      }
  EXPECT_EQ(predicted, text.substr(901));
  m.next_train_batch();
  const std::vector<Batch> after = m.eval_batches(0);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(same(before[i], after[i]));
  EXPECT_EQ(m.eval_batches(1).size(), 1u);
}

// A text shorter than one window (seq_len + 1) trains too: every row is the whole text, padded.
TEST(TextBatching, TextShorterThanOneWindowTrainsOnPaddedRows) {
  TempDir dir;
  for (const char* objective : {"causal", "mlm"}) {
    DataConfig cfg = make_config(dir.write("t.txt", "short"), 16, 2, 1);
    cfg.objective = parse_objective(objective);
    cfg.mask_prob = 1.0;
    DataModule m(cfg);
    const bool causal = std::string(objective) == "causal";
    const int64_t real = causal ? 4 : 5;  // causal: "shor" predicts "hort"
    for (int step = 0; step < 3; ++step) {
      const Batch b = m.next_train_batch();
      ASSERT_EQ(b.batch, 2);
      for (int64_t r = 0; r < 2; ++r) {
        const uint8_t* km = b.key_mask.data() + r * 16;
        EXPECT_EQ(std::count(km, km + 16, 1), real) << objective;
        for (int64_t t = real; t < 16; ++t) {
          EXPECT_EQ(b.inputs[static_cast<size_t>(r * 16 + t)], m.vocab().pad_id());
          EXPECT_EQ(b.targets[static_cast<size_t>(r * 16 + t)], kIgnoreIndex);
        }
        if (causal) {
          EXPECT_EQ(m.vocab().decode(std::vector<int32_t>(b.inputs.begin() + r * 16, b.inputs.begin() + r * 16 + 4)),
                    "shor");
          EXPECT_EQ(m.vocab().decode(std::vector<int32_t>(b.targets.begin() + r * 16, b.targets.begin() + r * 16 + 4)),
                    "hort");
        }
      }
    }
  }
}

TEST(TextBatching, OneByteIsTooShortForACausalModelAndTheErrorSaysSo) {
  TempDir dir;
  try {
    DataModule m(make_config(dir.write("t.txt", "x"), 16, 2, 1));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("a causal model needs at least 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--data"), std::string::npos) << e.what();
  }
}

// performer-eval's path: the files are evaluated whole, however short, and never trained on.
TEST(TextBatching, EvalOnlyDataScoresAShortTextAsOnePartialWindow) {
  TempDir dir;
  DataConfig cfg;
  cfg.val_files = {dir.write("t.txt", "tiny text")};
  cfg.seq_len = 32;
  cfg.batch_size = 4;
  cfg.eval_only = true;
  DataModule m(cfg);
  const std::vector<Batch> eval = m.eval_batches(0);
  ASSERT_EQ(eval.size(), 1u);
  EXPECT_EQ(eval[0].batch, 1);
  EXPECT_EQ(eval[0].num_targets(), 8);  // 9 bytes, each but the first predicted once
  EXPECT_THROW(m.next_train_batch(), std::logic_error);
}

// ---- proteins, one record per row ----

TEST(ProteinBatching, RowsAreFramedPaddedAndMasked) {
  TempDir dir;
  DataModule m(make_config(dir.write("p.fa", ">a\nMKV\n>b\nACDEF\n"), 10, 2, 3));
  const Vocab& v = m.vocab();
  EXPECT_EQ(v.name(), "protein");
  const Batch b = m.next_train_batch();
  std::set<std::string> seen;
  for (int64_t r = 0; r < 2; ++r) {
    const int32_t* in = b.inputs.data() + r * 10;
    const int32_t* tg = b.targets.data() + r * 10;
    const uint8_t* km = b.key_mask.data() + r * 10;
    const int real = static_cast<int>(std::count(km, km + 10, 1));
    const int len = real - 1;  // causal row: bos + residues as inputs
    EXPECT_EQ(in[0], v.bos_id());
    std::string res = v.decode(std::vector<int32_t>(in + 1, in + real));
    seen.insert(res);
    EXPECT_EQ(static_cast<int>(res.size()), len);
    for (int t = 0; t < real - 1; ++t) EXPECT_EQ(tg[t], in[t + 1]);
    EXPECT_EQ(tg[real - 1], v.eos_id());
    for (int t = real; t < 10; ++t) {
      EXPECT_EQ(km[t], 0);
      EXPECT_EQ(in[t], v.pad_id());
      EXPECT_EQ(tg[t], kIgnoreIndex);
    }
    for (int t = 0; t < real; ++t) EXPECT_EQ(km[t], 1);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"MKV", "ACDEF"}));
}

TEST(ProteinBatching, MaskedRowsNeverTargetPadsOrFrameTokens) {
  TempDir dir;
  DataConfig cfg = make_config(dir.write("p.fa", random_fasta(20, 3, 12, 8)), 16, 4, 3);
  cfg.objective = Objective::Mlm;
  cfg.mask_prob = 0.5;
  DataModule m(cfg);
  const Vocab& v = m.vocab();
  int64_t targets = 0;
  for (int step = 0; step < 10; ++step) {
    const Batch b = m.next_train_batch();
    for (size_t i = 0; i < b.inputs.size(); ++i) {
      if (b.key_mask[i] == 0) {
        EXPECT_EQ(b.inputs[i], v.pad_id());
        EXPECT_EQ(b.targets[i], kIgnoreIndex);
      }
      if (b.targets[i] != kIgnoreIndex) {
        ++targets;
        EXPECT_FALSE(v.is_special(b.targets[i]));
      }
      if (b.inputs[i] == v.bos_id() || b.inputs[i] == v.eos_id()) {
        EXPECT_EQ(b.targets[i], kIgnoreIndex);
      }
    }
    for (int64_t r = 0; r < b.batch; ++r) EXPECT_EQ(b.inputs[static_cast<size_t>(r * 16)], v.bos_id());
  }
  EXPECT_GT(targets, 0);
}

TEST(ProteinBatching, LongRecordsAreCroppedRandomlyInTrainingAndScoredWholeInEval) {
  TempDir dir;
  const std::string long_record = random_fasta(1, 100, 100, 9);
  const std::string residues = long_record.substr(long_record.find('\n') + 1, 100);
  DataConfig cfg = make_config(dir.write("p.fa", long_record), 10, 4, 3);
  cfg.val_files = {dir.write("v.fa", long_record)};
  DataModule m(cfg);
  const Vocab& v = m.vocab();
  // Framed: bos + 100 residues + eos = 102 tokens; a causal row reads an 11-token window of it.
  std::vector<int32_t> framed = {v.bos_id()};
  for (int32_t id : v.encode(residues)) framed.push_back(id);
  framed.push_back(v.eos_id());
  std::set<int64_t> offsets;
  for (int step = 0; step < 10; ++step) {
    const Batch b = m.next_train_batch();
    for (int64_t r = 0; r < 4; ++r) {
      std::vector<int32_t> window(b.inputs.begin() + r * 10, b.inputs.begin() + r * 10 + 10);
      window.push_back(b.targets[static_cast<size_t>(r * 10 + 9)]);
      const auto it = std::search(framed.begin(), framed.end(), window.begin(), window.end());
      ASSERT_NE(it, framed.end());
      offsets.insert(it - framed.begin());
      EXPECT_EQ(std::count(b.key_mask.begin() + r * 10, b.key_mask.begin() + r * 10 + 10, 1), 10);
    }
  }
  EXPECT_GT(offsets.size(), 10u);  // 40 uniform draws from 92 offsets
  // Evaluation: consecutive windows of 10, so every framed token after bos is a target exactly once
  // (101 targets in ceil(101 / 10) = 11 rows, 3 batches of at most 4 rows).
  const std::vector<Batch> eval = m.eval_batches(0);
  ASSERT_EQ(eval.size(), 3u);
  std::vector<int32_t> inputs, targets;
  int64_t rows = 0;
  for (const Batch& b : eval) {
    rows += b.batch;
    for (size_t i = 0; i < b.inputs.size(); ++i)
      if (b.key_mask[i]) {
        inputs.push_back(b.inputs[i]);
        targets.push_back(b.targets[i]);
      }
  }
  EXPECT_EQ(rows, 11);
  EXPECT_EQ(inputs, std::vector<int32_t>(framed.begin(), framed.end() - 1));
  EXPECT_EQ(targets, std::vector<int32_t>(framed.begin() + 1, framed.end()));
}

TEST(ProteinBatching, MaskedEvalCoversEveryPositionOfLongRecords) {
  TempDir dir;
  DataConfig cfg = make_config(dir.write("p.fa", random_fasta(3, 30, 60, 4)), 8, 4, 3);
  cfg.val_files = cfg.train_files;
  cfg.objective = Objective::Mlm;
  cfg.mask_prob = 1.0;  // every residue selected: the targets are all the residues
  DataModule m(cfg);
  int64_t targets = 0, real = 0;
  for (const Batch& b : m.eval_batches(0)) {
    targets += b.num_targets();
    real += std::count(b.key_mask.begin(), b.key_mask.end(), 1);
  }
  EXPECT_EQ(targets, m.fasta_stats().residues / 2);  // train and val files are the same file
  EXPECT_EQ(real, targets + 2 * 3);                   // plus bos and eos of each record
}

TEST(ProteinBatching, EachEpochVisitsEveryRecordOnce) {
  TempDir dir;
  DataModule m(make_config(dir.write("p.fa", random_fasta(7, 5, 5, 10)), 8, 3, 4));
  std::vector<std::string> rows;
  for (int step = 0; step < 5; ++step) {  // 15 rows: two full epochs and one row
    const Batch b = m.next_train_batch();
    for (int64_t r = 0; r < 3; ++r)
      rows.push_back(
          m.vocab().decode(std::vector<int32_t>(b.inputs.begin() + r * 8 + 1, b.inputs.begin() + r * 8 + 6)));
  }
  const std::set<std::string> epoch0(rows.begin(), rows.begin() + 7), epoch1(rows.begin() + 7, rows.begin() + 14);
  EXPECT_EQ(epoch0.size(), 7u);
  EXPECT_EQ(epoch0, epoch1);
  EXPECT_NE(std::vector<std::string>(rows.begin(), rows.begin() + 7),
            std::vector<std::string>(rows.begin() + 7, rows.begin() + 14));  // reshuffled
  EXPECT_EQ(m.cursor().epoch, 2);
  EXPECT_EQ(m.cursor().position, 1);
}

TEST(ProteinBatching, SameSeedSameBatchesDifferentSeedDifferent) {
  TempDir dir;
  const std::string file = dir.write("p.fa", random_fasta(50, 5, 40, 11));
  for (const char* objective : {"causal", "mlm"}) {
    DataConfig cfg = make_config(file, 24, 4, 1);
    cfg.objective = parse_objective(objective);
    DataModule a(cfg), b(cfg);
    cfg.seed = 2;
    DataModule c(cfg);
    for (int i = 0; i < 5; ++i) {
      const Batch x = a.next_train_batch();
      EXPECT_TRUE(same(x, b.next_train_batch()));
      EXPECT_FALSE(same(x, c.next_train_batch()));
    }
  }
}

TEST(ProteinBatching, CursorRestoreGivesIdenticalBatches) {
  TempDir dir;
  const std::string file = dir.write("p.fa", random_fasta(9, 3, 30, 12));  // short epochs: restores cross them
  for (const char* objective : {"causal", "mlm"})
    for (bool pack : {false, true}) {
      SCOPED_TRACE(std::string(objective) + (pack ? " packed" : " per-record"));
      DataConfig cfg = make_config(file, 12, 4, 6);
      cfg.objective = parse_objective(objective);
      cfg.pack = pack;
      expect_resume_identical(cfg, 5, 14);
    }
}

TEST(ProteinBatching, RestoreRejectsACursorFromOtherSettingsAndKeepsState) {
  TempDir dir;
  const std::string file = dir.write("p.fa", random_fasta(9, 3, 30, 13));
  DataModule a(make_config(file, 12, 4, 6)), twin(make_config(file, 12, 4, 6)), other(make_config(file, 12, 2, 6));
  a.next_train_batch();
  twin.next_train_batch();
  EXPECT_THROW(a.restore(other.cursor()), std::invalid_argument);
  DataCursor corrupt = a.cursor();
  corrupt.rng_state = "garbage";
  EXPECT_THROW(a.restore(corrupt), std::invalid_argument);
  corrupt = a.cursor();
  corrupt.position = 1000;
  EXPECT_THROW(a.restore(corrupt), std::invalid_argument);
  EXPECT_TRUE(same(a.next_train_batch(), twin.next_train_batch()));
}

TEST(ProteinBatching, EvalCoversValidationInOrderIndependentOfTraining) {
  TempDir dir;
  DataConfig cfg = make_config(dir.write("p.fa", random_fasta(40, 3, 9, 14)), 12, 4, 6);
  cfg.val_files = {dir.write("v.fa", random_fasta(10, 3, 9, 15))};
  for (const char* objective : {"causal", "mlm"}) {
    cfg.objective = parse_objective(objective);
    DataModule m(cfg);
    const std::vector<Batch> before = m.eval_batches(0);
    ASSERT_EQ(before.size(), 3u);  // 10 records in rows of 4: 4 + 4 + 2
    EXPECT_EQ(before[2].batch, 2);
    EXPECT_EQ(before[2].inputs.size(), 24u);
    for (int i = 0; i < 3; ++i) m.next_train_batch();
    const std::vector<Batch> after = m.eval_batches(0);
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(same(before[i], after[i]));
    ASSERT_EQ(m.eval_batches(2).size(), 2u);
    EXPECT_TRUE(same(m.eval_batches(2)[1], before[1]));
  }
  cfg.objective = Objective::Causal;
  DataModule m(cfg);
  // Causal rows in file order: "<bos>" + record i residues.
  const std::string val = random_fasta(10, 3, 9, 15);
  std::vector<std::string> records;
  std::istringstream lines(val);
  for (std::string line; std::getline(lines, line);)
    if (line[0] != '>') records.push_back(line);
  ASSERT_EQ(records.size(), 10u);
  size_t row = 0;
  for (const Batch& b : m.eval_batches(0))
    for (int64_t r = 0; r < b.batch; ++r, ++row) {
      const auto begin = b.inputs.begin() + r * 12;
      const auto real = std::count(b.key_mask.begin() + r * 12, b.key_mask.begin() + r * 12 + 12, 1);
      EXPECT_EQ(m.vocab().decode(std::vector<int32_t>(begin, begin + real)), "<bos>" + records[row]);
    }
  EXPECT_EQ(row, 10u);
}

// ---- proteins, packed ----

TEST(ProteinBatching, PackedRowsRunTheFramedRecordsEndToEnd) {
  TempDir dir;
  DataConfig cfg = make_config(dir.write("p.fa", ">a\nMKV\n>b\nACDEF\n>c\nWY\n"), 8, 2, 3);
  cfg.pack = true;
  DataModule m(cfg);
  const Vocab& v = m.vocab();
  // Stream of inputs over several batches; each causal row's last target is the next row's first input.
  std::vector<int32_t> stream;
  int32_t pending = -1;
  for (int step = 0; step < 6; ++step) {  // 12 rows x 8 = 96 tokens = 6 epochs of 16 framed tokens
    const Batch b = m.next_train_batch();
    EXPECT_EQ(std::count(b.key_mask.begin(), b.key_mask.end(), 1), 16);
    for (int64_t r = 0; r < 2; ++r) {
      const int32_t* in = b.inputs.data() + r * 8;
      const int32_t* tg = b.targets.data() + r * 8;
      if (pending >= 0) {
        EXPECT_EQ(in[0], pending);
      }
      for (int t = 0; t + 1 < 8; ++t) EXPECT_EQ(tg[t], in[t + 1]);
      stream.insert(stream.end(), in, in + 8);
      pending = tg[7];
    }
  }
  // Each 16-token epoch is the three framed records in some order.
  for (int e = 0; e < 6; ++e) {
    const std::string text = v.decode(std::vector<int32_t>(stream.begin() + e * 16, stream.begin() + e * 16 + 16));
    std::multiset<std::string> records;
    for (size_t p = 0; p < text.size();) {
      const size_t eos = text.find("<eos>", p);
      ASSERT_NE(eos, std::string::npos) << text;
      const size_t end = eos + 5;
      records.insert(text.substr(p, end - p));
      p = end;
    }
    EXPECT_EQ(records, (std::multiset<std::string>{"<bos>MKV<eos>", "<bos>ACDEF<eos>", "<bos>WY<eos>"})) << text;
  }
}

TEST(ProteinBatching, PackedEvalCoversTheValidationStream) {
  TempDir dir;
  DataConfig cfg = make_config(dir.write("p.fa", ">a\nMKV\n"), 4, 2, 3);
  cfg.val_files = {dir.write("v.fa", ">x\nACDEF\n>y\nWY\n")};
  cfg.pack = true;
  DataModule m(cfg);
  // Stream: <bos>ACDEF<eos><bos>WY<eos> = 11 tokens -> 10 targets in rows of 4: 4 + 4 + 2.
  const std::vector<Batch> eval = m.eval_batches(0);
  ASSERT_EQ(eval.size(), 2u);
  EXPECT_EQ(eval[1].batch, 1);
  std::vector<int32_t> targets;
  for (const Batch& b : eval)
    for (int32_t t : b.targets)
      if (t != kIgnoreIndex) targets.push_back(t);
  EXPECT_EQ(m.vocab().decode(targets), "ACDEF<eos><bos>WY<eos>");
}

}  // namespace
}  // namespace pf
