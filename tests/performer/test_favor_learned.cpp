// A trained projection W (learned feature maps, performer/favor.h; ModelConfig::learned_features) through
// every fused kernel the favor and favor-local models train with: causal and bidirectional FAVOR+, causal
// and bidirectional favor-local. Finite differences of W (with q, k, v), the fused dW against the
// gradient autograd gives through the composed O(T^2) references, the same bits at 1 and 2 threads, and
// the handle's rules: a fixed projection given as a Var changes nothing, W may be the only input that
// wants a gradient, a trained W is version-checked.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/parallel.h"
#include "performer/favor_local.h"
#include "test_favor_util.h"

using namespace pf;
using pf::test::randn;
using pf::test::rel_max_diff;

namespace {

// The four fused nodes that take a projection.
enum class Kernel { FavorCausal, FavorBidirectional, LocalCausal, LocalBidirectional };
const Kernel kKernels[] = {Kernel::FavorCausal, Kernel::FavorBidirectional, Kernel::LocalCausal,
                           Kernel::LocalBidirectional};

bool causal(Kernel kernel) {
  return kernel == Kernel::FavorCausal || kernel == Kernel::LocalCausal;
}
bool local(Kernel kernel) {
  return kernel == Kernel::LocalCausal || kernel == Kernel::LocalBidirectional;
}

std::string name(Kernel kernel) {
  switch (kernel) {
    case Kernel::FavorCausal:
      return "favor/causal";
    case Kernel::FavorBidirectional:
      return "favor/bidirectional";
    case Kernel::LocalCausal:
      return "favor-local/causal";
    case Kernel::LocalBidirectional:
      return "favor-local/bidirectional";
  }
  return "";
}

// One call: the kernel, its options, favor-local's window and an optional key mask (bidirectional only).
struct Call {
  Kernel kernel = Kernel::FavorCausal;
  FavorOptions opt;
  int64_t window = 3;
  const Tensor* mask = nullptr;
  std::string what() const {
    return name(kernel) + (opt.kind == FeatureKind::Relu ? " relu" : "") + (opt.feature_a != 0.0f ? " favor++" : "") +
           (opt.key_shift == KeyShift::Shared ? " shared" : "") +
           (local(kernel) ? " window " + std::to_string(window) : "") + (mask ? " masked" : "");
  }
};

// The fused node (reference = false) or the composed reference of the same computation.
Var attend(const Call& c, const Var& q, const Var& k, const Var& v, const Var& w, bool reference = false) {
  switch (c.kernel) {
    case Kernel::FavorCausal:
      return reference ? favor_attention_reference(q, k, v, w, true, c.opt) : favor_attention(q, k, v, w, true, c.opt);
    case Kernel::FavorBidirectional:
      return reference ? favor_attention_reference(q, k, v, w, false, c.opt, c.mask)
                       : favor_attention(q, k, v, w, false, c.opt, c.mask);
    case Kernel::LocalCausal:
      return reference ? favor_local_attention_reference(q, k, v, w, c.window, c.opt, true)
                       : favor_local_attention(q, k, v, w, c.window, c.opt);
    case Kernel::LocalBidirectional:
      return reference ? favor_local_attention_reference(q, k, v, w, c.window, c.opt, false, c.mask)
                       : favor_local_bidirectional(q, k, v, w, c.window, c.opt, c.mask);
  }
  return Var();
}

FavorOptions options(FeatureKind kind, KeyShift shift, float a, int64_t chunk) {
  FavorOptions opt = test::favor_options(shift, a, chunk);
  opt.kind = kind;
  return opt;
}

// The output and the gradients of q, k, v and W (W trained) for a fixed random output gradient.
struct Grads {
  Tensor out, dq, dk, dv, dw;
};
Grads run(const Call& c, const test::FavorInputs& in, bool reference = false, uint64_t seed = 7) {
  Var q(in.q.clone(), true), k(in.k.clone(), true), v(in.v.clone(), true), w(in.w.clone(), true);
  Var out = attend(c, q, k, v, w, reference);
  Grads r;
  r.out = out.value().clone();
  out.backward(randn(out.shape(), seed));
  r.dq = q.grad();
  r.dk = k.grad();
  r.dv = v.grad();
  r.dw = w.grad();
  return r;
}

// Gradients agree to 1e-4 of the largest reference entry, plus 1e-5 absolute (test_favor.cpp's rule).
void expect_grad_close(const Tensor& fused, const Tensor& ref, const std::string& what) {
  ASSERT_TRUE(fused.defined() && ref.defined()) << what << ": no gradient";
  ASSERT_EQ(fused.shape(), ref.shape()) << what;
  float scale = 0.0f;
  for (int64_t i = 0; i < ref.numel(); ++i) scale = std::max(scale, std::fabs(ref.data()[i]));
  EXPECT_LE(max_abs_diff(fused, ref), 1e-4f * scale + 1e-5f) << what << " (largest entry " << scale << ")";
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

// Small shapes for finite differences: B 2, H 2, T 9, D 4, Dv 3, M 6 (two orthogonal blocks), chunks of 4
// (three chunks, the last of one position), favor-local window 3 (a far field from position 3 on).
constexpr int64_t kB = 2, kH = 2, kT = 9, kD = 4, kDv = 3, kM = 6, kChunk = 4;

test::FavorInputs small_inputs(uint64_t seed) {
  Generator gen(seed);
  const test::QKV d = test::random_qkv(kB, kH, kT, kD, kDv, 0.7f, gen);
  return {d.q, d.k, d.v, orthogonal_random_features(kM, kD, gen)};
}

// Batch 1 has positions 2 and T - 2, T - 1 padded; batch 0 is all real.
Tensor small_mask() {
  Tensor m = Tensor::ones({kB, kT});
  for (int64_t t : {int64_t{2}, kT - 2, kT - 1}) m.data()[kT + t] = 0.0f;
  return m;
}

// Every call the finite differences cover: the four kernels with FAVOR+ per-key shifts, FAVOR++, shared
// shifts, the bidirectional ones also with padded keys, and ReLU features for favor.
std::vector<Call> small_calls(const Tensor* mask) {
  std::vector<Call> calls;
  for (Kernel kernel : kKernels) {
    for (float a : {0.0f, -0.1f})
      calls.push_back({kernel, options(FeatureKind::Softmax, KeyShift::PerKey, a, kChunk), 3, nullptr});
    calls.push_back({kernel, options(FeatureKind::Softmax, KeyShift::Shared, 0.0f, kChunk), 3, nullptr});
    if (!causal(kernel))
      calls.push_back({kernel, options(FeatureKind::Softmax, KeyShift::PerKey, 0.0f, kChunk), 3, mask});
    if (!local(kernel))
      calls.push_back({kernel, options(FeatureKind::Relu, KeyShift::PerKey, 0.0f, kChunk), 3, nullptr});
  }
  return calls;
}

}  // namespace

// Finite differences of W, q, k and v through each fused node (the shifts are constants of the backward:
// they move only eps terms, far below the tolerance). A backward scaled by 1.05 fails, and so does a check
// of W alone when only W's gradient is 5% off: that check has the power to see it.
TEST(LearnedProjection, FusedGradcheck) {
  const Tensor mask = small_mask();
  for (const Call& c : small_calls(&mask)) {
    test::FavorInputs in = small_inputs(11);
    if (c.opt.kind == FeatureKind::Relu) {
      // A unit step h of W moves u_if by at most h |x'_i| (~0.01 here), one of q or k by at most
      // h |w_f| D^(-1/4): both below the margin, so no u crosses the kink at 0.
      test::away_from_relu_kinks(in.q, in.w, 1);
      test::away_from_relu_kinks(in.k, in.w, 2);
    }
    const std::vector<Tensor> inputs = {in.q, in.k, in.v, in.w};
    // W enters through a reshape (an identity here), the one node whose gradient the second planted bug
    // scales: what reaches W, and nothing else.
    const GradcheckFn fn = [&](const std::vector<Var>& x) {
      return attend(c, x[0], x[1], x[2], reshape(x[3], {kM, kD}));
    };
    const auto good = gradcheck(fn, inputs);
    EXPECT_TRUE(good.ok) << c.what() << ": " << good.message;
    const auto bad = [&] {
      GradientHookGuard scaled([](const char*, Tensor& g) { g.vec() *= 1.05f; });
      return gradcheck(fn, inputs);
    }();
    EXPECT_FALSE(bad.ok) << c.what() << ": gradcheck missed a backward scaled by 1.05";
    GradcheckOptions only_w;
    only_w.check = {false, false, false, true};
    const auto bad_w = [&] {
      GradientHookGuard scaled([](const char* op, Tensor& g) {
        if (std::string(op) == "reshape") g.vec() *= 1.05f;
      });
      return gradcheck(fn, inputs, only_w);
    }();
    EXPECT_FALSE(bad_w.ok) << c.what() << ": gradcheck of W missed its gradient scaled by 1.05";
  }
}

namespace {

// key_mask (B, T) at the kernel tests' shapes: batch 0 has position 3 and its last 7 positions padded.
Tensor kernel_mask(int64_t T) {
  Tensor m = Tensor::ones({test::favor_shapes::kB, T});
  for (int64_t t = T - 7; t < T; ++t) m.data()[t] = 0.0f;
  m.data()[3] = 0.0f;
  return m;
}

}  // namespace

// The fused dW (with the output and dq, dk, dv) against autograd through the composed reference, at the
// kernel tests' shapes (B 2, H 2, D 8, Dv 6, M 16, chunks of 16): T = 37 (chunks of 16, 16 and 5) and 32
// (a multiple), favor-local windows inside a chunk, spanning chunks and longer than the sequence; FAVOR+
// with per-key and shared shifts, FAVOR++, padded keys for the bidirectional nodes, ReLU for favor.
TEST(LearnedProjection, FusedEqualsComposedReference) {
  using test::favor_shapes::kChunk;
  for (int64_t T : {37, 32}) {
    const Tensor mask = kernel_mask(T);
    for (Kernel kernel : kKernels)
      for (int64_t window : local(kernel) ? std::vector<int64_t>{1, 5, 21, 40} : std::vector<int64_t>{3}) {
        std::vector<Call> calls;
        for (float a : {0.0f, -0.1f})
          calls.push_back({kernel, options(FeatureKind::Softmax, KeyShift::PerKey, a, kChunk), window, nullptr});
        calls.push_back({kernel, options(FeatureKind::Softmax, KeyShift::Shared, 0.0f, kChunk), window, nullptr});
        if (!causal(kernel))
          calls.push_back({kernel, options(FeatureKind::Softmax, KeyShift::PerKey, -0.1f, kChunk), window, &mask});
        if (!local(kernel))
          calls.push_back({kernel, options(FeatureKind::Relu, KeyShift::PerKey, 0.0f, kChunk), window, nullptr});
        for (const Call& c : calls) {
          const test::FavorInputs in = test::make_favor_inputs(T, 100 + T + window);
          const std::string what = c.what() + " T " + std::to_string(T);
          const Grads fused = run(c, in), ref = run(c, in, true);
          EXPECT_LT(rel_max_diff(fused.out, ref.out), 1e-5) << what;
          // A window that covers the sequence leaves no far field: W is not used, its gradient is exactly 0.
          const bool far = !local(kernel) || window < T;
          EXPECT_EQ(fused.dw.vec().cwiseAbs().maxCoeff() > 0.0f, far) << what;
          expect_grad_close(fused.dw, ref.dw, what + " dW");
          expect_grad_close(fused.dq, ref.dq, what + " dq");
          expect_grad_close(fused.dk, ref.dk, what + " dk");
          expect_grad_close(fused.dv, ref.dv, what + " dv");
        }
      }
  }
}

// dW is summed from one partial (M, D) buffer per (batch, head), added in bh order: the same bits at 1 and
// 2 threads (the heads split over the threads), like every other output and gradient of the nodes.
TEST(LearnedProjection, SameBitsAtOneAndTwoThreads) {
  const int threads_before = get_num_threads();
  const int64_t T = 37;
  const test::FavorInputs in = test::make_favor_inputs(T, 40);
  const Tensor mask = kernel_mask(T);
  for (Kernel kernel : kKernels)
    for (float a : {0.0f, -0.1f}) {
      const Call c{kernel, options(FeatureKind::Softmax, KeyShift::PerKey, a, test::favor_shapes::kChunk), 5,
                   causal(kernel) ? nullptr : &mask};
      Grads g[2];
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        g[threads - 1] = run(c, in);
      }
      set_num_threads(threads_before);
      EXPECT_TRUE(same_bits(g[0].dw, g[1].dw)) << c.what() << ": dW";
      EXPECT_TRUE(same_bits(g[0].out, g[1].out)) << c.what() << ": output";
      EXPECT_TRUE(same_bits(g[0].dq, g[1].dq)) << c.what() << ": dq";
      EXPECT_TRUE(same_bits(g[0].dk, g[1].dk)) << c.what() << ": dk";
      EXPECT_TRUE(same_bits(g[0].dv, g[1].dv)) << c.what() << ": dv";
    }
}

// Training W changes nothing else: q, k, v get the same bits whether W is trained, a Var without grad or
// a Tensor (which gets no gradient and records no input); and W alone may want a gradient (q, k, v
// constants), receiving the same bits as when everything is trained.
TEST(LearnedProjection, TrainingWChangesNothingElse) {
  const int64_t T = 37;
  const test::FavorInputs in = test::make_favor_inputs(T, 50);
  const Tensor mask = kernel_mask(T);
  for (Kernel kernel : kKernels) {
    const Call c{kernel, options(FeatureKind::Softmax, KeyShift::PerKey, 0.0f, test::favor_shapes::kChunk), 5,
                 causal(kernel) ? nullptr : &mask};
    const Grads trained = run(c, in);
    const Tensor g = randn(trained.out.shape(), 7);  // run()'s output gradient
    {                                                // a fixed projection given as a Var
      Var q(in.q.clone(), true), k(in.k.clone(), true), v(in.v.clone(), true), w(in.w.clone(), false);
      Var out = attend(c, q, k, v, w);
      out.backward(g);
      EXPECT_TRUE(same_bits(out.value(), trained.out)) << c.what();
      EXPECT_TRUE(same_bits(q.grad(), trained.dq)) << c.what();
      EXPECT_TRUE(same_bits(k.grad(), trained.dk)) << c.what();
      EXPECT_TRUE(same_bits(v.grad(), trained.dv)) << c.what();
      EXPECT_FALSE(w.has_grad()) << c.what();
    }
    {  // W alone
      Var w(in.w.clone(), true);
      Var out = attend(c, Var(in.q), Var(in.k), Var(in.v), w);
      ASSERT_TRUE(out.requires_grad()) << c.what();
      out.backward(g);
      EXPECT_TRUE(same_bits(w.grad(), trained.dw)) << c.what();
    }
  }
  // The Tensor overload is the fixed projection.
  Var q(in.q.clone(), true), k(in.k.clone(), true), v(in.v.clone(), true);
  Var out = favor_attention(q, k, v, in.w, true, options(FeatureKind::Softmax, KeyShift::PerKey, 0.0f, 16));
  out.backward(randn(out.shape(), 7));
  const Grads trained = run({Kernel::FavorCausal, options(FeatureKind::Softmax, KeyShift::PerKey, 0.0f, 16)}, in);
  EXPECT_TRUE(same_bits(q.grad(), trained.dq));
  EXPECT_TRUE(same_bits(out.value(), trained.out));
}

// A trained W is an input of the node like q, k and v: changing it in place before the backward (an
// optimizer step) is refused. A fixed projection is copied by the node: a redraw in between changes
// nothing. An undefined projection handle is refused with the shape message.
TEST(LearnedProjection, TrainedWIsVersionCheckedAFixedOneIsCopied) {
  const test::FavorInputs in = test::make_favor_inputs(21, 60);
  const Tensor mask = kernel_mask(21);
  for (Kernel kernel : kKernels) {
    const Call c{kernel, options(FeatureKind::Softmax, KeyShift::PerKey, 0.0f, 8), 5, causal(kernel) ? nullptr : &mask};
    const Grads trained = run(c, in);
    for (bool requires_grad : {true, false}) {
      Var q(in.q.clone(), true), k(in.k.clone(), true), v(in.v.clone(), true), w(in.w.clone(), requires_grad);
      Var out = attend(c, q, k, v, w);
      w.mutable_value().vec() *= 2.0f;
      if (requires_grad) {
        EXPECT_THROW(out.backward(randn(out.shape(), 7)), std::logic_error) << c.what();
        Tape::current().clear();
      } else {
        out.backward(randn(out.shape(), 7));
        EXPECT_TRUE(same_bits(q.grad(), trained.dq)) << c.what() << ": the backward read the changed W";
      }
    }
    try {
      attend(c, Var(in.q), Var(in.k), Var(in.v), Var());
      ADD_FAILURE() << c.what() << ": an undefined projection was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("projection must be (M, D)"), std::string::npos) << e.what();
    }
  }
}
