// Exports the models scripts/check_onnx gives to ONNX's checker and to ONNX Runtime, with
// real inputs and layercache's own outputs for them. For each model NAME it writes to OUT_DIR:
//   NAME.onnx         the model (export_onnx)
//   NAME.input.bin    the first N Fashion-MNIST test images, row-major (NCHW), raw floats
//   NAME.output.bin   layercache's infer of them, row-major, raw floats
//   NAME.json         {"type": "float32", "input": [N, 1, 28, 28], "output": [N, 10]}
//
//   onnx_models OUT_DIR [--images N] [--data-dir DIR]
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

// Every model takes Fashion-MNIST images (1, 28, 28).
struct Model {
  std::string name;
  Network net;
  bool float64 = false;  // export (and compute) in double precision
};

// A Graph on the two halves of an image: a sample of (1, 28, 28) is 28 columns of 28 rows,
// so its first 392 values are the left 14 columns, the (1, 28, 14) image "left". One
// convolution, its weights shared, reads both halves; their features are joined along the
// channels and subtracted; two outputs (10 and 3 values) make the graph's output of 13.
Graph two_halves() {
  return Graph({.inputs = {{"left", Shape{1, 28, 14}}, {"right", Shape{1, 28, 14}}},
                .nodes = {{.name = "left_features",
                           .layer = Network{Conv2D({.in_channels = 1, .out_channels = 4,
                                                    .kernel = 3, .padding = 1}), Tanh()},
                           .inputs = {"left"}},
                          {.name = "right_features", .inputs = {"right"}, .shares = "left_features"},
                          {.name = "both", .inputs = {"left_features", "right_features"}},  // (8, 28, 14)
                          {.name = "pooled",
                           .layer = Network{MaxPool2D({.kernel = 2, .stride = 2}), Flatten()},
                           .inputs = {"both"}},                                               // (784)
                          {.name = "difference", .inputs = {"left_features", "right_features"},
                           .merge = Merge::subtract},                                         // (4, 28, 14)
                          {.name = "logits", .layer = Dense(784, 10), .inputs = {"pooled"}},
                          {.name = "extra", .layer = Network{Flatten(), Dense(1568, 3)},
                           .inputs = {"difference"}},
                          {.name = "gated", .inputs = {"logits", "logits"},
                           .merge = Merge::multiply}},
                .outputs = {"gated", "extra"}});
}

// The models: the main job's MLP, the benchmark CNN, two that pass through every other
// layer kind and every way of reading an image (reshapes to and from images, a softmax over
// an image, an image output, a network inside the network), without squashing differences
// on the way (a softmax of a wrong input would hide them), and the combinators: residual
// blocks on vectors and images (with and without a projection), Parallel with every merge
// (a concat of images along channels among them), and a Graph with two inputs, two outputs
// and a shared node, inside a network.
std::vector<Model> models() {
  return {
      {"mlp", Network{Dense(784, 512), ReLU(), Dense(512, 256), ReLU(), Dense(256, 10)}},
      {"cnn", Network{Conv2D({.in_channels = 1, .out_channels = 32, .kernel = 3}), ReLU(),
                      MaxPool2D({.kernel = 2, .stride = 2}),
                      Conv2D({.in_channels = 32, .out_channels = 64, .kernel = 3}), ReLU(),
                      MaxPool2D({.kernel = 2, .stride = 2}), Flatten(), Dense(1600, 128), ReLU(),
                      Dense(128, 10)}},
      {"image_layers",
       Network{Conv2D({.in_channels = 1, .out_channels = 4, .kernel = 5, .stride = 2,
                       .padding = 2, .bias = false}),                      // (4, 14, 14)
               LeakyReLU({.slope = 0.1}),
               MaxPool2D({.kernel = 3, .stride = 2}),                      // (4, 6, 6)
               named("block", Network{ELU({.alpha = 0.5}), Identity()}),
               Reshape(Shape{6, 24}),                                      // image → sequence
               Reshape(Shape{2, 12, 6}),                                   // → another image
               Conv2D({.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1}),
               LogSoftmax()}},                                             // over an image
      {"vector_layers",
       Network{Flatten(), Dense(784, 64, {.bias = false}), GELU(), Dense(64, 64),
               GELU({.tanh_approximation = true}), Dense(64, 64), Sigmoid(), Dense(64, 64),
               Tanh(), Dense(64, 10), Softmax()}},
      {"residual",
       Network{Flatten(), Dense(784, 64), ReLU(),
               named("block1", Residual(Network{Dense(64, 64), Tanh(), Dense(64, 64)})),
               named("block2", Residual(Network{Dense(64, 32), ReLU()}, Dense(64, 32))),
               Dense(32, 10)}},
      {"residual_cnn",
       Network{Conv2D({.in_channels = 1, .out_channels = 4, .kernel = 3, .padding = 1}), ReLU(),
               Residual(Network{Conv2D({.in_channels = 4, .out_channels = 4, .kernel = 3,
                                        .padding = 1}), ELU()}),
               Parallel{Conv2D({.in_channels = 4, .out_channels = 2, .kernel = 3, .padding = 1}),
                        Conv2D({.in_channels = 4, .out_channels = 3, .kernel = 1})},  // (5, 28, 28)
               MaxPool2D({.kernel = 2, .stride = 2}), Flatten(), Dense(980, 10)}},
      {"parallel",
       Network{Flatten(), Dense(784, 32),
               Parallel({Dense(32, 16), Network{Dense(32, 16), Sigmoid()}}, Merge::multiply),
               Parallel({Dense(16, 16), Identity(), Dense(16, 16)}, Merge::subtract),
               Parallel({Dense(16, 16), Tanh()}, Merge::add),
               Parallel{Dense(16, 8), Identity(), Dense(16, 4)}, Dense(28, 10)}},
      {"graph", Network{named("halves", two_halves()), Tanh()}},
      {"window_layers",
       Network{Conv2D({.in_channels = 1, .out_channels = 4, .kernel = {5, 3}, .stride = {2, 1},
                       .padding = {2, 0}}),                                // (4, 14, 26)
               SiLU(),
               MaxPool2D({.kernel = 3, .stride = 2, .padding = 1}),       // (4, 7, 13)
               Conv2D({.in_channels = 4, .out_channels = 4, .kernel = 3,
                       .padding = Padding2D::same_size(), .groups = 4}),  // depthwise
               Mish(),
               Conv2D({.in_channels = 4, .out_channels = 6, .kernel = {2, 3}, .stride = 2,
                       .padding = Padding2D::same_size(), .dilation = {1, 2},
                       .groups = 2}),                                      // (6, 4, 7)
               Hardswish(),
               AvgPool2D({.kernel = 2, .stride = 1, .padding = 1}),       // (6, 5, 8)
               SELU(),
               AvgPool2D({.kernel = {3, 2}, .padding = {1, 1}, .count_padding = false}),
               Softplus(),                                                  // (6, 2, 5)
               GlobalAvgPool2D(), Dense(6, 10)}},
      {"normalization",
       Network{Conv2D({.in_channels = 1, .out_channels = 3, .kernel = 3, .stride = 2,
                       .bias = false}),                                    // (3, 13, 13)
               BatchNorm(3), ReLU(), Dropout2D(), LayerNorm(), Flatten(), Dense(507, 16),
               BatchNorm(16), Tanh(), Dropout(), LayerNorm(), Dense(16, 10)}},
      // ONNX Runtime's CPU provider has no float64 Conv: a float64 model without one.
      {"mlp_float64", Network{Dense(784, 64), Tanh(), Dense(64, 10), Softmax()}, true},
  };
}

template <class T>
void write_raw(const std::string& path, const arma::Mat<T>& m) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(m.memptr()), std::streamsize(m.n_elem * sizeof(T)));
  if (!out) throw IoError("cannot write", path);
}

std::string dims_json(std::size_t batch, const Shape& shape) {
  std::string s = "[";
  s += std::to_string(batch);
  for (std::size_t i = 0; i < shape.rank(); ++i) s += ", " + std::to_string(shape[i]);
  return s + "]";
}

template <class T>
void write_model(const Model& model, const arma::fmat& images, const Shape& shape,
                 const std::string& dir) {
  Rng rng(7);
  // Every entry moved a little, so that no scale is 1 and no shift 0; the state is what one
  // training forward on the images makes of init_state (running statistics away from 0 and 1).
  Tree<T> params = model.net.init<T>(shape, he_normal(), rng);
  params.for_each([&](const std::string&, arma::Mat<T>& m) {
    for (T& v : m) v += T(rng.normal(0.0, 0.05));
  });
  const arma::Mat<T> images_t = arma::conv_to<arma::Mat<T>>::from(images);
  Tree<T> state = model.net.init_state<T>(shape);
  const Context training{Mode::train, &rng, false, nullptr, nullptr};
  ForwardResult<T> trained = model.net.forward(params, images_t, shape, training, state);
  if (!trained.state.empty()) state = std::move(trained.state);
  const std::string base = dir + "/" + model.name;
  export_onnx(model.net, params, state, shape, base + ".onnx");
  const arma::Mat<T> x = arma::conv_to<arma::Mat<T>>::from(images);
  const arma::Mat<T> y = model.net.infer(params, x, shape, state);
  const Shape out_shape = model.net.output_shape(shape);
  write_raw(base + ".input.bin", to_row_major(x, shape));
  write_raw(base + ".output.bin", to_row_major(y, out_shape));
  std::ofstream(base + ".json") << "{\"type\": \"" << (model.float64 ? "float64" : "float32")
                                << "\", \"input\": " << dims_json(x.n_cols, shape)
                                << ", \"output\": " << dims_json(y.n_cols, out_shape) << "}\n";
  std::printf("%-12s %7zu params -> %s.onnx\n", model.name.c_str(), params.count(), base.c_str());
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: onnx_models OUT_DIR [--images N] [--data-dir DIR]\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::size_t n = 64;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--images") n = std::stoul(argv[i + 1]);
    else if (flag == "--data-dir") data_dir = argv[i + 1];
    else throw ConfigError("unknown option " + flag);
  }
  const Dataset<float> test = load_fashion_mnist<float>(data_dir, "test");
  const arma::fmat images = test.x.cols(0, n - 1);
  for (const Model& model : models()) {
    if (model.float64)
      write_model<double>(model, images, test.shape, dir);
    else
      write_model<float>(model, images, test.shape, dir);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "onnx_models: %s\n", e.what());
  return 1;
}
