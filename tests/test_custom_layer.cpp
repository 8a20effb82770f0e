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
  void for_each_buffer(const BufferVisitor& f) const override { visit_buffer(x, f); }
};
// y = s ⊙ x per feature;  ds = Σ_columns dy ⊙ x;  dx = s ⊙ dy.
class Scale : public LayerImpl<Scale, ScaleCache> {
 public:
  static constexpr const char* kind_name = "scale";
  explicit Scale(std::size_t n) : n_(n) {}
  Shape output_shape(const Shape& input) const override { return require_size(input, n_); }
  std::vector<TensorSpec> param_specs(const Shape&) const override {
    return {{"scale", n_, 1, Role::scale}};  // Role::scale starts at one
  }
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 ScaleCache<T>& cache, const LayerCall<T>&) const {
    y = x->each_col() % params["scale"];
    cache.x = x;
  }
  template <class T>
  void backward_t(const Tensors<T>& params, const ScaleCache<T>& cache, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const {
    if (auto* dscale = grads.param("scale")) *dscale = arma::sum(dy % *cache.x, 1);
    if (auto* dx = grads.dx()) *dx = dy.each_col() % params["scale"];
  }
 private:
  std::size_t n_;
};
// [custom-layer]

// [custom-activation]
// Softsign: y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)².
class Softsign : public ElementwiseLayer<Softsign> {
 public:
  static constexpr const char* kind_name = "softsign";
  static constexpr Keeps keeps = Keeps::input;  // backward reads x
  template <class T>
  T apply(T x) const { return x / (T(1) + std::abs(x)); }
  template <class T>
  T input_gradient(T x, T dy) const {
    const T d = T(1) + std::abs(x);
    return dy / (d * d);
  }
};
// [custom-activation]

BOOST_AUTO_TEST_CASE(a_user_activation_passes_every_layer_check) {
  LAYERCACHE_CHECK_GRADIENTS(Softsign(), (Shape{2, 3, 2}));
  LAYERCACHE_CHECK_CACHE_CONTRACT(Softsign(), Shape{6});
  LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(Softsign(), Shape{6});
  const arma::vec x{-3.0, 0.0, 1.0};
  const arma::mat y = Softsign().infer(TreeD{}, arma::mat(x));
  BOOST_TEST(arma::approx_equal(y, arma::mat(arma::vec{-0.75, 0.0, 0.5}), "absdiff", 1e-15));
}

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
  static constexpr const char* kind_name = "broken";
  Shape output_shape(const Shape& in) const override { return in; }
  template <class T>
  void forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y, NoCache<T>&,
                 const LayerCall<T>&) const {
    y = 2 * *x;
  }
  template <class T>
  void backward_t(const Tensors<T>&, const NoCache<T>&, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const {
    *grads.dx() = WrongDx{}(dy);
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

BOOST_AUTO_TEST_CASE(infer_without_infer_t_runs_forward_t_and_equals_forward) {
  const Scale scale(4);
  Rng rng(2);
  TreeD params = scale.init<double>(Shape{4}, he_normal(), rng);
  params.at("scale").value() = arma::vec{1.0, -2.0, 0.5, 3.0};
  const arma::mat x(4, 3, arma::fill::randn);
  const arma::mat y = scale.infer(params, x);
  BOOST_TEST(arma::approx_equal(y, scale.forward(params, x).y(), "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(y.row(1), -2.0 * x.row(1), "absdiff", 0.0));
}

// Records what the framework hands backward: dx and the weight's gradient, or null.
struct RecordsTargets : LayerImpl<RecordsTargets> {
  static constexpr const char* kind_name = "records_targets";
  explicit RecordsTargets(int* seen) : seen(seen) {}
  Shape output_shape(const Shape& in) const override { return in; }
  std::vector<TensorSpec> param_specs(const Shape& in) const override {
    return {{"w", in.size(), 1, Role::scale}};
  }
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 NoCache<T>&, const LayerCall<T>&) const {
    y = x->each_col() % params["w"];
  }
  template <class T>
  void backward_t(const Tensors<T>&, const NoCache<T>&, const arma::Mat<T>&,
                  Gradients<T>& grads) const {
    *seen = (grads.dx() ? 1 : 0) + (grads.param("w") ? 2 : 0);
    if (grads.dx()) grads.dx()->zeros();
    if (grads.param("w")) grads.param("w")->zeros();
  }
  int* seen;
};

BOOST_AUTO_TEST_CASE(backward_gets_no_target_for_what_nobody_wants) {
  int seen = -1;
  const RecordsTargets layer(&seen);
  Rng rng(1);
  const auto params = layer.init(Shape{3}, he_normal(), rng);
  const arma::fmat x(3, 2, arma::fill::randn), dy(3, 2, arma::fill::ones);
  const auto out = layer.forward(params, x);
  layer.backward(params, *out.cache, dy);
  BOOST_TEST(seen == 3);  // dx and dw
  Needs no_input;
  no_input.input = false;
  const auto b = layer.backward(params, *out.cache, dy, no_input);
  BOOST_TEST(seen == 2);  // dw only
  BOOST_TEST(b.dx.is_empty());
  const FrozenSet frozen = freeze(params, {"w"});
  Needs all_frozen;
  all_frozen.frozen = &frozen;
  layer.backward(params, *out.cache, dy, all_frozen);
  BOOST_TEST(seen == 1);  // dx only
  seen = -1;
  all_frozen.input = false;
  layer.backward(params, *out.cache, dy, all_frozen);
  BOOST_TEST(seen == -1);  // nothing wanted: backward_t is not called at all
}

// A layer written against the raw Layer interface (not LayerImpl), as a user may: y = w ⊙ x
// per feature, with a backward that computes everything whatever Needs asks for. The
// cache-contract check must catch both the unwanted dx and the frozen gradient.
template <class T>
struct GreedyCache : Cache {
  ConstBuffer<T> x;  // input (n × batch)
  void for_each_buffer(const BufferVisitor& f) const override { visit_buffer(x, f); }
};

struct Greedy : Layer {
  std::string kind() const override { return "greedy"; }
  Shape output_shape(const Shape& in) const override { return in; }
  std::vector<TensorSpec> param_specs(const Shape& in) const override {
    return {{"w", in.size(), 1, Role::weight, 1, 1}};
  }
  template <class T>
  void forward_t(const Tree<T>& params, const ConstBuffer<T>& x, const Shape& s,
                 ForwardResult<T>& out) const {
    check_rows(x->n_rows, s);
    out.write_output(x->n_rows, x->n_cols) = x->each_col() % params.at("w").value();
    out.shape = s;
    out.template reuse_cache<GreedyCache<T>>().x = x;
  }
  template <class T>
  void backward_t(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                  BackwardResult<T>& out) const {
    const auto* c = dynamic_cast<const GreedyCache<T>*>(&cache);
    if (!c) throw CacheError("not a greedy cache");
    prepare_grads(params, Needs{}, out.grads);
    out.grads.at("w").value() = arma::sum(dy % *c->x, 1);  // wrong when "w" is frozen
    out.dx = dy.each_col() % params.at("w").value();       // wrong when dx is not wanted
  }
  void forward_into(const TreeF& p, const TreeF&, const ConstBuffer<float>& x, const Shape& s,
                    const Context&, ForwardResult<float>& o) const override {
    forward_t(p, x, s, o);
  }
  void forward_into(const TreeD& p, const TreeD&, const ConstBuffer<double>& x, const Shape& s,
                    const Context&, ForwardResult<double>& o) const override {
    forward_t(p, x, s, o);
  }
  void backward_into(const TreeF& p, const Cache& c, const arma::fmat& dy, const Needs&,
                     BackwardResult<float>& o) const override {
    backward_t(p, c, dy, o);
  }
  void backward_into(const TreeD& p, const Cache& c, const arma::mat& dy, const Needs&,
                     BackwardResult<double>& o) const override {
    backward_t(p, c, dy, o);
  }
  void infer_into(const TreeF& p, const TreeF&, const arma::fmat& x, const Shape&,
                  arma::fmat& y) const override {
    y = x.each_col() % p.at("w").value();
  }
  void infer_into(const TreeD& p, const TreeD&, const arma::mat& x, const Shape&,
                  arma::mat& y) const override {
    y = x.each_col() % p.at("w").value();
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
  static constexpr const char* kind_name = "keeps_input";
  mutable arma::mat last_x;  // wrong: a layer holds hyper-parameters only
  Shape output_shape(const Shape& in) const override { return in; }
  template <class T>
  void forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y, NoCache<T>&,
                 const LayerCall<T>&) const {
    y = *x % *x;
    last_x = arma::conv_to<arma::mat>::from(*x);
  }
  template <class T>
  void backward_t(const Tensors<T>&, const NoCache<T>&, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const {
    *grads.dx() = 2 * dy % arma::conv_to<arma::Mat<T>>::from(last_x);
  }
  template <class T>
  void infer_t(const Tensors<T>&, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>&) const {
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
