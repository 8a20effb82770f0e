// libtorch twin of the layercache CNN benchmark: conv32-pool-conv64-pool-dense128-dense10 on Fashion-MNIST, SGD momentum 0.9, lr 0.01.
//
// Train: `torch_cnn --batch 128 --threads 1|2 [--epochs 3] [--warmup 1] [--max-samples N]`
//   -> {"impl":"torch","case":"cnn_b128",...}; with --max-samples only ceil(N/128) batches are
//   timed and the epoch time is extrapolated ("samples_timed", "extrapolated" in the JSON).
// Infer: `torch_cnn --mode infer --batch 1|256 --threads 1|2`
//   -> {"impl":"torch","case":"cnn_infer_b1",...}
// See torch_common.hpp for exactly what is timed.
#include "torch_common.hpp"

namespace {

// Input 1×28×28 -> conv3×3 (valid) 32×26×26 -> pool 32×13×13 -> conv3×3 64×11×11 -> pool 64×5×5
// -> flatten 1600 -> dense 128 -> dense 10 (logits).
struct CnnImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  CnnImpl() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).stride(1).padding(0)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).stride(1).padding(0)));
    fc1 = register_module("fc1", torch::nn::Linear(1600, 128));
    fc2 = register_module("fc2", torch::nn::Linear(128, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = torch::relu(fc1->forward(x.flatten(1)));
    return fc2->forward(x);
  }
};
TORCH_MODULE(Cnn);

}  // namespace

int main(int argc, char** argv) {
  const lcbench::Options opt = lcbench::parse_options(argc, argv, "torch_cnn");
  return lcbench::torchbench::run(opt, "cnn", {1, 28, 28}, [] { return Cnn(); });
}
