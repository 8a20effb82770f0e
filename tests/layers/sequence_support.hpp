// Helpers shared by the specifications of the sequence layers: a padded batch run at once
// against the same sequences run one by one.
#pragma once

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"

namespace layer_tests {

// Runs `layer` (a sequence layer whose output is either every step, out_per_step values each,
// or one vector) on a batch of `lengths.size()` sequences of `steps` steps of `n_in` features
// padded at the end, with Context::lengths, and on each sequence alone cut to its length.
// The outputs and input gradients of the real steps must agree, the padding steps' output
// and input gradient must be 0, and the parameter gradients of the batch must be the sum of
// the single runs'. Sequences of length 0 are not run alone; their output is the initial
// state (0).
inline void check_padded_batch_equals_one_by_one(const Layer& layer, std::size_t n_in,
                                                  std::size_t steps, const arma::uvec& lengths,
                                                  std::size_t out_per_step, bool every_step,
                                                  std::uint64_t seed = 3) {
  const std::size_t batch = lengths.n_elem;
  Rng rng(seed);
  const Tree<double> params = layer.init<double>(Shape{steps, n_in}, xavier_normal(), rng);
  const arma::mat x = random_matrix(steps * n_in, batch, rng);
  const std::size_t out_rows = every_step ? steps * out_per_step : out_per_step;
  const arma::mat dy = random_matrix(out_rows, batch, rng);

  Context ctx;
  ctx.lengths = &lengths;
  const auto fwd = layer.forward(params, x, Shape{steps, n_in}, ctx);
  const auto bwd = layer.backward(params, *fwd.cache, dy);
  BOOST_REQUIRE(fwd.y().n_rows == out_rows);

  Tree<double> summed = zeros_like(params);
  for (std::size_t b = 0; b < batch; ++b) {
    const std::size_t length = lengths[b];
    const std::string which = "sample " + std::to_string(b) + " of length " + std::to_string(length);
    if (length == 0) {
      BOOST_TEST(arma::abs(fwd.y().col(b)).max() == 0.0, which << ": output is not 0");
      BOOST_TEST(arma::abs(bwd.dx.col(b)).max() == 0.0, which << ": dx is not 0");
      continue;
    }
    const arma::mat alone_x = x.submat(0, b, length * n_in - 1, b);
    const auto alone = layer.forward(params, alone_x, Shape{length, n_in});
    const std::size_t alone_rows = every_step ? length * out_per_step : out_per_step;
    const arma::mat alone_dy = dy.submat(0, b, alone_rows - 1, b);
    const auto alone_bwd = layer.backward(params, *alone.cache, alone_dy);
    BOOST_TEST(max_relative_difference(fwd.y().submat(0, b, alone_rows - 1, b), alone.y()) < 1e-12,
               which << ": output differs from the sequence run alone");
    BOOST_TEST(max_relative_difference(bwd.dx.submat(0, b, length * n_in - 1, b), alone_bwd.dx) < 1e-12,
               which << ": dx differs from the sequence run alone");
    if (alone_rows < out_rows)
      BOOST_TEST(arma::abs(fwd.y().submat(alone_rows, b, out_rows - 1, b)).max() == 0.0,
                 which << ": output at padding steps is not 0");
    if (length < steps)
      BOOST_TEST(arma::abs(bwd.dx.submat(length * n_in, b, steps * n_in - 1, b)).max() == 0.0,
                 which << ": dx at padding steps is not 0");
    summed = zip(summed, alone_bwd.grads,
                 [](const std::string&, const arma::mat& a, const arma::mat& g) { return arma::mat(a + g); });
  }
  bwd.grads.for_each([&](const std::string& path, const arma::mat& g) {
    BOOST_TEST(max_relative_difference(g, summed.at(path).value()) < 1e-12,
               path << ": the padded batch's gradient is not the sum of the sequences' alone");
  });
}

}  // namespace layer_tests
