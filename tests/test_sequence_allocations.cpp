// A steady-state training step of the sequence layers allocates nothing: forward and backward
// written into the previous step's results, with padded batches (docs/sequences.md).
#include <boost/test/unit_test.hpp>

#include <cstdint>

#include "layercache/layercache.hpp"
#include "alloc_counter.hpp"

using namespace layercache;

namespace {

boost::test_tools::assertion_result sequence_allocations_are_counted(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result counted(lcbench::alloc::available());
  counted.message() << "heap allocations are not counted under AddressSanitizer";
  return counted;
}

// Heap allocations of three forward/backward steps of `layer` after three warm-up steps.
std::uint64_t allocations_per_three_steps(const Layer& layer, const arma::fmat& x,
                                          const Shape& shape, const arma::uvec& lengths) {
  Rng rng(3);
  const TreeF params = layer.init(shape, xavier_uniform(), rng);
  ForwardResult<float> fwd;
  BackwardResult<float> bwd;
  const Context ctx{.mode = Mode::train, .rng = &rng, .lengths = &lengths};
  const Needs needs{.input = true};
  arma::fmat dy;
  auto step = [&] {
    layer.forward(params, x, shape, ctx, fwd);
    if (dy.n_rows != fwd.y().n_rows) dy.ones(fwd.y().n_rows, fwd.y().n_cols);
    layer.backward(params, *fwd.cache, dy, needs, bwd);
  };
  for (int i = 0; i < 3; ++i) step();
  lcbench::alloc::Scope counting;
  for (int i = 0; i < 3; ++i) step();
  return counting.counts().allocations();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_steady_state_step_of_each_recurrent_layer_allocates_nothing,
                     *boost::unit_test::precondition(sequence_allocations_are_counted)) {
  const arma::fmat x(6 * 5, 4, arma::fill::randn);  // 4 samples of 6 steps of 5 features
  const arma::uvec lengths{6, 3, 0, 5};
  const std::vector<std::pair<const char*, AnyLayer>> layers = {
      {"lstm", LSTM({.n_in = 5, .n_hidden = 8, .return_sequences = true})},
      {"lstm_last_step", LSTM({.n_in = 5, .n_hidden = 8})},
      {"gru", GRU({.n_in = 5, .n_hidden = 8, .return_sequences = true})},
      {"simple_rnn", SimpleRNN({.n_in = 5, .n_hidden = 8})},
  };
  for (const auto& [name, layer] : layers)
    BOOST_TEST(allocations_per_three_steps(*layer, x, Shape{6, 5}, lengths) == 0u, name);
}
