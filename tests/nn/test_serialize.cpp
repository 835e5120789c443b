// autograd/serialize.h: Tensors through cereal (binary and text archives) and the file header
// (magic, kind, version) that every file of the project starts with.
#include <gtest/gtest.h>

#include <cereal/archives/binary.hpp>
#include <cereal/archives/json.hpp>
#include <cmath>
#include <limits>
#include <sstream>

#include "autograd/serialize.h"
#include "base/file_header.h"
#include "nn_test_util.h"
#include "tests/archive_round_trip.h"

using namespace pf;

namespace {
template <class Out, class In>
Tensor round_trip(const Tensor& t) {
  return test::archive_round_trip<Out, In>(t);
}
}  // namespace

TEST(Serialize, TensorRoundTripsBitExactly) {
  Tensor t = test::randn({3, 4, 5}, 1);
  t.data()[0] = -0.f;
  t.data()[1] = std::numeric_limits<float>::denorm_min();
  t.data()[2] = std::numeric_limits<float>::infinity();
  for (const Tensor& x : {t, Tensor::scalar(2.5f), Tensor({0, 3})}) {
    Tensor b = round_trip<cereal::BinaryOutputArchive, cereal::BinaryInputArchive>(x);
    EXPECT_TRUE(test::bitwise_equal(b, x)) << shape_str(x.shape());
    EXPECT_FALSE(x.numel() > 0 && b.shares_storage_with(x));
  }
  // Text archives store a plain list (finite values round-trip exactly too).
  Tensor finite = test::randn({2, 3}, 2);
  EXPECT_TRUE(test::bitwise_equal(round_trip<cereal::JSONOutputArchive, cereal::JSONInputArchive>(finite), finite));
}

TEST(Serialize, BinaryLayoutIsShapeThenRawFloats) {
  std::stringstream ss;
  {
    cereal::BinaryOutputArchive ar(ss);
    ar(Tensor::from_vector({1.f, 2.f}, {2, 1}));
  }
  // uint64 count (2), two int64 dims, two floats.
  EXPECT_EQ(ss.str().size(), 8u + 2 * 8u + 2 * 4u);
}

TEST(Serialize, CorruptShapeIsRejectedBeforeAllocating) {
  std::stringstream ss;
  {
    cereal::BinaryOutputArchive ar(ss);
    ar(std::vector<int64_t>{int64_t{1} << 40, int64_t{1} << 40});
  }
  cereal::BinaryInputArchive ar(ss);
  Tensor t;
  EXPECT_THROW(ar(t), std::runtime_error);
}

TEST(Serialize, UndefinedTensorCannotBeSaved) {
  std::stringstream ss;
  cereal::BinaryOutputArchive ar(ss);
  EXPECT_THROW(ar(Tensor()), std::invalid_argument);
}

TEST(Serialize, FileHeaderChecksMagicKindAndVersion) {
  auto header = [](const std::string& kind, uint32_t version) {
    std::stringstream ss;
    cereal::BinaryOutputArchive ar(ss);
    write_file_header(ar, kind, version);
    return ss.str();
  };
  auto read = [](const std::string& bytes, const std::string& kind, uint32_t max_version) -> std::string {
    std::stringstream ss(bytes);
    cereal::BinaryInputArchive ar(ss);
    try {
      read_file_header(ar, kind, max_version, "f.bin");
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "ok";
  };
  EXPECT_EQ(read(header("state_dict", 1), "state_dict", 1), "ok");
  EXPECT_EQ(read(header("state_dict", 1), "state_dict", 2), "ok");
  std::string e = read(header("optimizer", 1), "state_dict", 1);
  EXPECT_NE(e.find("f.bin: is a 'optimizer' file, expected a 'state_dict' file"), std::string::npos) << e;
  e = read(header("state_dict", 7), "state_dict", 1);
  EXPECT_NE(e.find("f.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("version 7"), std::string::npos) << e;
  e = read(std::string("GARBAGE!xxxxxxxxxxxxxxxx"), "state_dict", 1);
  EXPECT_NE(e.find("f.bin: not a performer-cpp state_dict file"), std::string::npos) << e;
  e = read(std::string("PF"), "state_dict", 1);
  EXPECT_NE(e.find("shorter than its header"), std::string::npos) << e;
  // Right magic, then garbage: the kind's length is checked before anything is allocated.
  e = read(std::string("PFCPPBIN") + std::string(16, '\xff'), "state_dict", 1);
  EXPECT_NE(e.find("corrupt"), std::string::npos) << e;
}
