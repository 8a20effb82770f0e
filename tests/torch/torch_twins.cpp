// The layercache twins of tests/torch/torch_models.py's PyTorch models: loads the params
// scripts/torch_to_layercache.py converted from each (DIR/NAME.h5, checked against the twin's
// structure by load_into), runs the twin on the same images and compares with torch's outputs:
// every value within 1e-5. Prints the largest difference of each model; exits 1 when one
// does not agree.
//
//   torch_twins DIR
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

struct Twin {
  std::string name;  // as in torch_models.py
  Network net;
  Shape input;
  bool float64 = false;
};

// The twins, layer for layer; the converter prints this spelling for each torch model.
std::vector<Twin> twins() {
  return {
      {"mlp", Network{Flatten(), Dense(784, 128), ReLU(), Dense(128, 10)}, Shape{1, 28, 28}},
      {"cnn",
       Network{Conv2D({.in_channels = 1, .out_channels = 8, .kernel = 3, .padding = 1}), ReLU(),
               MaxPool2D({.kernel = 2, .stride = 2}),
               Conv2D({.in_channels = 8, .out_channels = 16, .kernel = 3, .stride = 2, .bias = false}),
               Tanh(), Flatten(), Dense(576, 32), GELU(), Dense(32, 10), LogSoftmax()},
       Shape{1, 28, 28}},
      {"cnn_not_square",
       Network{Conv2D({.in_channels = 1, .out_channels = 4, .kernel = 5, .stride = 2, .padding = 2}),
               ELU({.alpha = 1.0}), MaxPool2D({.kernel = 3, .stride = 2}), Flatten(), Dense(96, 10)},
       Shape{1, 28, 20}},
      {"every_activation",
       Network{Flatten(), Dense(784, 64), ELU({.alpha = 0.5}),
               Network{Dense(64, 64, {.bias = false}), LeakyReLU({.slope = 0.1}), Identity()},
               Dense(64, 64), GELU({.tanh_approximation = true}), Dense(64, 64), Sigmoid(),
               Dense(64, 10), Softmax()},
       Shape{1, 28, 28}},
      {"mlp_float64", Network{Flatten(), Dense(784, 32), Tanh(), Dense(32, 10)}, Shape{1, 28, 28},
       true},
  };
}

template <class T>
arma::Mat<T> read_raw(const std::string& path, std::size_t rows) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw IoError("cannot read", path);
  const auto bytes = std::size_t(in.tellg());
  arma::Mat<T> m(rows, bytes / sizeof(T) / rows);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(m.memptr()), std::streamsize(m.n_elem * sizeof(T)));
  return m;
}

// The largest |layercache - torch| over the twin's outputs on torch's inputs.
template <class T>
double largest_difference(const Twin& twin, const std::string& dir) {
  const std::string base = dir + "/" + twin.name;
  Rng rng(0);
  Tree<T> params = twin.net.init<T>(twin.input, zeros(), rng);
  load_into(base + ".h5", "params", params);  // names and shapes must match the twin's
  const Shape out_shape = twin.net.output_shape(twin.input);
  const arma::Mat<T> x = from_row_major(read_raw<T>(base + ".input.bin", twin.input.size()), twin.input);
  const arma::Mat<T> y = to_row_major(twin.net.infer(params, x, twin.input), out_shape);
  const arma::Mat<T> want = read_raw<T>(base + ".output.bin", out_shape.size());
  if (want.n_cols != y.n_cols) throw ShapeError("torch's output has another batch size", base);
  return arma::abs(arma::conv_to<arma::mat>::from(y - want)).max();
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::fprintf(stderr, "usage: torch_twins DIR\n");
    return 2;
  }
  constexpr double tolerance = 1e-5;
  int failed = 0;
  const std::vector<Twin> all = twins();
  for (const Twin& twin : all) {
    const double d = twin.float64 ? largest_difference<double>(twin, argv[1])
                                  : largest_difference<float>(twin, argv[1]);
    const bool ok = d <= tolerance;
    failed += !ok;
    std::printf("%-17s %s torch: largest difference %.2e\n", twin.name.c_str(),
                ok ? "agrees with" : "DISAGREES with", d);
  }
  std::printf("%zu of %zu layercache twins agree with their torch models within %g\n",
              all.size() - failed, all.size(), tolerance);
  return failed ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "torch_twins: %s\n", e.what());
  return 1;
}
