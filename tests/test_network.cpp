// Specification of networks: nesting, paths and the buffers their caches report.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"

using namespace layercache;

BOOST_AUTO_TEST_CASE(three_level_network_passes_gradient_check) {
  Network inner{Dense(3, 4), Dense(4, 3, {.bias = false})};
  Network middle{named("inner", inner), Dense(3, 3)};
  Network outer{Dense(5, 3), named("middle", middle), Dense(3, 2)};
  auto r = testing::check_gradients(outer, Shape{5});
  BOOST_TEST(r.passed, r.report());
  BOOST_TEST_MESSAGE(r.report());
  Rng rng(1);
  auto params = outer.init(Shape{5}, xavier_uniform(), rng);
  BOOST_TEST(params.contains("middle/inner/dense2/weight"));
  BOOST_TEST_MESSAGE(outer.summary(Shape{5}));
}

BOOST_AUTO_TEST_CASE(caches_report_the_data_of_their_buffers) {
  // for_each_buffer must name the tensor's data (what backward reads), not the matrix object:
  // the contract check snapshots those bytes, and bytes() counts them.
  const Network net{Dense(4, 8), ReLU(), Dense(8, 2)};
  Rng rng(1);
  const auto params = net.init(Shape{4}, he_normal(), rng);
  const arma::fmat x(4, 5, arma::fill::randn);
  const auto out = net.forward(params, x);
  std::vector<const void*> seen;
  out.cache->for_each_buffer([&](const void* p, std::size_t) { seen.push_back(p); });
  const auto& steps = static_cast<const NetworkCache<float>&>(*out.cache).steps;
  BOOST_TEST(seen.size() == 3u);  // dense1 input, relu1 output, dense2 input (= relu1 output)
  BOOST_TEST(seen[0] == static_cast<const void*>(out.input->memptr()));
  BOOST_TEST(seen[1] == static_cast<const void*>(steps[1].output->memptr()));
  BOOST_TEST(seen[2] == seen[1]);
  BOOST_TEST(out.cache->bytes() == (4 + 8) * 5 * sizeof(float));
}

namespace {
// y = x, counting its backward calls into a counter the test owns.
struct CountsBackward : LayerImpl<CountsBackward> {
  static constexpr const char* kind_name = "counts_backward";
  explicit CountsBackward(int* calls) : calls(calls) {}
  Shape output_shape(const Shape& input) const override { return input; }
  template <class T>
  void forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y, NoCache<T>&,
                 const LayerCall<T>&) const {
    y = *x;
  }
  template <class T>
  void backward_t(const Tensors<T>&, const NoCache<T>&, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const {
    ++*calls;
    if (grads.dx()) *grads.dx() = dy;
  }
  int* calls;
};
}  // namespace

BOOST_AUTO_TEST_CASE(layers_before_the_first_with_a_gradient_to_compute_run_no_backward) {
  int calls = 0;
  const Network net{named("encoder", Network{Dense(4, 5), CountsBackward(&calls), Dense(5, 5),
                                             CountsBackward(&calls)}),
                    named("head", Network{Dense(5, 2)})};
  Rng rng(1);
  const auto params = net.init(Shape{4}, he_normal(), rng);
  const arma::fmat x(4, 3, arma::fill::randn);
  const arma::fmat dy(2, 3, arma::fill::randn);
  const auto fwd = net.forward(params, x);
  const auto full = net.backward(params, *fwd.cache, dy);
  calls = 0;

  const FrozenSet encoder = freeze(params, {"encoder"});
  Needs needs;
  needs.input = false;
  needs.frozen = &encoder;
  const auto head_only = net.backward(params, *fwd.cache, dy, needs);
  BOOST_TEST(calls == 0);  // nothing in the frozen encoder needs dx
  BOOST_TEST(head_only.dx.is_empty());
  BOOST_TEST(head_only.grads.at("encoder/dense1/weight").value().is_empty());
  BOOST_TEST(head_only.grads.at("encoder/dense2/weight").value().is_empty());
  BOOST_TEST(head_only.grads.at("head").identical(full.grads.at("head")));

  const FrozenSet first_dense = freeze(params, {"encoder/dense1"});
  needs.frozen = &first_dense;
  const auto after_first = net.backward(params, *fwd.cache, dy, needs);
  BOOST_TEST(calls == 1);  // the layer after encoder/dense2 passes its dy on, the one before not
  BOOST_TEST(after_first.grads.at("encoder/dense2").identical(full.grads.at("encoder/dense2")));

  calls = 0;
  needs.input = true;  // the caller wants dx: every layer runs
  const auto with_dx = net.backward(params, *fwd.cache, dy, needs);
  BOOST_TEST(calls == 2);
  BOOST_TEST(with_dx.dx.n_rows == 4u);
}
