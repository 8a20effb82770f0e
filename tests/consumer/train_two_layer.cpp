// A user's program: trains a two-layer network on y = sum(x) by plain gradient descent on the
// mean squared error, and exits non-zero unless the loss falls. Standard C++17, to show that
// the headers need no more. Built three ways (subproject, pkg-config, CMake) by tests/consumer/run.
#include <cstdio>
#include <layercache/layercache.hpp>

int main() {
  using namespace layercache;
  Rng rng(7);
  arma::fmat x(3, 64);  // 64 samples of 3 features, one per column
  for (float& v : x) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  const arma::fmat y = arma::sum(x, 0);  // (1 × 64)

  const Network net{Dense(3, 16), Tanh(), Dense(16, 1)};
  Tree<float> params = net.init(Shape{3}, xavier_uniform(), rng);
  double first = 0.0, loss = 0.0;
  for (int step = 0; step < 200; ++step) {
    ForwardResult<float> out = net.forward(params, x);
    const arma::fmat diff = out.y() - y;
    loss = arma::accu(arma::square(diff)) / diff.n_elem;
    if (step == 0) first = loss;
    if (step % 40 == 0) std::printf("step %3d  loss %.5f\n", step, loss);
    const arma::fmat dy = 2.0f * diff / static_cast<float>(diff.n_elem);  // d loss / d y
    const BackwardResult<float> grads = net.backward(params, *out.cache, dy);
    params = zip(params, grads.grads, [](const std::string&, const arma::fmat& w,
                                         const arma::fmat& dw) { return arma::fmat(w - 0.1f * dw); });
  }
  std::printf("loss %.5f -> %.5f\n", first, loss);
  return loss < 0.5 * first ? 0 : 1;
}
