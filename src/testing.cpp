// Gradient and cache-contract checks offered to users for testing layers in isolation.
#include "layercache/testing.hpp"

#include <cmath>
#include <cstring>
#include <sstream>

#include "layercache/initializers.hpp"
#include "format_number.hpp"

namespace layercache::testing {
namespace {

arma::mat random_input(const Shape& shape, const GradCheckOptions& o, Rng& rng) {
  arma::mat x(shape.size(), o.batch);
  for (double& v : x) {
    if (o.integer_inputs > 0) {
      v = double(std::min<std::size_t>(std::size_t(rng.uniform() * double(o.integer_inputs)),
                                       o.integer_inputs - 1));
      continue;
    }
    v = rng.normal(0.0, o.input_scale);
    if (std::abs(v) < o.input_margin) v = v < 0 ? v - o.input_margin : v + o.input_margin;
  }
  return x;
}

Tree<double> random_params(const Layer& layer, const Shape& shape, Rng& rng) {
  Tree<double> params = layer.init<double>(shape, xavier_normal(), rng);
  params.for_each([&](const std::string&, arma::mat& m) {
    for (double& v : m) v += rng.normal(0.0, 0.1);
  });
  return params;
}

// The context of the checks' forward calls: `mode`, `rng`, and the options' lengths.
Context check_context(const GradCheckOptions& o, Rng* rng, Mode mode) {
  Context ctx;
  ctx.mode = mode;
  ctx.rng = rng;
  if (!o.lengths.is_empty()) ctx.lengths = &o.lengths;
  return ctx;
}

// L = Σ r ⊙ y for the current params and input (in the checks' mode, fresh rng each time so
// that layers that draw get the same draws on every evaluation).
double projected(const Layer& layer, const Tree<double>& params, const Tree<double>& state,
                 const arma::mat& x, const Shape& shape, const arma::mat& r, std::uint64_t seed,
                 const GradCheckOptions& o) {
  Rng rng(seed);
  const auto out = layer.forward(params, x, shape, check_context(o, &rng, o.mode), state);
  return arma::accu(r % out.y());
}

double relative_error(double a, double n, double floor) {
  return std::abs(a - n) / std::max(std::abs(a) + std::abs(n), floor);
}

// Compares `analytic` with the finite-difference derivative of L with respect to every entry
// of `target` (which `evaluate` reads).
template <class Evaluate>
void compare(const std::string& path, arma::mat& target, const arma::mat& analytic,
             Evaluate evaluate, const GradCheckOptions& o, GradCheckResult& result) {
  GradCheckEntry worst{path, 0, 0, 0, -1};
  if (analytic.n_rows != target.n_rows || analytic.n_cols != target.n_cols) {
    result.passed = false;
    worst.relative_error = INFINITY;
    result.worst_per_tensor.push_back(worst);
    if (!(result.worst.relative_error >= INFINITY)) result.worst = worst;
    return;
  }
  for (arma::uword i = 0; i < target.n_elem; ++i) {
    const double saved = target[i];
    const double h = o.step;
    auto at = [&](double offset) {
      target[i] = saved + offset;
      return evaluate();
    };
    const double numeric = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
    target[i] = saved;
    // A NaN (from either side) is the worst error there is, never one to pass over.
    const double e = relative_error(analytic[i], numeric, o.floor);
    const double err = std::isnan(e) ? INFINITY : e;
    ++result.n_checked;
    if (!(err <= worst.relative_error) || worst.relative_error < 0)
      worst = GradCheckEntry{path, i, analytic[i], numeric, err};
  }
  if (worst.relative_error < 0) worst.relative_error = 0;
  if (!(worst.relative_error <= o.tolerance)) result.passed = false;
  if (!(worst.relative_error <= result.worst.relative_error)) result.worst = worst;
  result.worst_per_tensor.push_back(worst);
}

using detail::format_number;

// A cache type no layer produces, to check that layers reject foreign caches.
struct ForeignCache : Cache {
  void for_each_buffer(const BufferVisitor&) const override {}
};

// A copy of every buffer a cache refers to, to detect changes.
std::vector<std::vector<unsigned char>> snapshot(const Cache& cache) {
  std::vector<std::vector<unsigned char>> out;
  cache.for_each_buffer([&](const void* p, std::size_t n) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    out.emplace_back(bytes, bytes + n);
  });
  return out;
}

bool bit_equal(const arma::mat& a, const arma::mat& b) {
  return a.n_rows == b.n_rows && a.n_cols == b.n_cols &&
         (a.n_elem == 0 || std::memcmp(a.memptr(), b.memptr(), a.n_elem * sizeof(double)) == 0);
}

}  // namespace

std::string GradCheckResult::report() const {
  std::ostringstream os;
  os << (passed ? "gradient check passed" : "gradient check FAILED") << ": " << n_checked
     << " entries, worst relative error " << format_number(worst.relative_error) << " at " << worst.path
     << "[" << worst.index << "] (analytic " << format_number(worst.analytic) << ", numeric "
     << format_number(worst.numeric) << "), tolerance " << format_number(tolerance);
  for (const auto& e : worst_per_tensor)
    os << "\n  " << e.path << ": worst " << format_number(e.relative_error) << " at [" << e.index << "]";
  return os.str();
}

GradCheckResult check_gradients(const Layer& layer, const Shape& input_shape,
                                const GradCheckOptions& options) {
  Rng rng(options.seed);
  const Tree<double> params = random_params(layer, input_shape, rng);
  const arma::mat x = random_input(input_shape, options, rng);
  return check_gradients(layer, params, x, input_shape, options);
}

GradCheckResult check_gradients(const Layer& layer, const Tree<double>& params,
                                const arma::mat& x, const Shape& input_shape,
                                const GradCheckOptions& options) {
  return check_gradients(layer, params, layer.init_state<double>(input_shape), x, input_shape,
                         options);
}

GradCheckResult check_gradients(const Layer& layer, const Tree<double>& params_in,
                                const Tree<double>& state, const arma::mat& x_in,
                                const Shape& input_shape, const GradCheckOptions& o) {
  GradCheckResult result;
  result.tolerance = o.tolerance;
  result.worst.relative_error = 0;
  Tree<double> params = params_in;
  arma::mat x = x_in;
  const std::uint64_t draw_seed = o.seed + 1;

  Rng rng(draw_seed);
  const auto fwd = layer.forward(params, x, input_shape, check_context(o, &rng, o.mode), state);
  Rng proj_rng(o.seed + 2);
  arma::mat r(fwd.y().n_rows, fwd.y().n_cols);
  const double scale = 1.0 / std::sqrt(double(std::max<arma::uword>(r.n_elem, 1)));
  for (double& v : r) v = proj_rng.normal(0.0, scale);

  Needs needs;
  needs.input = o.check_input;
  const auto bwd = layer.backward(params, *fwd.cache, r, needs);
  auto evaluate = [&] { return projected(layer, params, state, x, input_shape, r, draw_seed, o); };

  if (o.check_input) compare("input", x, bwd.dx, evaluate, o, result);
  params.for_each([&](const std::string& path, arma::mat& p) {
    compare(path, p, bwd.grads.at(path).value(), evaluate, o, result);
  });
  return result;
}

std::string ContractResult::report() const {
  std::ostringstream os;
  os << (passed ? "contract checks passed" : "contract checks FAILED") << " (" << checks.size()
     << " checks)";
  for (const auto& f : failures) os << "\n  - " << f;
  return os.str();
}

ContractResult check_cache_contract(const Layer& layer, const Shape& input_shape,
                                    const GradCheckOptions& o) {
  ContractResult result;
  auto check = [&](const std::string& name, bool ok, const std::string& detail) {
    result.checks.push_back(name);
    if (!ok) {
      result.passed = false;
      result.failures.push_back(name + ": " + detail);
    }
  };
  Rng rng(o.seed);
  const Tree<double> params = random_params(layer, input_shape, rng);
  const Tree<double> state = layer.init_state<double>(input_shape);
  const arma::mat x = random_input(input_shape, o, rng);
  auto context = [&](Rng& r) { return check_context(o, &r, o.mode); };

  Rng r1(o.seed + 1), r2(o.seed + 1);
  const Rng::State unused = r1.state();
  const auto first = layer.forward(params, x, input_shape, context(r1), state);
  const auto second = layer.forward(params, x, input_shape, context(r2), state);
  const Shape predicted = layer.output_shape(input_shape);
  check("output shape", first.shape == predicted && first.y().n_rows == predicted.size() &&
                            first.y().n_cols == x.n_cols,
        "output_shape() says " + predicted.str() + ", forward returned " + first.shape.str() +
            " with " + std::to_string(first.y().n_rows) + " rows");
  check("forward is repeatable", bit_equal(first.y(), second.y()),
        "two forward calls on the same input gave different outputs");
  if (r1.state() != unused)
    check("draws are reproducible from the same seed", r1.state() == r2.state(),
          "two forward calls from the same seed drew different amounts from the rng");

  // State: a training forward returns the new state, shaped like init_state's; a forward in
  // infer mode returns none.
  if (o.mode == Mode::train) {
    const bool stateless = state.n_tensors() == 0;
    // The same tensors by path and shape (a stateless block's entry may be an empty branch
    // in one tree and a branch of empty entries in the other).
    bool same_tensors = state.paths() == first.state.paths();
    if (same_tensors)
      state.for_each([&](const std::string& path, const arma::mat& m) {
        const arma::mat& n = first.state.at(path).value();
        same_tensors = same_tensors && m.n_rows == n.n_rows && m.n_cols == n.n_cols;
      });
    check("a training forward returns state shaped like state_specs",
          stateless ? first.state.n_tensors() == 0 : same_tensors,
          stateless ? "a layer without state returned state"
                    : "the new state has other entries or shapes than init_state makes");
    check("the new state is repeatable", first.state.identical(second.state),
          "two forward calls on the same input returned different new state");
  }

  arma::mat dy(first.y().n_rows, first.y().n_cols);
  for (double& v : dy) v = rng.normal();
  const auto before = snapshot(*first.cache);
  const auto g1 = layer.backward(params, *first.cache, dy);
  const auto g2 = layer.backward(params, *first.cache, dy);
  check("backward leaves the cache unchanged", before == snapshot(*first.cache),
        "a buffer held by the cache changed during backward");
  bool same_grads = bit_equal(g1.dx, g2.dx) && g1.grads.identical(g2.grads);
  check("backward is repeatable", same_grads, "two backward calls gave different results");

  // Backward reads what forward put in the cache, nothing the layer kept in itself: after a
  // forward on another batch, the first batch's cache still gives the first batch's results.
  const arma::mat other = random_input(input_shape, o, rng);
  {
    Rng r(o.seed + 3);
    const auto between = layer.forward(params, other, input_shape, context(r), state);
    const auto g3 = layer.backward(params, *first.cache, dy);
    check("backward reads only its cache", bit_equal(g3.dx, g1.dx) && g3.grads.identical(g1.grads),
          "after a forward on another batch, backward on the first batch's cache gave other "
          "results; does the layer keep values in itself instead of in its cache?");
  }

  // A forward in infer mode runs without an rng (it must draw nothing), returns no state,
  // and gives what infer gives. infer has no context: with lengths (padded sequences), the
  // forward in infer mode is compared with a training forward instead (for the layers that
  // take lengths, which have no mode).
  ForwardResult<double> in_infer_mode;
  std::string infer_mode_error;
  try {
    layer.forward(params, x, input_shape, check_context(o, nullptr, Mode::infer), in_infer_mode,
                  state);
  } catch (const std::exception& e) {
    infer_mode_error = e.what();
  }
  check("a forward in infer mode draws nothing and returns no state",
        infer_mode_error.empty() && in_infer_mode.state.n_tensors() == 0,
        infer_mode_error.empty() ? "it returned new state"
                                 : "it threw without an rng: " + infer_mode_error);
  if (infer_mode_error.empty()) {
    const arma::mat inferred =
        o.lengths.is_empty() ? layer.infer(params, x, input_shape, state) : first.y();
    const arma::mat& forwarded = in_infer_mode.y();
    const double scale = std::max(1.0, arma::abs(forwarded).max());
    const bool infer_ok = inferred.n_rows == forwarded.n_rows &&
                          inferred.n_cols == forwarded.n_cols &&
                          arma::abs(inferred - forwarded).max() <= 1e-12 * scale;
    check("infer equals forward in infer mode", infer_ok,
          "infer's output differs from the output of forward in infer mode");
  }

  // Reuse: run a forward/backward on another batch into the results, then the original
  // batch again; the results must equal the fresh ones bit for bit.
  ForwardResult<double> reused;
  BackwardResult<double> reused_grads;
  Rng r3(o.seed + 3), r4(o.seed + 1);
  layer.forward(params, other, input_shape, context(r3), reused, state);
  layer.backward(params, *reused.cache, arma::mat(dy.n_rows, dy.n_cols, arma::fill::ones), Needs{},
                 reused_grads);
  layer.forward(params, x, input_shape, context(r4), reused, state);
  layer.backward(params, *reused.cache, dy, Needs{}, reused_grads);
  check("reused forward equals fresh forward",
        bit_equal(reused.y(), first.y()) && reused.state.identical(first.state),
        "writing into last step's result gave a different output or new state");
  check("reused backward equals fresh backward",
        bit_equal(reused_grads.dx, g1.dx) && reused_grads.grads.identical(g1.grads),
        "writing into last step's gradients gave different gradients");

  // Needs: what nobody asked for is not computed. Without the input gradient dx is empty;
  // frozen tensors keep the empty gradient they arrive with; what is still asked for equals
  // the full backward's.
  Needs no_input;
  no_input.input = false;
  layer.backward(params, *first.cache, dy, no_input, reused_grads);
  check("backward leaves dx empty when it is not wanted",
        reused_grads.dx.is_empty() && reused_grads.grads.identical(g1.grads),
        reused_grads.dx.is_empty() ? "the parameter gradients differ from the full backward's"
                                   : "dx was computed although Needs::input was false");
  FrozenSet all_frozen;
  params.for_each([&](const std::string& path, const arma::mat&) { all_frozen.insert(path); });
  Needs frozen;
  frozen.frozen = &all_frozen;
  layer.backward(params, *first.cache, dy, frozen, reused_grads);
  std::string computed;
  reused_grads.grads.for_each([&](const std::string& path, const arma::mat& g) {
    if (!g.is_empty() && computed.empty()) computed = path;
  });
  check("backward computes no gradient of a frozen tensor",
        computed.empty() && bit_equal(reused_grads.dx, g1.dx),
        computed.empty() ? "dx differs from the full backward's when every tensor is frozen"
                         : "the gradient of frozen tensor " + computed + " was computed");

  bool rejected = false;
  std::string got = "no error";
  try {
    layer.backward(params, ForeignCache{}, dy);
  } catch (const CacheError&) {
    rejected = true;
  } catch (const std::exception& e) {
    got = std::string("another exception: ") + e.what();
  }
  check("foreign cache rejected with CacheError", rejected, got);

  // The layer's own entry point must compare the rows of x with the shape it is told, so
  // this bypasses the convenience forward (which checks before calling the layer).
  rejected = false;
  got = "no error";
  try {
    auto wrong = std::make_shared<const arma::mat>(x.n_rows + 1, x.n_cols, arma::fill::zeros);
    ForwardResult<double> out;
    layer.forward_into(params, state, wrong, input_shape, context(r1), out);
  } catch (const ShapeError&) {
    rejected = true;
  } catch (const std::exception& e) {
    got = std::string("another exception: ") + e.what();
  }
  check("wrong input rows rejected with ShapeError", rejected, got);
  return result;
}

ContractResult check_float_matches_double(const Layer& layer, const Shape& input_shape,
                                          double tolerance, const GradCheckOptions& o) {
  ContractResult result;
  Rng rng(o.seed);
  const Tree<double> params = random_params(layer, input_shape, rng);
  const arma::mat x = random_input(input_shape, o, rng);
  const Tree<float> params_f = convert<float>(params);
  const Tree<double> params_rounded = convert<double>(params_f);
  const Tree<double> state = layer.init_state<double>(input_shape);
  const Tree<float> state_f = convert<float>(state);
  const arma::fmat x_f = arma::conv_to<arma::fmat>::from(x);
  const arma::mat x_rounded = arma::conv_to<arma::mat>::from(x_f);

  Rng rd(o.seed + 1), rf(o.seed + 1);
  const Context cd = check_context(o, &rd, o.mode), cf = check_context(o, &rf, o.mode);
  const auto yd = layer.forward(params_rounded, x_rounded, input_shape, cd, state);
  const auto yf = layer.forward(params_f, x_f, input_shape, cf, state_f);
  const arma::mat yf_d = arma::conv_to<arma::mat>::from(yf.y());
  result.checks.push_back("float matches double");
  const double denom = std::max(arma::abs(yd.y()).max(), 1e-30);
  const double err = yf_d.n_elem == yd.y().n_elem ? arma::abs(yf_d - yd.y()).max() / denom : INFINITY;
  if (!(err <= tolerance)) {
    result.passed = false;
    result.failures.push_back("float matches double: relative difference " + format_number(err) +
                              " exceeds " + format_number(tolerance));
  }
  return result;
}

}  // namespace layercache::testing
