// The compile-time yardstick: a small user program that trains an MLP must
// compile in seconds. scripts/compile_time times `g++ -std=c++20 -O2 -c` of this file.
#include <cstdio>
#include <layercache/layercache.hpp>

int main() {
  using namespace layercache;
  Rng rng(1);
  arma::fmat x(2, 256);  // two features per sample, one sample per column
  for (float& v : x) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  arma::uvec labels(256);  // class 1: inside the circle of radius 0.8
  for (arma::uword i = 0; i < 256; ++i) labels(i) = arma::norm(x.col(i)) < 0.8f ? 1 : 0;

  const Network net{Dense(2, 32), ReLU(), Dense(32, 32), ReLU(), Dense(32, 2)};
  Tree<float> params = net.init(Shape{2}, he_normal(), rng);
  const Optimizer opt = adam({.learning_rate = 1e-2});
  OptState<float> opt_state = opt.init(params);
  const SoftmaxCrossEntropy loss;
  for (int epoch = 0; epoch < 200; ++epoch) {
    ForwardResult<float> out = net.forward(params, x);
    const LossResult<float> l = loss(out.y(), labels);
    const BackwardResult<float> back = net.backward(params, *out.cache, l.grad);
    opt.update(params, back.grads, opt_state);
    if (epoch % 50 == 0) std::printf("epoch %3d  loss %.4f\n", epoch, l.value);
  }
  return 0;
}
