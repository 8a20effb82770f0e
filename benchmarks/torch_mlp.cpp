// libtorch twin of the layercache MLP benchmark: 784-512-256-10 ReLU MLP on Fashion-MNIST, SGD momentum 0.9, lr 0.01.
//
// Train: `torch_mlp --batch 32|128|512 --threads 1|2 [--epochs 3] [--warmup 1] [--max-samples N]`
//   -> {"impl":"torch","case":"mlp_b128",...}  (seconds per epoch over the 60000 training samples)
// Infer: `torch_mlp --mode infer --batch 1|256 --threads 1|2`
//   -> {"impl":"torch","case":"mlp_infer_b256",...}  (seconds per pass over the 10000 test samples)
// See torch_common.hpp for exactly what is timed.
#include "torch_common.hpp"

namespace {

// A plain Module rather than nn::Sequential: Sequential's type-erased dispatch would add
// per-layer overhead that a hand-written C++ network does not have.
struct MlpImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  MlpImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(784, 512));
    fc2 = register_module("fc2", torch::nn::Linear(512, 256));
    fc3 = register_module("fc3", torch::nn::Linear(256, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(fc1->forward(x));
    x = torch::relu(fc2->forward(x));
    return fc3->forward(x);  // logits; the loss applies log-softmax itself
  }
};
TORCH_MODULE(Mlp);

}  // namespace

int main(int argc, char** argv) {
  const lcbench::Options opt = lcbench::parse_options(argc, argv, "torch_mlp");
  return lcbench::torchbench::run(opt, "mlp", {784}, [] { return Mlp(); });
}
