// A generative adversarial network on a 2-D toy distribution: points on a noisy ring. The
// generator maps noise to points; the discriminator tells real points from generated ones.
// Each step trains the discriminator on a batch of both, then the generator through the
// discriminator: the discriminator's backward returns dx, the gradient of the generator's
// loss with respect to the generated points, and that dx is the generator's dy. Two
// networks, two optimizers, one hand-written loop (as examples/custom_loop.cpp).
//
// At the end it draws real and generated points into a PNG (gnuplot) when --png is given,
// and prints the energy distance between the two distributions last
// (`energy_distance <value>`), measured on fresh samples; it exits with status 1 when it is
// above --max-distance (default 0.05).
//
//   gan [--steps N] [--seed N] [--max-distance X] [--png FILE.png]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numbers>
#include <string>

#include "layercache/layercache.hpp"
#include "options.hpp"

using namespace layercache;

namespace {

constexpr std::size_t latent = 8;   // noise dimensions
constexpr double radius = 2.0;      // of the ring
constexpr double spread = 0.1;      // standard deviation of the noise around it

// n points of the real distribution, one per column (2 × n): a ring, angles uniform in
// [0, 2π·covered) (covered < 1 gives a reference: a generator that misses part of the ring).
void sample_real(std::size_t n, Rng& rng, arma::fmat& x, double covered = 1.0) {
  x.set_size(2, n);
  for (std::size_t i = 0; i < n; ++i) {
    const double angle = rng.uniform(0, 2 * std::numbers::pi * covered);
    x(0, i) = float(radius * std::cos(angle) + rng.normal(0, spread));
    x(1, i) = float(radius * std::sin(angle) + rng.normal(0, spread));
  }
}

// n noise vectors (latent × n), standard normal.
void sample_noise(std::size_t n, Rng& rng, arma::fmat& z) {
  z.set_size(latent, n);
  for (float& v : z) v = float(rng.normal());
}

// Mean Euclidean distance between the columns of a and those of b.
double mean_distance(const arma::mat& a, const arma::mat& b) {
  double sum = 0;
  for (arma::uword j = 0; j < b.n_cols; ++j)
    sum += arma::accu(arma::sqrt(arma::sum(arma::square(a.each_col() - b.col(j)), 0)));
  return sum / double(a.n_cols * b.n_cols);
}

// The energy distance 2 E|X − Y| − E|X − X'| − E|Y − Y'| of the samples x and y (columns):
// zero when the two distributions are equal, positive otherwise.
double energy_distance(const arma::fmat& x, const arma::fmat& y) {
  const arma::mat a = arma::conv_to<arma::mat>::from(x), b = arma::conv_to<arma::mat>::from(y);
  return 2 * mean_distance(a, b) - mean_distance(a, a) - mean_distance(b, b);
}

// Real and generated points drawn by gnuplot into `png`; false when gnuplot failed.
bool plot(const arma::fmat& real, const arma::fmat& fake, const std::string& png) {
  const std::string data = png + ".dat";
  {
    std::ofstream out(data);
    for (arma::uword i = 0; i < real.n_cols; ++i) out << real(0, i) << ' ' << real(1, i) << '\n';
    out << "\n\n";
    for (arma::uword i = 0; i < fake.n_cols; ++i) out << fake(0, i) << ' ' << fake(1, i) << '\n';
  }
  const std::string command =
      "gnuplot -e \"set terminal pngcairo size 640,640; set output '" + png +
      "'; set size square; set key top right; set xrange [-3:3]; set yrange [-3:3]; "
      "plot '" + data + "' index 0 with points pt 7 ps 0.3 lc rgb '#1f77b4' title 'real', '" +
      data + "' index 1 with points pt 7 ps 0.3 lc rgb '#d62728' title 'generated'\"";
  const bool ok = std::system(command.c_str()) == 0;
  std::remove(data.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t steps = 3000;
  std::uint64_t seed = 1;
  double max_distance = 0.05;
  std::string png;
  examples::parse_options(
      argc, argv,
      "usage: gan [--steps N] [--seed N] [--max-distance X] [--png FILE.png]\n"
      "Trains a GAN on points of a noisy ring (default 3000 steps of batch 256, seed 1),\n"
      "draws real and generated points into FILE.png with gnuplot when --png is given, and\n"
      "prints the energy distance between the two distributions last; exits 1 when it is\n"
      "above --max-distance (0.05).\n",
      [&](const std::string& flag, const examples::Value& value) {
        if (flag == "--steps") steps = examples::integer<std::size_t>(flag, value());
        else if (flag == "--seed") seed = examples::integer<std::uint64_t>(flag, value());
        else if (flag == "--max-distance") max_distance = examples::number(flag, value());
        else if (flag == "--png") png = value();
        else return false;
        return true;
      });
  set_blas_threads(1);  // small matrices: threads cost more than they give
  Rng rng(seed);

  const Network generator{Dense(latent, 128), ReLU(), Dense(128, 128), ReLU(), Dense(128, 2)};
  const Network discriminator{Dense(2, 128), LeakyReLU({.slope = 0.2}), Dense(128, 128),
                              LeakyReLU({.slope = 0.2}), Dense(128, 1)};
  TreeF g_params = generator.init(Shape{latent}, he_normal(), rng);
  TreeF d_params = discriminator.init(Shape{2}, he_normal(), rng);
  const Optimizer g_optimizer = adam({.learning_rate = 1e-3, .beta1 = 0.5});
  const Optimizer d_optimizer = adam({.learning_rate = 1e-3, .beta1 = 0.5});
  OptStateF g_state = g_optimizer.init(g_params), d_state = d_optimizer.init(d_params);
  const BinaryCrossEntropyWithLogits loss;

  // The generator's step computes no gradient for the discriminator's weights: all frozen.
  const FrozenSet d_all = freeze(d_params, d_params.paths());
  const std::size_t batch = 256;
  // Discriminator batches: real points then generated ones, labelled 1 and 0.
  arma::fmat real, z, d_input(2, 2 * batch), dy_d, dy_g;
  const arma::fmat d_targets = arma::join_rows(arma::fmat(1, batch, arma::fill::ones),
                                               arma::fmat(1, batch, arma::fill::zeros));
  const arma::fmat all_real(1, batch, arma::fill::ones);  // the generator's targets
  ForwardResult<float> g_forward, d_forward, d_on_fake;
  BackwardResult<float> g_backward, d_backward, d_through;
  const Context ctx{.mode = Mode::train, .rng = &rng};

  arma::fmat test_real, test_z;
  sample_real(2000, rng, test_real);
  sample_noise(2000, rng, test_z);
  const double before = energy_distance(test_real, generator.infer(g_params, test_z, Shape{latent}));

  for (std::size_t step = 1; step <= steps; ++step) {
    sample_real(batch, rng, real);
    sample_noise(batch, rng, z);
    generator.forward(g_params, z, Shape{latent}, ctx, g_forward);

    // Discriminator: real points are 1, generated ones 0.
    d_input.head_cols(batch) = real;
    d_input.tail_cols(batch) = g_forward.y();
    discriminator.forward(d_params, d_input, Shape{2}, ctx, d_forward);
    const double d_loss = loss.value_and_grad(d_forward.y(), d_targets, dy_d);
    discriminator.backward(d_params, *d_forward.cache, dy_d, Needs{.input = false}, d_backward);
    d_optimizer.update(d_params, d_backward.grads, d_state);

    // Generator: make the discriminator say 1 for its points. The discriminator's dx is the
    // gradient of that loss with respect to the generated points: the generator's dy.
    discriminator.forward(d_params, g_forward.y(), Shape{2}, ctx, d_on_fake);
    const double g_loss = loss.value_and_grad(d_on_fake.y(), all_real, dy_g);
    discriminator.backward(d_params, *d_on_fake.cache, dy_g,
                           Needs{.input = true, .frozen = &d_all}, d_through);
    generator.backward(g_params, *g_forward.cache, d_through.dx, Needs{.input = false}, g_backward);
    g_optimizer.update(g_params, g_backward.grads, g_state);

    if (step % 1000 == 0 || step == steps)
      std::printf("step %zu  discriminator loss %.4f  generator loss %.4f\n", step, d_loss, g_loss);
  }

  // The distance on 2000 fresh points of each, against references: another real sample of
  // that size (what sampling alone gives), points of three quarters of the ring (a generator
  // that misses a quarter of it) and the untrained generator.
  arma::fmat other_real, three_quarters;
  sample_real(2000, rng, other_real);
  sample_real(2000, rng, three_quarters, 0.75);
  const arma::fmat generated = generator.infer(g_params, test_z, Shape{latent});
  std::printf("reference: energy_distance of another real sample %.4f, of three quarters of "
              "the ring %.4f, of the untrained generator %.4f\n",
              energy_distance(test_real, other_real), energy_distance(test_real, three_quarters),
              before);
  if (!png.empty()) {
    if (!plot(test_real, generated, png)) {
      std::fprintf(stderr, "gan: gnuplot could not draw %s\n", png.c_str());
      return 1;
    }
    std::printf("plot %s\n", png.c_str());
  }
  const double distance = energy_distance(test_real, generated);
  std::printf("energy_distance %.4f\n", distance);
  return distance <= max_distance ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gan: %s\n", e.what());
  return 1;
}
