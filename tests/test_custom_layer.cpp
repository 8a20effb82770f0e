// The custom layer of docs/custom_layer.md, compiled and tested exactly as the page shows it:
// a learned per-feature scale y = s ⊙ x, written once for float and double.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"

using namespace layercache;

// [custom-layer]
// What Scale keeps for backward: its input (shared with the previous layer, not copied).
template <class T>
struct ScaleCache : Cache {
  ConstBuffer<T> x;  // input (n × batch)

  const char* kind() const noexcept override { return "scale"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(x, f);
  }
};

// y = s ⊙ x per feature;  ds = Σ_columns dy ⊙ x;  dx = s ⊙ dy.
class Scale : public LayerImpl<Scale> {
 public:
  explicit Scale(std::size_t n) : n_(n) {}

  std::string kind() const override { return "scale"; }
  Shape output_shape(const Shape& input) const override {
    if (input.size() != n_)
      throw ShapeError("expected input (" + std::to_string(n_) + "), got " + input.str());
    return input;
  }
  std::vector<TensorSpec> param_specs(const Shape& input) const override {
    output_shape(input);
    return {{"scale", n_, 1, Role::scale, 1, 1}};  // Role::scale starts at one
  }

  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>&, const ConstBuffer<T>& x,
                 const Shape& x_shape, const Context&, ForwardResult<T>& out) const {
    check_rows(x->n_rows, Shape{n_});
    const arma::Mat<T>& s = param(params, "scale", n_, 1);
    arma::Mat<T>& y = out.write_output(n_, x->n_cols);
    y = *x;
    y.each_col() %= s;
    out.shape = x_shape;
    out.template reuse_cache<ScaleCache<T>>().x = x;
  }

  template <class T>
  void backward_t(const Tree<T>& params, const Cache& cache_base, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const {
    const auto& cache = cache_as<ScaleCache<T>>(cache_base, "scale");
    const arma::Mat<T>& s = param(params, "scale", n_, 1);
    if (needs.param("scale")) out.grads.at("scale").value() = arma::sum(dy % *cache.x, 1);
    if (needs.input) {
      out.dx = dy;
      out.dx.each_col() %= s;
    } else {
      out.dx.reset();  // dx is empty when nobody asked for it
    }
  }

  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>&, const arma::Mat<T>& x, const Shape&,
               arma::Mat<T>& y) const {
    check_rows(x.n_rows, Shape{n_});
    y = x;
    y.each_col() %= param(params, "scale", n_, 1);
  }

 private:
  std::size_t n_;
};
// [custom-layer]

// [custom-layer-tests]
BOOST_AUTO_TEST_CASE(scale_layer_passes_the_gradient_check) {
  LAYERCACHE_CHECK_GRADIENTS(Scale(5), Shape{5});
}

BOOST_AUTO_TEST_CASE(scale_layer_keeps_the_cache_contract) {
  LAYERCACHE_CHECK_CACHE_CONTRACT(Scale(5), Shape{5});
  LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(Scale(5), Shape{5});
}

BOOST_AUTO_TEST_CASE(scale_layer_nests_inside_networks) {
  const Network net{Dense(4, 5), Scale(5), Dense(5, 2)};
  Rng rng(3);
  const auto params = net.init(Shape{4}, he_normal(), rng);
  BOOST_TEST(params.contains("scale1/scale"));
  BOOST_TEST(arma::all(arma::vectorise(params.at("scale1/scale").value()) == 1.0f));
  LAYERCACHE_CHECK_GRADIENTS(net, Shape{4});
}
// [custom-layer-tests]

BOOST_AUTO_TEST_CASE(a_network_rejects_an_entry_a_custom_layer_does_not_declare) {
  // Scale does not override param_entries: the default counts its param_specs.
  const Network net{Dense(4, 5), Scale(5), Dense(5, 2)};
  Rng rng(3);
  auto params = net.init(Shape{4}, he_normal(), rng);
  params.at("scale1").add("extra", TreeF(arma::fmat(5, 1, arma::fill::ones)));
  BOOST_CHECK_EXCEPTION(net.forward(params, arma::fmat(4, 3, arma::fill::ones)), ConfigError,
                        [](const ConfigError& e) {
                          return std::string(e.what()) ==
                                 "scale1: unexpected entry 'extra' in the params (the scale "
                                 "layer's params are scale)";
                        });
}

// y = 2x with a wrong backward, dx = WrongDx{}(dy): the gradient check must catch it.
template <class WrongDx>
struct Broken : LayerImpl<Broken<WrongDx>> {
  std::string kind() const override { return "broken"; }
  Shape output_shape(const Shape& in) const override { return in; }
  template <class T>
  void forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>& x, const Shape& s,
                 const Context&, ForwardResult<T>& out) const {
    out.write_output(x->n_rows, x->n_cols) = 2 * *x;  // y = 2x
    out.shape = s;
    out.template reuse_cache<ScaleCache<T>>().x = x;
  }
  template <class T>
  void backward_t(const Tree<T>&, const Cache&, const arma::Mat<T>& dy, const Needs&,
                  BackwardResult<T>& out) const {
    out.dx = WrongDx{}(dy);
  }
  template <class T>
  void infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>& x, const Shape&,
               arma::Mat<T>& y) const {
    y = 2 * x;
  }
};

// dx = dy: forgets the factor 2.
struct ForgetsTheFactor {
  template <class T>
  arma::Mat<T> operator()(const arma::Mat<T>& dy) const { return dy; }
};

// dx = 2 dy but for a NaN in its first entry: every later entry is right.
struct NanInTheFirstEntry {
  template <class T>
  arma::Mat<T> operator()(const arma::Mat<T>& dy) const {
    arma::Mat<T> dx = 2 * dy;
    dx(0, 0) = std::numeric_limits<T>::quiet_NaN();
    return dx;
  }
};

BOOST_AUTO_TEST_CASE(a_broken_backward_fails_the_gradient_check) {
  const auto result = testing::check_gradients(Broken<ForgetsTheFactor>{}, Shape{3});
  BOOST_TEST(!result.passed);
  BOOST_TEST(result.worst.path == "input");
  BOOST_TEST(result.worst.relative_error > 0.3);
}

// y = w ⊙ x per feature, with a backward that computes everything whatever Needs asks for:
// the cache-contract check must catch both the unwanted dx and the frozen gradient.
struct Greedy : LayerImpl<Greedy> {
  std::string kind() const override { return "greedy"; }
  Shape output_shape(const Shape& in) const override { return in; }
  std::vector<TensorSpec> param_specs(const Shape& in) const override {
    return {{"w", in.size(), 1, Role::weight, 1, 1}};
  }
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>&, const ConstBuffer<T>& x, const Shape& s,
                 const Context&, ForwardResult<T>& out) const {
    check_rows(x->n_rows, s);
    arma::Mat<T>& y = out.write_output(x->n_rows, x->n_cols);
    y = *x;
    y.each_col() %= param(params, "w", x->n_rows, 1);
    out.shape = s;
    out.template reuse_cache<ScaleCache<T>>().x = x;
  }
  template <class T>
  void backward_t(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                  const Needs&, BackwardResult<T>& out) const {
    const auto& c = cache_as<ScaleCache<T>>(cache, "greedy");
    out.grads.at("w").value() = arma::sum(dy % *c.x, 1);  // wrong when "w" is frozen
    out.dx = dy;                                            // wrong when dx is not wanted
    out.dx.each_col() %= param(params, "w", dy.n_rows, 1);
  }
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>&, const arma::Mat<T>& x, const Shape&,
               arma::Mat<T>& y) const {
    y = x;
    y.each_col() %= param(params, "w", x.n_rows, 1);
  }
};

BOOST_AUTO_TEST_CASE(a_backward_that_ignores_needs_fails_the_cache_contract) {
  const auto result = testing::check_cache_contract(Greedy{}, Shape{4});
  BOOST_TEST(!result.passed);
  const std::string report = result.report();
  BOOST_TEST(report.find("dx was computed although Needs::input was false") != std::string::npos,
             report);
  BOOST_TEST(report.find("the gradient of frozen tensor w was computed") != std::string::npos,
             report);
  BOOST_TEST(result.failures.size() == 2u, report);
  BOOST_TEST(testing::check_gradients(Greedy{}, Shape{4}).passed);  // its gradients are right
}

BOOST_AUTO_TEST_CASE(a_nan_gradient_fails_the_gradient_check_and_is_named_as_the_worst_entry) {
  const auto result = testing::check_gradients(Broken<NanInTheFirstEntry>{}, Shape{3});
  BOOST_TEST(!result.passed, result.report());
  BOOST_TEST(result.worst.path == "input");
  BOOST_TEST(result.worst.index == 0u);
  BOOST_TEST(std::isinf(result.worst.relative_error));
}

// y = x ⊙ x whose backward reads the input the layer kept in itself during the last forward
// instead of the one in its cache (a mutable member, against the contract): the gradient
// check cannot see it, the cache-contract check must.
struct KeepsInputInItself : LayerImpl<KeepsInputInItself> {
  mutable arma::mat last_x;  // wrong: a layer holds hyper-parameters only
  std::string kind() const override { return "keeps_input"; }
  Shape output_shape(const Shape& in) const override { return in; }
  template <class T>
  void forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>& x, const Shape& s,
                 const Context&, ForwardResult<T>& out) const {
    check_rows(x->n_rows, s);
    out.write_output(x->n_rows, x->n_cols) = *x % *x;
    out.shape = s;
    out.template reuse_cache<ScaleCache<T>>().x = x;
    last_x = arma::conv_to<arma::mat>::from(*x);
  }
  template <class T>
  void backward_t(const Tree<T>&, const Cache& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const {
    cache_as<ScaleCache<T>>(cache, "keeps_input");
    if (!needs.input) return out.dx.reset();
    out.dx = 2 * dy % arma::conv_to<arma::Mat<T>>::from(last_x);
  }
  template <class T>
  void infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>& x, const Shape&,
               arma::Mat<T>& y) const {
    y = x % x;
  }
};

BOOST_AUTO_TEST_CASE(a_backward_that_reads_values_kept_in_the_layer_fails_the_cache_contract) {
  BOOST_TEST(testing::check_gradients(KeepsInputInItself{}, Shape{4}).passed);
  const auto result = testing::check_cache_contract(KeepsInputInItself{}, Shape{4});
  BOOST_TEST(!result.passed);
  BOOST_TEST(result.failures.size() == 1u, result.report());
  BOOST_TEST(result.report().find("backward reads only its cache") != std::string::npos,
             result.report());
}
