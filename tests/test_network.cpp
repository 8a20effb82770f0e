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
