// libtorch twin of layercache's train_cnn_bn: the benchmark CNN with BatchNorm after each
// convolution and Dropout before the last layer, on Fashion-MNIST, SGD momentum 0.9, lr 0.01.
//
// Train: `torch_cnn_bn --batch 128 --threads 1|2 [--epochs 3] [--warmup 1] [--max-samples N]`
//   -> {"impl":"torch","case":"cnn_bn_b128",...}
// Infer: `torch_cnn_bn --mode infer --batch 1|256 --threads 1|2` (eval mode: running
//   statistics, no dropout) -> {"impl":"torch","case":"cnn_bn_infer_b256",...}
// See torch_common.hpp for exactly what is timed.
#include "torch_common.hpp"

namespace {

// Input 1×28×28 -> conv3×3 (valid, no bias) 32×26×26 -> BatchNorm -> ReLU -> pool 32×13×13
// -> conv3×3 (no bias) 64×11×11 -> BatchNorm -> ReLU -> pool 64×5×5 -> flatten 1600
// -> dense 128 -> ReLU -> Dropout 0.5 -> dense 10 (logits). As in layercache's cnn_bn, the
// convolutions have no bias (BatchNorm's shift replaces it); BatchNorm's momentum 0.1 and eps
// 1e-5 are both libraries' defaults.
struct CnnBnImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout dropout{nullptr};
  CnnBnImpl() {
    conv1 = register_module("conv1",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).bias(false)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(32));
    conv2 = register_module("conv2",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).bias(false)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(64));
    fc1 = register_module("fc1", torch::nn::Linear(1600, 128));
    dropout = register_module("dropout", torch::nn::Dropout(0.5));
    fc2 = register_module("fc2", torch::nn::Linear(128, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(bn1->forward(conv1->forward(x))), 2);
    x = torch::max_pool2d(torch::relu(bn2->forward(conv2->forward(x))), 2);
    x = dropout->forward(torch::relu(fc1->forward(x.flatten(1))));
    return fc2->forward(x);
  }
};
TORCH_MODULE(CnnBn);

}  // namespace

int main(int argc, char** argv) {
  const lcbench::Options opt = lcbench::parse_options(argc, argv, "torch_cnn_bn");
  return lcbench::torchbench::run(opt, "cnn_bn", {1, 28, 28}, [] { return CnnBn(); });
}
