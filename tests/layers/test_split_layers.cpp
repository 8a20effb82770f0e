// Specification of intra-layer parallelism (Context::executor, Needs::executor): a layer
// that splits its work across an executor's threads gives the results of one thread, and
// work too small to pay for the threads stays on the calling thread.
#include <boost/test/unit_test.hpp>

#include "../counting_executor.hpp"
#include "layer_test_support.hpp"
#include "layercache/layercache.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

template <class T>
arma::Mat<T> random_input(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  Rng rng(seed);
  return arma::conv_to<arma::Mat<T>>::from(random_matrix(rows, cols, rng));
}

// Forward and backward of `layer` on x with and without the executor; checks that both
// give the same output, input gradient and parameter gradients (up to `tolerance`
// relative) and returns how many times the executor ran.
template <class T>
int compare_split(const Layer& layer, const Shape& shape, const arma::Mat<T>& x,
                  std::size_t threads, const Needs& needs, double tolerance) {
  Rng rng(3);
  Tree<T> params = layer.template init<T>(shape, he_normal(), rng);
  params.for_each([&](const std::string&, arma::Mat<T>& p) {  // non-zero biases too
    for (T& v : p) v = T(rng.normal());
  });
  CountingExecutor executor(threads);
  Context split_ctx;
  split_ctx.executor = &executor;
  Needs split_needs = needs;
  split_needs.executor = &executor;
  const ForwardResult<T> one = layer.forward(params, x, shape);
  const ForwardResult<T> many = layer.forward(params, x, shape, split_ctx);
  const arma::Mat<T> dy = random_input<T>(one.y().n_rows, one.y().n_cols, 4);
  const BackwardResult<T> g_one = layer.backward(params, *one.cache, dy, needs);
  const BackwardResult<T> g_many = layer.backward(params, *many.cache, dy, split_needs);
  const auto same = [&](const arma::Mat<T>& a, const arma::Mat<T>& b) {
    if (a.n_rows != b.n_rows || a.n_cols != b.n_cols) return false;
    if (a.is_empty()) return true;
    return double(arma::abs(a - b).max()) <= tolerance * double(arma::abs(b).max());
  };
  BOOST_TEST(same(many.y(), one.y()), layer.kind() << " output, " << threads << " threads");
  BOOST_TEST(same(g_many.dx, g_one.dx), layer.kind() << " dx, " << threads << " threads");
  for (const std::string& path : g_one.grads.paths())
    BOOST_TEST(same(g_many.grads.at(path).value(), g_one.grads.at(path).value()),
               layer.kind() << " grad " << path << ", " << threads << " threads");
  return executor.runs;
}

}  // namespace

BOOST_AUTO_TEST_CASE(dense_split_across_threads_gives_the_one_thread_results) {
  // 300 × 200 × 64 multiply-adds per product: enough to split. Row blocks of 16 leave a
  // ragged last block (200 = 12 × 16 + 8) and, at 3 threads, unequal shares.
  for (const std::size_t threads : {2u, 3u}) {
    for (const bool bias : {true, false}) {
      const Dense dense(300, 200, {.bias = bias});
      const arma::mat xd = random_input<double>(300, 64, 1);
      BOOST_TEST(compare_split<double>(dense, Shape{300}, xd, threads, Needs{}, 1e-13) == 2);
      const arma::fmat xf = random_input<float>(300, 64, 1);
      BOOST_TEST(compare_split<float>(dense, Shape{300}, xf, threads, Needs{}, 1e-6) == 2);
    }
    // Without dx (a first layer) and with the weight frozen (its gradient not computed).
    const Dense dense(300, 200);
    const arma::mat x = random_input<double>(300, 64, 2);
    Needs no_input;
    no_input.input = false;
    BOOST_TEST(compare_split<double>(dense, Shape{300}, x, threads, no_input, 1e-13) == 2);
    Tree<double> shapes;
    shapes.add("weight", Tree<double>(arma::mat(200, 300)));
    shapes.add("bias", Tree<double>(arma::mat(200, 1)));
    const FrozenSet frozen = freeze(shapes, {"weight"});
    Needs frozen_weight;
    frozen_weight.frozen = &frozen;
    BOOST_TEST(compare_split<double>(dense, Shape{300}, x, threads, frozen_weight, 1e-13) == 2);
  }
}

BOOST_AUTO_TEST_CASE(activations_split_across_threads_give_the_one_thread_results) {
  // 200 × 120 entries: enough to split, in whole columns.
  const arma::mat x = random_input<double>(200, 120, 5);
  for (const std::size_t threads : {2u, 3u}) {
    BOOST_TEST(compare_split<double>(ReLU(), Shape{200}, x, threads, Needs{}, 0.0) == 2);
    BOOST_TEST(compare_split<double>(LeakyReLU(), Shape{200}, x, threads, Needs{}, 0.0) == 2);
    BOOST_TEST(compare_split<double>(Tanh(), Shape{200}, x, threads, Needs{}, 0.0) == 2);
    BOOST_TEST(compare_split<double>(GELU(), Shape{200}, x, threads, Needs{}, 0.0) == 2);
    BOOST_TEST(compare_split<double>(Softmax(), Shape{200}, x, threads, Needs{}, 0.0) == 2);
  }
}

BOOST_AUTO_TEST_CASE(small_work_stays_on_the_calling_thread) {
  // 20 × 10 × 8 multiply-adds and 80 entries: splitting would cost more than it saves.
  const arma::mat x = random_input<double>(20, 8, 6);
  BOOST_TEST(compare_split<double>(Dense(20, 10), Shape{20}, x, 2, Needs{}, 0.0) == 0);
  BOOST_TEST(compare_split<double>(ReLU(), Shape{20}, x, 2, Needs{}, 0.0) == 0);
  // A network passes its executor on to its layers. On 96 samples the first Dense (5.8
  // million multiply-adds) and the ReLU (19,200 entries) split, forward and backward; the
  // last Dense (38,400 multiply-adds) does not.
  const Network net{Dense(300, 200), ReLU(), Dense(200, 2)};
  const arma::mat xn = random_input<double>(300, 96, 7);
  BOOST_TEST(compare_split<double>(net, Shape{300}, xn, 2, Needs{}, 1e-13) == 4);
}
