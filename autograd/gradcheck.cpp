#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "base/random.h"
#include "autograd/ops.h"

namespace pf {

namespace {

double probe(const GradcheckFn& f, const std::vector<Tensor>& inputs, const Tensor& r) {
  NoGradGuard no_grad;
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t, false);
  Tensor out = f(vars).value();
  double s = 0.0;
  for (int64_t i = 0; i < out.numel(); ++i) s += static_cast<double>(r.data()[i]) * out.data()[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult result;
  Generator gen(opt.seed);
  // Analytic gradient of the probe loss.
  // A private tape for the analytic pass: the caller's tape (a graph recorded but not yet
  // back-propagated) is neither cleared nor run.
  TapeScope scope;
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.clone(), true);
  Var out = f(vars);
  Tensor r = Tensor::randn(out.shape(), gen);
  if (!out.requires_grad()) {
    result.ok = false;
    result.message = "gradcheck: output does not require a gradient";
    return result;
  }
  out.backward(r);
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!opt.check.empty() && (k >= opt.check.size() || !opt.check[k])) continue;
    Tensor grad = vars[k].has_grad() ? vars[k].grad() : Tensor(inputs[k].shape());
    for (int d = 0; d < opt.directions; ++d) {
      Tensor v = Tensor::randn(inputs[k].shape(), gen);
      const double norm = std::sqrt(static_cast<double>(v.vec().squaredNorm()));
      if (norm == 0.0) continue;
      v.vec() /= static_cast<float>(norm);
      double analytic = 0.0;
      for (int64_t i = 0; i < v.numel(); ++i) analytic += static_cast<double>(grad.data()[i]) * v.data()[i];
      std::vector<Tensor> plus, minus;
      for (const Tensor& t : inputs) {
        plus.push_back(t.clone());
        minus.push_back(t.clone());
      }
      plus[k].vec() += opt.step * v.vec();
      minus[k].vec() -= opt.step * v.vec();
      const double numeric = (probe(f, plus, r) - probe(f, minus, r)) / (2.0 * opt.step);
      const double err = std::fabs(analytic - numeric);
      const double scale = std::max(std::fabs(analytic), std::fabs(numeric));
      const double rel = scale > 0 ? err / scale : 0.0;
      if (err > opt.atol) result.worst_rel_error = std::max(result.worst_rel_error, rel);
      if (err > opt.atol + opt.rtol * scale && result.ok) {
        result.ok = false;
        std::ostringstream os;
        os << "gradcheck: input " << k << " shape " << shape_str(inputs[k].shape()) << " direction " << d
           << ": analytic " << analytic << " vs numeric " << numeric << " (relative error " << rel << ")";
        result.message = os.str();
      }
    }
  }
  return result;
}

}  // namespace pf
