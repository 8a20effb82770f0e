// Specification of the losses and metrics: values, gradients, stability, errors and buffer reuse.
#define BOOST_TEST_MODULE losses
#include <boost/test/unit_test.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "layercache/errors.hpp"
#include "layercache/losses.hpp"
#include "layercache/rng.hpp"

using namespace layercache;

// ----- allocation counting ----------------------------------------------------------------
// Armadillo allocates matrix memory with posix_memalign, everything else uses operator new;
// both are counted while g_counting is on, so a test can assert that a call allocates nothing.

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
void count_allocation() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
}
}  // namespace

extern "C" int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  using Real = int (*)(void**, std::size_t, std::size_t);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "posix_memalign"));
  count_allocation();
  return real(out, alignment, size);
}

// Replacement allocation functions: operator delete calls free on memory from malloc, which
// GCC cannot see through inlining and would flag as mismatched.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  count_allocation();
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

/// Number of heap allocations made by f().
long allocations_during(const std::function<void()>& f) {
  g_allocations = 0;
  g_counting = true;
  f();
  g_counting = false;
  return g_allocations.load();
}

// ----- helpers ----------------------------------------------------------------------------

/// A (rows × cols) matrix of uniform entries in [low, high).
arma::mat uniform(std::size_t rows, std::size_t cols, Rng& rng, double low = -2, double high = 2) {
  arma::mat m(rows, cols);
  for (double& v : m) v = rng.uniform(low, high);
  return m;
}

/// `batch` labels below n_classes.
arma::uvec random_labels(std::size_t n_classes, std::size_t batch, Rng& rng) {
  arma::uvec labels(batch);
  for (auto& l : labels) l = rng.below(n_classes);
  return labels;
}

/// Columns of positive entries summing to one.
arma::mat random_distributions(std::size_t rows, std::size_t cols, Rng& rng) {
  arma::mat m = uniform(rows, cols, rng, 0.1, 1.0);
  m.each_row() /= arma::sum(m, 0);
  return m;
}

/// Labels as one-hot columns.
arma::mat one_hot_columns(const arma::uvec& labels, std::size_t n_classes) {
  arma::mat m(n_classes, labels.n_elem, arma::fill::zeros);
  for (std::size_t c = 0; c < labels.n_elem; ++c) m(labels[c], c) = 1.0;
  return m;
}

/// |a − b| / max(|a| + |b|, floor), the relative error used throughout the tests. The floor
/// of 1e-6 matches layercache/testing.hpp: an entry that is zero in exact arithmetic is
/// compared absolutely. The stencil below turns an unchanged loss value L into
/// (−L + 8L − 8L + L)/12h ≈ 2e-13 rather than 0 (round-off of 7L − 8L), which a floor of 1e-8
/// would inflate to a relative error of 2e-5; with 1e-6 it is 2e-7, and every gradient entry
/// in these tests is either zero or at least 1e-3.
double relative_error(double a, double b, double floor = 1e-6) {
  return std::abs(a - b) / std::max(std::abs(a) + std::abs(b), floor);
}

/// Largest relative error between the loss's gradient and a four-point central difference
///   (−L(v+2h) + 8 L(v+h) − 8 L(v−h) + L(v−2h)) / 12h   (truncation error O(h⁴))
/// over every entry v of y, in double.
double gradient_error(const Loss& loss, const arma::mat& y, const Targets<double>& targets) {
  arma::mat grad;
  loss.value_and_grad(y, targets, &grad);
  BOOST_TEST_REQUIRE((grad.n_rows == y.n_rows && grad.n_cols == y.n_cols));
  const double h = 1e-4;
  arma::mat probe = y;
  const auto at = [&](std::size_t i, double offset) {
    probe[i] = y[i] + offset;
    const double v = loss.value_and_grad(probe, targets, nullptr);
    probe[i] = y[i];
    return v;
  };
  double worst = 0;
  for (std::size_t i = 0; i < y.n_elem; ++i) {
    const double numeric = (-at(i, 2 * h) + 8 * at(i, h) - 8 * at(i, -h) + at(i, -2 * h)) / (12 * h);
    worst = std::max(worst, relative_error(grad[i], numeric));
  }
  return worst;
}

/// Largest |a − b| / max |b| over two gradients (b the reference).
double max_relative_difference(const arma::mat& a, const arma::mat& b) {
  return arma::abs(a - b).max() / std::max(arma::abs(b).max(), 1e-30);
}

constexpr double kGradTolerance = 1e-6;

}  // namespace

// ----- values on hand-computed examples ---------------------------------------------------

// Columns are samples: y = [1 2; 3 4], t = [0 2; 1 1], so d = y − t = [1 0; 2 3].
const arma::mat kY{{1, 2}, {3, 4}};
const arma::mat kT{{0, 2}, {1, 1}};

BOOST_AUTO_TEST_CASE(mse_averages_squared_errors_over_features_and_batch_by_default) {
  const auto r = MeanSquaredError()(kY, kT);
  BOOST_TEST(r.value == 14.0 / 4, boost::test_tools::tolerance(1e-12));
  const arma::mat expected{{0.5, 0}, {1, 1.5}};  // 2 d / (2 features · 2 samples)
  BOOST_TEST(arma::approx_equal(r.grad, expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(mse_with_summed_features_averages_only_over_the_batch) {
  const auto r = MeanSquaredError({.features = FeatureReduction::sum})(kY, kT);
  BOOST_TEST(r.value == 14.0 / 2, boost::test_tools::tolerance(1e-12));
  const arma::mat expected{{1, 0}, {2, 3}};  // 2 d / 2 samples
  BOOST_TEST(arma::approx_equal(r.grad, expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(mae_averages_absolute_errors) {
  const auto r = MeanAbsoluteError()(kY, kT);
  BOOST_TEST(r.value == 6.0 / 4, boost::test_tools::tolerance(1e-12));
  const arma::mat expected{{0.25, 0}, {0.25, 0.25}};  // sign(d) / 4, 0 where d = 0
  BOOST_TEST(arma::approx_equal(r.grad, expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(huber_rejects_a_delta_that_is_not_positive_quoting_it_as_given) {
  BOOST_CHECK_EXCEPTION(Huber({.delta = -1.0}), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()) == "huber: Huber needs a positive finite delta, got -1";
  });
}

BOOST_AUTO_TEST_CASE(huber_is_quadratic_inside_delta_and_linear_outside) {
  const arma::mat y{{0.5, -2}, {0, 3}};
  const arma::mat t(2, 2, arma::fill::zeros);
  const auto r = Huber(1.0)(y, t);
  // ½·0.5², 1·(2 − ½), 0, 1·(3 − ½), averaged over 4 elements.
  BOOST_TEST(r.value == (0.125 + 1.5 + 0 + 2.5) / 4, boost::test_tools::tolerance(1e-12));
  const arma::mat expected{{0.5 / 4, -0.25}, {0, 0.25}};
  BOOST_TEST(arma::approx_equal(r.grad, expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(huber_threshold_scales_the_linear_part) {
  const arma::mat y(1, 1, arma::fill::value(3.0));
  const auto r = Huber({.delta = 2.0})(y, arma::mat(1, 1, arma::fill::zeros));
  BOOST_TEST(r.value == 2.0 * (3.0 - 1.0), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.grad(0, 0) == 2.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_is_log_sum_exp_minus_the_label_logit) {
  const arma::mat y{{1, 0}, {2, 0}, {3, 0}};
  const arma::uvec labels{2, 0};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const auto r = SoftmaxCrossEntropy()(y, labels);
  BOOST_TEST(r.value == ((lse - 3) + std::log(3.0)) / 2, boost::test_tools::tolerance(1e-12));
  // (softmax − onehot) / batch
  const arma::mat expected{{std::exp(1 - lse) / 2, (1.0 / 3 - 1) / 2},
                           {std::exp(2 - lse) / 2, 1.0 / 6},
                           {(std::exp(3 - lse) - 1) / 2, 1.0 / 6}};
  BOOST_TEST(arma::approx_equal(r.grad, expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_label_smoothing_mixes_in_the_uniform_distribution) {
  const arma::mat y = arma::vec{1, 2, 3};  // one sample
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  // ε = 0.3 over 3 classes: q = (0.1, 0.1, 0.8).
  const double expected = 0.1 * (lse - 1) + 0.1 * (lse - 2) + 0.8 * (lse - 3);
  const auto r = SoftmaxCrossEntropy({.label_smoothing = 0.3})(y, arma::uvec{2});
  BOOST_TEST(r.value == expected, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_with_logits_matches_the_textbook_formula) {
  const arma::mat z{{2, -1, 0}};
  const arma::mat t{{1, 0, 0.5}};
  double expected = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const double p = 1 / (1 + std::exp(-z[i]));
    expected -= t[i] * std::log(p) + (1 - t[i]) * std::log(1 - p);
  }
  const auto r = BinaryCrossEntropyWithLogits()(z, t);
  BOOST_TEST(r.value == expected / 3, boost::test_tools::tolerance(1e-12));
  for (std::size_t i = 0; i < 3; ++i)
    BOOST_TEST(r.grad[i] == (1 / (1 + std::exp(-z[i])) - t[i]) / 3,
               boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_with_labels_equals_with_0_1_targets) {
  const arma::mat z{{2, -1, 0.5, -3}};
  const BinaryCrossEntropyWithLogits loss;
  const auto with_labels = loss(z, arma::uvec{1, 0, 0, 1});
  const auto with_targets = loss(z, arma::mat{{1, 0, 0, 1}});
  BOOST_TEST(with_labels.value == with_targets.value, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(arma::approx_equal(with_labels.grad, with_targets.grad, "absdiff", 1e-15));
}

BOOST_AUTO_TEST_CASE(negative_log_likelihood_is_minus_the_mean_label_log_probability) {
  const arma::mat log_p = arma::log(arma::mat{{0.2, 0.1}, {0.5, 0.1}, {0.3, 0.8}});
  const auto r = NegativeLogLikelihood()(log_p, arma::uvec{1, 2});
  BOOST_TEST(r.value == -(std::log(0.5) + std::log(0.8)) / 2, boost::test_tools::tolerance(1e-12));
  const arma::mat expected{{0, 0}, {-0.5, 0}, {0, -0.5}};
  BOOST_TEST(arma::approx_equal(r.grad, expected, "absdiff", 0.0));
}

// ----- gradients against finite differences -----------------------------------------------

BOOST_AUTO_TEST_CASE(mse_gradient_matches_finite_differences) {
  Rng rng(1);
  const arma::mat y = uniform(4, 5, rng);
  const arma::mat t = uniform(4, 5, rng);
  BOOST_TEST(gradient_error(MeanSquaredError(), y, t) <= kGradTolerance);
  BOOST_TEST(gradient_error(MeanSquaredError({.features = FeatureReduction::sum}), y, t) <=
             kGradTolerance);
}

BOOST_AUTO_TEST_CASE(mae_gradient_matches_finite_differences_away_from_the_kink) {
  Rng rng(2);
  const arma::mat y = uniform(4, 5, rng);
  arma::mat t = y;
  for (double& v : t) v += (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.1, 1.0);
  BOOST_TEST(gradient_error(MeanAbsoluteError(), y, t) <= kGradTolerance);
}

BOOST_AUTO_TEST_CASE(huber_gradient_matches_finite_differences_in_both_regions) {
  Rng rng(3);
  const arma::mat y = uniform(4, 6, rng);
  arma::mat t = y;
  // |d| in [0.1, 0.9] (quadratic) or [1.1, 3] (linear), never near δ = 1.
  for (std::size_t i = 0; i < t.n_elem; ++i)
    t[i] += (i % 2 ? -1 : 1) * (i % 3 ? rng.uniform(0.1, 0.9) : rng.uniform(1.1, 3.0));
  BOOST_TEST(gradient_error(Huber(1.0), y, t) <= kGradTolerance);
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_gradient_matches_finite_differences) {
  Rng rng(4);
  const arma::mat z = uniform(3, 5, rng, -4, 4);
  const arma::mat t = uniform(3, 5, rng, 0, 1);
  BOOST_TEST(gradient_error(BinaryCrossEntropyWithLogits(), z, t) <= kGradTolerance);
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_gradient_matches_finite_differences_with_labels) {
  Rng rng(5);
  const arma::mat y = uniform(5, 4, rng);
  const arma::uvec labels = random_labels(5, 4, rng);
  BOOST_TEST(gradient_error(SoftmaxCrossEntropy(), y, labels) <= kGradTolerance);
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_gradient_matches_finite_differences_with_targets) {
  Rng rng(6);
  const arma::mat y = uniform(5, 4, rng);
  const arma::mat t = random_distributions(5, 4, rng);
  BOOST_TEST(gradient_error(SoftmaxCrossEntropy(), y, t) <= kGradTolerance);
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_gradient_matches_finite_differences_with_smoothing) {
  Rng rng(7);
  const arma::mat y = uniform(5, 4, rng);
  const SoftmaxCrossEntropy loss({.label_smoothing = 0.2});
  BOOST_TEST(gradient_error(loss, y, random_labels(5, 4, rng)) <= kGradTolerance);
  BOOST_TEST(gradient_error(loss, y, random_distributions(5, 4, rng)) <= kGradTolerance);
}

BOOST_AUTO_TEST_CASE(negative_log_likelihood_gradient_matches_finite_differences) {
  Rng rng(8);
  const arma::mat y = uniform(5, 4, rng, -3, -0.1);
  BOOST_TEST(gradient_error(NegativeLogLikelihood(), y, random_labels(5, 4, rng)) <=
             kGradTolerance);
  BOOST_TEST(gradient_error(NegativeLogLikelihood(), y, random_distributions(5, 4, rng)) <=
             kGradTolerance);
}

// ----- equivalences -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_with_labels_equals_with_one_hot_targets) {
  Rng rng(9);
  const arma::mat y = uniform(6, 7, rng);
  const arma::uvec labels = random_labels(6, 7, rng);
  const SoftmaxCrossEntropy loss;
  const auto with_labels = loss(y, labels);
  const auto with_targets = loss(y, one_hot_columns(labels, 6));
  BOOST_TEST(with_labels.value == with_targets.value, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(arma::approx_equal(with_labels.grad, with_targets.grad, "absdiff", 1e-15));
}

BOOST_AUTO_TEST_CASE(negative_log_likelihood_of_log_softmax_equals_softmax_cross_entropy) {
  Rng rng(10);
  const arma::mat y = uniform(6, 7, rng, -5, 5);
  const arma::uvec labels = random_labels(6, 7, rng);
  arma::mat log_p;
  log_softmax_columns(y, log_p);
  BOOST_TEST(NegativeLogLikelihood().value(log_p, labels) == SoftmaxCrossEntropy().value(y, labels),
             boost::test_tools::tolerance(1e-13));
}

BOOST_AUTO_TEST_CASE(softmax_columns_are_probabilities_and_exp_of_log_softmax) {
  Rng rng(11);
  const arma::mat y = uniform(4, 3, rng, -50, 50);
  arma::mat p, log_p;
  softmax_columns(y, p);
  log_softmax_columns(y, log_p);
  BOOST_TEST(arma::approx_equal(arma::sum(p, 0), arma::rowvec(3, arma::fill::ones), "absdiff", 1e-14));
  BOOST_TEST(arma::approx_equal(arma::exp(log_p), p, "absdiff", 1e-14));
}

BOOST_AUTO_TEST_CASE(value_alone_equals_the_value_of_value_and_grad) {
  Rng rng(12);
  const arma::mat y = uniform(3, 4, rng);
  const arma::uvec labels = random_labels(3, 4, rng);
  const SoftmaxCrossEntropy loss;
  BOOST_TEST(loss.value(y, labels) == loss(y, labels).value);
}

// ----- numerical stability ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_is_finite_for_logits_of_1000) {
  const arma::mat y{{1000, -1000}, {-1000, 1000}, {0, 0}};
  const arma::uvec labels{0, 0};
  const auto r = SoftmaxCrossEntropy()(y, labels);
  BOOST_TEST(std::isfinite(r.value));
  BOOST_TEST(r.value == (0.0 + 2000.0) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.grad.is_finite());
  const auto f = SoftmaxCrossEntropy()(arma::fmat(arma::conv_to<arma::fmat>::from(y)), labels);
  BOOST_TEST(f.value == 1000.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(f.grad.is_finite());
  const auto t = SoftmaxCrossEntropy()(y, one_hot_columns(labels, 3));
  BOOST_TEST(t.value == 1000.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(t.grad.is_finite());
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_is_finite_for_logits_of_1000) {
  const arma::mat z{{1000, -1000, 1000, -1000}};
  const arma::mat t{{1, 0, 0, 1}};
  const auto r = BinaryCrossEntropyWithLogits()(z, t);
  BOOST_TEST(r.value == 2000.0 / 4, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.grad.is_finite());
  const auto f = BinaryCrossEntropyWithLogits()(arma::fmat(arma::conv_to<arma::fmat>::from(z)),
                                                arma::fmat(arma::conv_to<arma::fmat>::from(t)));
  BOOST_TEST(f.value == 500.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(f.grad.is_finite());
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_ignores_minus_infinity_logits_of_other_classes) {
  const double inf = std::numeric_limits<double>::infinity();
  const arma::mat y = arma::vec{0, -inf, 0};  // one sample
  const auto r = SoftmaxCrossEntropy()(y, arma::uvec{0});
  BOOST_TEST(r.value == std::log(2.0), boost::test_tools::tolerance(1e-14));
  BOOST_TEST(r.grad.is_finite());
}

// ----- float and double -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(float_agrees_with_double_to_1e_5_relative) {
  Rng rng(13);
  // Inputs exactly representable in float, so both runs see the same numbers.
  const arma::fmat yf = arma::conv_to<arma::fmat>::from(uniform(5, 8, rng));
  const arma::mat y = arma::conv_to<arma::mat>::from(yf);
  const arma::uvec labels = random_labels(5, 8, rng);
  const arma::fmat tf = arma::conv_to<arma::fmat>::from(random_distributions(5, 8, rng));
  const arma::mat t = arma::conv_to<arma::mat>::from(tf);
  const arma::uvec binary = random_labels(2, 8, rng);

  struct Case {
    std::string name;
    std::shared_ptr<const Loss> loss;
    bool labels;
  };
  const std::vector<Case> cases{
      {"mse", std::make_shared<MeanSquaredError>(), false},
      {"mae", std::make_shared<MeanAbsoluteError>(), false},
      {"huber", std::make_shared<Huber>(0.5), false},
      {"bce", std::make_shared<BinaryCrossEntropyWithLogits>(), false},
      {"softmax_ce labels", std::make_shared<SoftmaxCrossEntropy>(), true},
      {"softmax_ce targets", std::make_shared<SoftmaxCrossEntropy>(), false},
      {"nll labels", std::make_shared<NegativeLogLikelihood>(), true},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      const auto rf = c.labels ? (*c.loss)(yf, labels) : (*c.loss)(yf, tf);
      const auto rd = c.labels ? (*c.loss)(y, labels) : (*c.loss)(y, t);
      BOOST_TEST(relative_error(rf.value, rd.value) <= 1e-5);
      BOOST_TEST(max_relative_difference(arma::conv_to<arma::mat>::from(rf.grad), rd.grad) <= 1e-5);
    }
  }
  const auto bf = BinaryCrossEntropyWithLogits()(arma::fmat(yf.row(0)), binary);
  const auto bd = BinaryCrossEntropyWithLogits()(arma::mat(y.row(0)), binary);
  BOOST_TEST(relative_error(bf.value, bd.value) <= 1e-5);
}

// ----- buffer reuse -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(value_and_grad_writes_into_the_existing_grad_buffer) {
  Rng rng(14);
  const arma::fmat y = arma::conv_to<arma::fmat>::from(uniform(10, 32, rng));
  const arma::uvec labels = random_labels(10, 32, rng);
  const SoftmaxCrossEntropy loss;
  arma::fmat grad(10, 32);
  const float* before = grad.memptr();
  const double v = loss.value_and_grad(y, labels, grad);
  BOOST_TEST(grad.memptr() == before);
  BOOST_TEST(v == loss(y, labels).value);
  BOOST_TEST(arma::approx_equal(grad, loss(y, labels).grad, "absdiff", 0.0f));
}

BOOST_AUTO_TEST_CASE(value_and_grad_allocates_nothing_when_grad_has_the_shape_of_y) {
  Rng rng(15);
  const arma::fmat y = arma::conv_to<arma::fmat>::from(uniform(10, 32, rng));
  const arma::fmat t = arma::conv_to<arma::fmat>::from(random_distributions(10, 32, rng));
  const arma::uvec labels = random_labels(10, 32, rng);
  arma::fmat grad(10, 32);
  const SoftmaxCrossEntropy softmax_ce;
  // The counter must see an allocation made inside the library (a fresh gradient), or a
  // zero below would prove nothing.
  BOOST_TEST_REQUIRE(allocations_during([&] { softmax_ce(y, labels); }) >= 1);

  const MeanSquaredError mse;
  const Huber huber(0.5);
  const BinaryCrossEntropyWithLogits bce;
  const NegativeLogLikelihood nll;
  const Loss& erased = softmax_ce;
  BOOST_TEST(allocations_during([&] { softmax_ce.value_and_grad(y, labels, grad); }) == 0);
  BOOST_TEST(allocations_during([&] { softmax_ce.value_and_grad(y, t, grad); }) == 0);
  BOOST_TEST(allocations_during([&] { erased.value_and_grad(y, Targets<float>(labels), &grad); }) == 0);
  BOOST_TEST(allocations_during([&] { mse.value_and_grad(y, t, grad); }) == 0);
  BOOST_TEST(allocations_during([&] { huber.value_and_grad(y, t, grad); }) == 0);
  BOOST_TEST(allocations_during([&] { bce.value_and_grad(y, t, grad); }) == 0);
  BOOST_TEST(allocations_during([&] { nll.value_and_grad(y, labels, grad); }) == 0);
}

BOOST_AUTO_TEST_CASE(value_and_grad_resizes_a_grad_buffer_of_another_shape) {
  const arma::mat y{{1, 2, 3}};
  arma::mat grad(5, 5);
  MeanSquaredError().value_and_grad(y, arma::mat{{0, 0, 0}}, grad);
  BOOST_TEST(grad.n_rows == 1u);
  BOOST_TEST(grad.n_cols == 3u);
}

// ----- errors -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(label_out_of_range_is_a_data_error_naming_the_sample_label_and_classes) {
  const arma::mat y(3, 4, arma::fill::zeros);
  const arma::uvec labels{0, 2, 7, 1};
  try {
    SoftmaxCrossEntropy()(y, labels);
    BOOST_FAIL("expected DataError");
  } catch (const DataError& e) {
    const std::string what = e.what();
    BOOST_TEST(e.path() == "softmax_cross_entropy");
    BOOST_TEST(what.find("sample 2") != std::string::npos, what);
    BOOST_TEST(what.find("label 7") != std::string::npos, what);
    BOOST_TEST(what.find("below 3") != std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(label_count_differing_from_batch_is_a_shape_error_naming_the_loss) {
  const arma::mat y(3, 4, arma::fill::zeros);
  try {
    NegativeLogLikelihood()(y, arma::uvec{0, 1, 2});
    BOOST_FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    BOOST_TEST(e.path() == "negative_log_likelihood");
    BOOST_TEST(what.find("expected 4 labels") != std::string::npos, what);
    BOOST_TEST(what.find("got 3") != std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(target_shape_differing_from_y_is_a_shape_error_with_both_shapes) {
  const arma::mat y(3, 4, arma::fill::zeros);
  try {
    MeanSquaredError()(y, arma::mat(3, 5, arma::fill::zeros));
    BOOST_FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    BOOST_TEST(e.path() == "mean_squared_error");
    BOOST_TEST(what.find("(3 × 4)") != std::string::npos, what);
    BOOST_TEST(what.find("(3 × 5)") != std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(failed_check_leaves_the_grad_buffer_untouched) {
  const arma::mat y(3, 4, arma::fill::zeros);
  arma::mat grad(3, 4, arma::fill::value(42.0));
  BOOST_CHECK_THROW(SoftmaxCrossEntropy().value_and_grad(y, arma::uvec{0, 1, 9, 0}, grad),
                    DataError);
  BOOST_TEST(arma::all(arma::vectorise(grad) == 42.0));
}

BOOST_AUTO_TEST_CASE(cross_entropies_reject_targets_that_are_not_probabilities_naming_the_sample) {
  const arma::mat y(3, 2, arma::fill::zeros);
  arma::mat t(3, 2, arma::fill::value(1.0 / 3));
  t(1, 1) = -0.5;  // a negative target gave a negative loss
  arma::mat grad(3, 2, arma::fill::value(42.0));
  const std::vector<std::shared_ptr<const Loss>> losses = {
      std::make_shared<SoftmaxCrossEntropy>(), std::make_shared<NegativeLogLikelihood>(),
      std::make_shared<BinaryCrossEntropyWithLogits>()};
  for (const auto& loss : losses) {
    BOOST_CHECK_EXCEPTION(loss->value_and_grad(y, t, grad), DataError, [](const DataError& e) {
      return std::string(e.what()).find("target -0.5 at row 1 of sample 1 is not a probability") !=
             std::string::npos;
    });
    BOOST_TEST(arma::all(arma::vectorise(grad) == 42.0));
  }
  t(1, 1) = 1.5;
  BOOST_CHECK_THROW(BinaryCrossEntropyWithLogits()(y, t), DataError);
  t(1, 1) = 1.0;
  BOOST_CHECK_NO_THROW(SoftmaxCrossEntropy()(y, t));
}

BOOST_AUTO_TEST_CASE(regression_losses_reject_labels_with_a_config_error) {
  const arma::mat y(3, 2, arma::fill::zeros);
  BOOST_CHECK_THROW(MeanSquaredError()(y, arma::uvec{0, 1}), ConfigError);
  BOOST_CHECK_THROW(MeanAbsoluteError()(y, arma::uvec{0, 1}), ConfigError);
  BOOST_CHECK_THROW(Huber()(y, arma::uvec{0, 1}), ConfigError);
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_labels_need_one_row_and_values_0_or_1) {
  BOOST_CHECK_THROW(BinaryCrossEntropyWithLogits()(arma::mat(2, 2, arma::fill::zeros),
                                                   arma::uvec{0, 1}),
                    ShapeError);
  BOOST_CHECK_THROW(BinaryCrossEntropyWithLogits()(arma::mat(1, 2, arma::fill::zeros),
                                                   arma::uvec{0, 2}),
                    DataError);
}

BOOST_AUTO_TEST_CASE(empty_batch_is_a_shape_error) {
  BOOST_CHECK_THROW(SoftmaxCrossEntropy()(arma::mat(3, 0), arma::uvec()), ShapeError);
  BOOST_CHECK_THROW(MeanSquaredError()(arma::mat(3, 0), arma::mat(3, 0)), ShapeError);
}

BOOST_AUTO_TEST_CASE(grad_buffer_sharing_memory_with_y_is_a_config_error) {
  arma::mat y(3, 2, arma::fill::zeros);
  BOOST_CHECK_THROW(SoftmaxCrossEntropy().value_and_grad(y, arma::uvec{0, 1}, y), ConfigError);
}

BOOST_AUTO_TEST_CASE(check_finite_reports_the_first_nan_by_row_and_column) {
  arma::mat y(3, 2, arma::fill::zeros);
  y(1, 1) = std::numeric_limits<double>::quiet_NaN();
  BOOST_CHECK_NO_THROW(SoftmaxCrossEntropy().value(y, arma::uvec{0, 1}));
  try {
    SoftmaxCrossEntropy({.check_finite = true}).value(y, arma::uvec{0, 1});
    BOOST_FAIL("expected NumericError");
  } catch (const NumericError& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("row 1, column 1") != std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(invalid_hyper_parameters_are_config_errors) {
  BOOST_CHECK_THROW(Huber(0.0), ConfigError);
  BOOST_CHECK_THROW(Huber(-1.0), ConfigError);
  BOOST_CHECK_THROW(SoftmaxCrossEntropy({.label_smoothing = 1.5}), ConfigError);
  BOOST_CHECK_THROW(SoftmaxCrossEntropy({.label_smoothing = -0.1}), ConfigError);
}

// ----- the Loss interface -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(any_loss_is_usable_through_the_loss_base_class) {
  const arma::mat y{{0.5, 1.5}, {-1, 2}};
  const arma::mat t{{0, 1}, {0, 1}};
  const std::vector<std::shared_ptr<const Loss>> losses{
      std::make_shared<MeanSquaredError>(), std::make_shared<MeanAbsoluteError>(),
      std::make_shared<Huber>(), std::make_shared<BinaryCrossEntropyWithLogits>(),
      std::make_shared<SoftmaxCrossEntropy>(), std::make_shared<NegativeLogLikelihood>()};
  const std::vector<std::string> names{"mean_squared_error",
                                       "mean_absolute_error",
                                       "huber",
                                       "binary_cross_entropy_with_logits",
                                       "softmax_cross_entropy",
                                       "negative_log_likelihood"};
  for (std::size_t i = 0; i < losses.size(); ++i) {
    BOOST_TEST(losses[i]->name() == names[i]);
    BOOST_TEST(losses[i]->accepts_targets());
    arma::mat grad;
    const double v = losses[i]->value_and_grad(y, Targets<double>(t), &grad);
    BOOST_TEST(v == (*losses[i])(y, t).value);
  }
  BOOST_TEST(!losses[0]->accepts_labels());
  BOOST_TEST(losses[4]->accepts_labels());
}

// ----- metrics ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(argmax_columns_picks_the_first_largest_entry_of_each_column) {
  const arma::mat y{{1, 5, 2}, {3, 5, 2}, {2, 0, 2}};
  const arma::uvec expected{1, 0, 0};
  BOOST_TEST(arma::all(argmax_columns(y) == expected));
}

BOOST_AUTO_TEST_CASE(accuracy_is_the_fraction_of_columns_whose_argmax_is_the_label) {
  const arma::fmat y{{0.9f, 0.1f, 0.3f, 0.5f}, {0.1f, 0.9f, 0.7f, 0.5f}};
  BOOST_TEST(accuracy(y, arma::uvec{0, 1, 0, 0}) == 0.75);
  BOOST_CHECK_THROW(accuracy(y, arma::uvec{0, 1}), ShapeError);
  BOOST_CHECK_THROW(accuracy(y, arma::uvec{0, 1, 2, 0}), DataError);
}

BOOST_AUTO_TEST_CASE(binary_accuracy_thresholds_one_logit_per_sample) {
  const arma::mat z{{2.0, -1.0, 0.5, -0.5}};
  BOOST_TEST(binary_accuracy(z, arma::uvec{1, 0, 0, 0}) == 0.75);
  BOOST_TEST(binary_accuracy(z, arma::uvec{1, 0, 0, 0}, 1.0) == 1.0);
  BOOST_CHECK_THROW(binary_accuracy(arma::mat(2, 4, arma::fill::zeros), arma::uvec{0, 1, 0, 1}),
                    ShapeError);
}

BOOST_AUTO_TEST_CASE(confusion_matrix_counts_true_class_rows_against_predicted_columns) {
  const arma::mat y{{0.9, 0.1, 0.8, 0.2}, {0.1, 0.9, 0.2, 0.8}};
  const arma::umat counts = confusion_matrix(y, arma::uvec{0, 1, 1, 1});
  BOOST_TEST_REQUIRE((counts.n_rows == 2u && counts.n_cols == 2u));
  BOOST_TEST(counts(0, 0) == 1u);  // class 0 predicted 0
  BOOST_TEST(counts(0, 1) == 0u);
  BOOST_TEST(counts(1, 0) == 1u);  // class 1 predicted 0
  BOOST_TEST(counts(1, 1) == 2u);
}
