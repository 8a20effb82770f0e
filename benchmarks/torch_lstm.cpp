// libtorch twin of layercache's train_lstm: an LSTM reads each Fashion-MNIST image as 28 steps
// of its 28 pixel rows, and a dense layer classifies its last hidden state; SGD momentum 0.9,
// lr 0.01.
//
// Train: `torch_lstm --batch 128 --threads 1|2 [--epochs 3] [--warmup 1] [--max-samples N]`
//   -> {"impl":"torch","case":"lstm_b128",...}
// Infer: `torch_lstm --mode infer --batch 1|256 --threads 1|2`
//   -> {"impl":"torch","case":"lstm_infer_b256",...}
// See torch_common.hpp for exactly what is timed.
#include "torch_common.hpp"

namespace {

// Input (batch, 28 steps, 28 pixels), batch first -> LSTM(28 → 128), gates i, f, g, o as in
// layercache -> the last step's hidden state (batch, 128) -> dense 10 (logits). torch's LSTM
// has two biases (b_ih, b_hh) where layercache's has one; they add the same vector per step.
struct LstmImpl : torch::nn::Module {
  torch::nn::LSTM lstm{nullptr};
  torch::nn::Linear fc{nullptr};
  LstmImpl() {
    lstm = register_module("lstm",
                           torch::nn::LSTM(torch::nn::LSTMOptions(28, 128).batch_first(true)));
    fc = register_module("fc", torch::nn::Linear(128, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    // h_n of the single layer: (1, batch, 128), the hidden state after the last step.
    const torch::Tensor last = std::get<0>(std::get<1>(lstm->forward(x)))[0];
    return fc->forward(last);
  }
};
TORCH_MODULE(Lstm);

}  // namespace

int main(int argc, char** argv) {
  const lcbench::Options opt = lcbench::parse_options(argc, argv, "torch_lstm");
  return lcbench::torchbench::run(opt, "lstm", {28, 28}, [] { return Lstm(); });
}
