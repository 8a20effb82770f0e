// Table-driven checks run over every layer: gradients against finite differences (double),
// the cache contract, and float forward against double forward.
#define BOOST_TEST_MODULE layers
#include <boost/test/unit_test.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <algorithm>
#include <array>
#include <ostream>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "conv_cases.hpp"

using namespace layercache;
namespace data = boost::unit_test::data;

namespace {

/// One row of the table: a layer, the per-sample input shape it is checked on, and the
/// options of the checks.
struct LayerCase {
  std::string name;                   // shown in every failure message
  AnyLayer layer;
  Shape input;                        // per-sample input shape
  testing::GradCheckOptions options;  // batch, seed, input margin, tolerance
};

std::ostream& operator<<(std::ostream& os, const LayerCase& c) { return os << c.name; }

// Inputs at least this far from 0, for layers with a kink there: the four-point stencil
// reaches ±2h = ±2e-4, and must not straddle the kink.
testing::GradCheckOptions away_from_zero() {
  testing::GradCheckOptions o;
  o.input_margin = 1e-2;
  return o;
}

// For networks with max pooling: many input pixels are no window's maximum (or feed only
// switched-off ReLUs), so their exact gradient is 0 and the finite difference returns round-off
// of about 1e-12, which the default floor of 1e-6 would count as a relative error of 1e-6. A
// floor of 1e-5 keeps such entries from failing while every entry with a gradient above 1e-5 is
// still held to 1e-6.
testing::GradCheckOptions behind_max_pooling() {
  testing::GradCheckOptions o;
  o.floor = 1e-5;
  return o;
}

// A depthwise convolution's input gradient at an image corner is a single product of two
// small numbers; central differences reach about 1e-6 relative error there.
testing::GradCheckOptions single_products() {
  testing::GradCheckOptions o;
  o.tolerance = 1e-5;
  return o;
}

// Options with a batch of n samples (batch statistics of a few samples are still
// differentiable, and vary enough for the checks to see them).
testing::GradCheckOptions batch_of(std::size_t n) {
  testing::GradCheckOptions o;
  o.batch = n;
  return o;
}

// The options in training mode and in infer mode.
std::array<testing::GradCheckOptions, 2> in_both(testing::GradCheckOptions o) {
  std::array<testing::GradCheckOptions, 2> modes{o, o};
  modes[0].mode = Mode::train;
  modes[1].mode = Mode::infer;
  return modes;
}

// Three sequences of 5, 2 and 0 real steps, padded to the 5 steps of the input shape.
testing::GradCheckOptions padded() {
  testing::GradCheckOptions o;
  o.batch = 3;
  o.lengths = arma::uvec{5, 2, 0};
  return o;
}

// Inputs that are ids below n (an Embedding's), which have no gradient.
testing::GradCheckOptions ids_below(std::size_t n) {
  testing::GradCheckOptions o;
  o.integer_inputs = n;
  o.check_input = false;
  return o;
}

// Ids below n, in three sequences padded as by padded().
testing::GradCheckOptions padded_ids_below(std::size_t n) {
  testing::GradCheckOptions o = ids_below(n);
  o.batch = 3;
  o.lengths = arma::uvec{5, 2, 0};
  return o;
}

std::vector<LayerCase> layer_table() {
  const testing::GradCheckOptions plain;
  std::vector<LayerCase> table = {
      {"dense", Dense(4, 3), Shape{4}, plain},
      {"dense_without_bias", Dense(4, 3, {.bias = false}), Shape{4}, plain},
      {"relu", ReLU(), Shape{2, 3, 2}, away_from_zero()},
      {"leaky_relu", LeakyReLU(), Shape{5}, away_from_zero()},
      {"leaky_relu_slope_0.2", LeakyReLU({.slope = 0.2}), Shape{5}, away_from_zero()},
      {"elu", ELU(), Shape{5}, away_from_zero()},
      {"elu_alpha_0.5", ELU({.alpha = 0.5}), Shape{5}, away_from_zero()},
      {"gelu", GELU(), Shape{5}, plain},
      {"gelu_tanh_approximation", GELU({.tanh_approximation = true}), Shape{5}, plain},
      {"sigmoid", Sigmoid(), Shape{5}, plain},
      {"tanh", Tanh(), Shape{2, 3, 2}, plain},
      {"silu", SiLU(), Shape{2, 3, 2}, plain},
      {"softplus", Softplus(), Shape{5}, plain},
      {"selu", SELU(), Shape{5}, away_from_zero()},
      {"hardswish", Hardswish(), Shape{5}, plain},
      {"mish", Mish(), Shape{2, 3, 2}, plain},
      {"softmax", Softmax(), Shape{6}, plain},
      {"softmax_over_an_image", Softmax(), Shape{2, 2, 2}, plain},
      {"log_softmax", LogSoftmax(), Shape{6}, plain},
      {"identity", Identity(), Shape{4}, plain},
      {"network_dense_tanh_dense_softmax", Network{Dense(4, 6), Tanh(), Dense(6, 3), Softmax()},
       Shape{4}, plain},
      {"network_dense_gelu_dense_log_softmax",
       Network{Dense(4, 6), GELU(), Dense(6, 3), LogSoftmax()}, Shape{4}, plain},

      {"max_pool2d_kernel2_stride2", MaxPool2D({.kernel = 2, .stride = 2}), Shape{2, 6, 5}, plain},
      {"max_pool2d_kernel2_stride1_overlapping", MaxPool2D({.kernel = 2, .stride = 1}),
       Shape{2, 6, 5}, plain},
      {"max_pool2d_kernel3_stride2_overlapping", MaxPool2D({.kernel = 3, .stride = 2}),
       Shape{2, 6, 5}, plain},
      {"max_pool2d_default_stride_is_kernel", MaxPool2D({.kernel = 3}), Shape{2, 7, 6}, plain},
      {"conv2d_rectangular_strided_padded_per_axis",
       Conv2D({.in_channels = 2, .out_channels = 3, .kernel = {3, 2}, .stride = {2, 1},
               .padding = {1, 2}}),
       Shape{2, 6, 5}, plain},
      {"conv2d_same_padding_dilated",
       Conv2D({.in_channels = 2, .out_channels = 2, .kernel = 3,
               .padding = Padding2D::same_size(), .dilation = 2}),
       Shape{2, 6, 5}, plain},
      {"conv2d_groups", Conv2D({.in_channels = 4, .out_channels = 6, .padding = 1, .groups = 2}),
       Shape{4, 5, 4}, plain},
      {"conv2d_depthwise", Conv2D({.in_channels = 3, .out_channels = 3, .groups = 3}),
       Shape{3, 5, 6}, single_products()},
      {"max_pool2d_padded", MaxPool2D({.kernel = 3, .stride = 2, .padding = 1}), Shape{2, 6, 5},
       plain},
      {"max_pool2d_rectangular_padded_per_axis",
       MaxPool2D({.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 0}}), Shape{2, 6, 5}, plain},
      {"max_pool2d_same_padding", MaxPool2D({.kernel = 3, .stride = 2, .padding = Padding2D::same_size()}),
       Shape{2, 6, 5}, plain},
      {"avg_pool2d", AvgPool2D({.kernel = 2}), Shape{2, 6, 5}, plain},
      {"avg_pool2d_padded_rectangular",
       AvgPool2D({.kernel = {3, 2}, .stride = 1, .padding = {1, 0}, .count_padding = false}),
       Shape{2, 5, 4}, plain},
      {"global_avg_pool2d", GlobalAvgPool2D(), Shape{3, 4, 5}, plain},
      {"flatten", Flatten(), Shape{2, 3, 4}, plain},
      {"reshape", Reshape(Shape{4, 6}), Shape{2, 3, 4}, plain},
      {"reshape_flat_rows_to_an_image", Reshape(Shape{1, 4, 6}), Shape{24}, plain},
      {"cnn_conv_relu_pool_dense",
       Network{Conv2D({.in_channels = 1, .out_channels = 2, .kernel = 3}), ReLU(),
               MaxPool2D({.kernel = 2}), Flatten(), Dense(2 * 3 * 3, 3)},
       Shape{1, 8, 8}, behind_max_pooling()},
      {"cnn_starting_from_flat_rows_with_reshape",
       Network{Reshape(Shape{1, 6, 6}), Conv2D({.in_channels = 1, .out_channels = 2, .padding = 1}),
               MaxPool2D({.kernel = 2}), Conv2D({.in_channels = 2, .out_channels = 2, .stride = 2}),
               Flatten(), Dense(2, 2)},
       Shape{36}, behind_max_pooling()},

      // Combinators, each with a network inside it and inside a network.
      {"residual", Residual(Network{Dense(4, 4), Tanh()}), Shape{4}, plain},
      {"residual_with_projection", Residual(Network{Dense(4, 6), Tanh()}, Dense(4, 6)), Shape{4},
       plain},
      {"network_of_residual_blocks",
       Network{Dense(4, 5), Residual(Network{Dense(5, 5), Tanh(), Dense(5, 5)}),
               Residual(Network{Dense(5, 5), Sigmoid()}), Dense(5, 3)},
       Shape{4}, plain},
      {"parallel_concat", Parallel{Dense(4, 3), Network{Dense(4, 2), Tanh()}}, Shape{4}, plain},
      {"parallel_add", Parallel({Dense(4, 3), Network{Dense(4, 3), Sigmoid()}}, Merge::add),
       Shape{4}, plain},
      {"parallel_multiply_gating",
       Parallel({Dense(4, 3), Network{Dense(4, 3), Sigmoid()}}, Merge::multiply), Shape{4}, plain},
      {"parallel_concat_of_image_channels",
       Parallel{Conv2D({.in_channels = 2, .out_channels = 3, .padding = 1}),
                Conv2D({.in_channels = 2, .out_channels = 2, .kernel = 1})},
       Shape{2, 4, 5}, plain},
      {"network_with_parallel_and_residual_inside",
       Network{Dense(4, 6),
               Parallel{Residual(Network{Dense(6, 6), Tanh()}), Network{Dense(6, 2), Tanh()}},
               Dense(8, 3)},
       Shape{4}, plain},
      {"graph_with_a_value_read_twice",
       Graph({.inputs = {{"x", Shape{4}}},
              .nodes = {{.name = "a", .layer = Dense(4, 3), .inputs = {"x"}},
                        {.name = "b", .layer = Network{Dense(3, 3), Tanh()}, .inputs = {"a"}},
                        {.name = "gate", .layer = Sigmoid(), .inputs = {"a"}},
                        {.name = "mix", .inputs = {"b", "gate", "a"}, .merge = Merge::multiply},
                        {.name = "head", .layer = Dense(6, 2), .inputs = {"mix", "a"}}},
              .outputs = {"head"}}),
       Shape{4}, plain},
      {"graph_with_two_inputs_two_outputs_and_a_shared_layer",
       Graph({.inputs = {{"left", Shape{3}}, {"right", Shape{3}}},
              .nodes = {{.name = "embed_left", .layer = Network{Dense(3, 4), Tanh()},
                         .inputs = {"left"}},
                        {.name = "embed_right", .inputs = {"right"}, .shares = "embed_left"},
                        {.name = "difference", .inputs = {"embed_left", "embed_right"},
                         .merge = Merge::subtract},
                        {.name = "head", .layer = Dense(4, 2), .inputs = {"difference"}}},
              .outputs = {"head", "embed_right"}}),
       Shape{6}, plain},
      {"network_around_a_graph_of_images",
       Network{Conv2D({.in_channels = 1, .out_channels = 2, .padding = 1}),
               Graph({.inputs = {{"image", Shape{2, 4, 4}}},
                      .nodes = {{.name = "wide", .layer = Conv2D({.in_channels = 2,
                                                                    .out_channels = 2,
                                                                    .padding = 1}),
                                 .inputs = {"image"}},
                                {.name = "both", .inputs = {"wide", "image"}}},
                      .outputs = {"both"}}),
               Flatten(), Dense(64, 3)},
       Shape{1, 4, 4}, plain},
      // Stateful and mode-dependent layers, in training and in infer mode.
      {"batch_norm_features", BatchNorm(4), Shape{4}, in_both(batch_of(5))[0]},
      {"batch_norm_features_infer_mode", BatchNorm(4), Shape{4}, in_both(batch_of(5))[1]},
      {"batch_norm_image_channels", BatchNorm(2), Shape{2, 3, 2}, in_both(batch_of(3))[0]},
      {"batch_norm_image_channels_infer_mode", BatchNorm(2), Shape{2, 3, 2},
       in_both(batch_of(3))[1]},
      {"layer_norm_features", LayerNorm(), Shape{5}, plain},
      {"layer_norm_image", LayerNorm(), Shape{2, 3, 2}, plain},
      {"dropout", Dropout({.rate = 0.3}), Shape{2, 3, 2}, plain},
      {"dropout_infer_mode", Dropout({.rate = 0.3}), Shape{5}, in_both(plain)[1]},
      {"dropout2d", Dropout2D(), Shape{3, 2, 2}, plain},
      {"dropout2d_infer_mode", Dropout2D(), Shape{3, 2, 2}, in_both(plain)[1]},
      // State beside stateless blocks: the new state has the tree init_state makes.
      {"network_of_a_stateless_block_and_batch_norm",
       Network{Residual(Network{Dense(4, 4), Tanh()}), BatchNorm(4),
               Residual(Network{Dense(4, 4), BatchNorm(4)})},
       Shape{4}, batch_of(4)},
      // The convolution has no bias: BatchNorm's mean would cancel it (its gradient is 0). Tanh,
      // not ReLU: the normalized values are anywhere, also within the stencil's reach of a kink.
      {"cnn_conv_batch_norm_tanh_dropout2d_pool_dense",
       Network{Conv2D({.in_channels = 1, .out_channels = 2, .padding = 1, .bias = false}),
               BatchNorm(2), Tanh(),
               Dropout2D({.rate = 0.25}), AvgPool2D({.kernel = 2}), Flatten(), Dropout(),
               Dense(2 * 2 * 2, 3), LayerNorm()},
       Shape{1, 4, 4}, in_both(batch_of(4))[0]},
      {"cnn_conv_batch_norm_tanh_dropout2d_pool_dense_infer_mode",
       Network{Conv2D({.in_channels = 1, .out_channels = 2, .padding = 1, .bias = false}),
               BatchNorm(2), Tanh(),
               Dropout2D({.rate = 0.25}), AvgPool2D({.kernel = 2}), Flatten(), Dropout(),
               Dense(2 * 2 * 2, 3), LayerNorm()},
       Shape{1, 4, 4}, in_both(batch_of(4))[1]},

      // Sequences: last step or every step, states in and out, padded batches (lengths 5, 2
      // and 0 of 5 steps: padding is never read and gets no gradient), stacked layers.
      {"simple_rnn_last_step", SimpleRNN({.n_in = 3, .n_hidden = 4}), Shape{5, 3}, plain},
      {"simple_rnn_sequences_padded", SimpleRNN({.n_in = 3, .n_hidden = 4, .return_sequences = true}),
       Shape{5, 3}, padded()},
      {"simple_rnn_state_in_and_out_padded",
       SimpleRNN({.n_in = 3, .n_hidden = 4, .initial_state = true, .return_state = true}),
       Shape{4 + 5 * 3}, padded()},
      {"lstm_last_step", LSTM({.n_in = 3, .n_hidden = 4}), Shape{5, 3}, plain},
      {"lstm_last_step_padded", LSTM({.n_in = 3, .n_hidden = 4}), Shape{5, 3}, padded()},
      // One step from the zero state: no hidden projection runs, dU is 0.
      {"lstm_one_step", LSTM({.n_in = 3, .n_hidden = 4}), Shape{1, 3}, plain},
      {"lstm_sequences_padded", LSTM({.n_in = 3, .n_hidden = 4, .return_sequences = true}),
       Shape{5, 3}, padded()},
      {"lstm_state_in_and_out_padded",
       LSTM({.n_in = 3, .n_hidden = 4, .return_sequences = true, .initial_state = true,
             .return_state = true}),
       Shape{8 + 5 * 3}, padded()},
      {"gru_last_step", GRU({.n_in = 3, .n_hidden = 4}), Shape{5, 3}, plain},
      {"gru_one_step", GRU({.n_in = 3, .n_hidden = 4}), Shape{1, 3}, plain},
      {"gru_sequences_padded", GRU({.n_in = 3, .n_hidden = 4, .return_sequences = true}),
       Shape{5, 3}, padded()},
      {"gru_state_in_and_out_padded",
       GRU({.n_in = 3, .n_hidden = 4, .initial_state = true, .return_state = true}),
       Shape{4 + 5 * 3}, padded()},
      {"network_of_stacked_lstm_gru_padded",
       Network{LSTM({.n_in = 3, .n_hidden = 4, .return_sequences = true}),
               GRU({.n_in = 4, .n_hidden = 2}), Dense(2, 2)},
       Shape{5, 3}, padded()},
      {"embedding", Embedding(6, 3), Shape{4}, ids_below(6)},
      {"time_distributed_dense", TimeDistributed(Dense(3, 2)), Shape{4, 3}, plain},
      {"bidirectional_lstm_sequences_padded",
       Bidirectional(LSTM({.n_in = 3, .n_hidden = 2, .return_sequences = true})), Shape{5, 3},
       padded()},
      {"bidirectional_gru_last_step_padded", Bidirectional(GRU({.n_in = 3, .n_hidden = 2})),
       Shape{5, 3}, padded()},
      {"network_embedding_lstm_time_distributed_dense",
       Network{Embedding(5, 3), LSTM({.n_in = 3, .n_hidden = 4, .return_sequences = true}),
               TimeDistributed(Dense(4, 5))},
       Shape{5}, padded_ids_below(5)},
  };
  // Every Conv2D configuration, with the default batch and with one sample per batch (with one
  // sample the GEMM writes straight into the output column, without rearrangement).
  testing::GradCheckOptions one_sample;
  one_sample.batch = 1;
  for (const auto& c : layer_tests::conv_cases()) {
    table.push_back({std::string("conv2d_") + c.name, Conv2D(c.options), c.input, plain});
    table.push_back(
        {std::string("conv2d_") + c.name + "_one_sample", Conv2D(c.options), c.input, one_sample});
  }
  return table;
}

}  // namespace

BOOST_DATA_TEST_CASE(gradients_match_finite_differences, data::make(layer_table()), row) {
  const auto result = testing::check_gradients(*row.layer, row.input, row.options);
  BOOST_TEST(result.passed, row.name << ": " << result.report());
  BOOST_TEST_MESSAGE(row.name << ": " << result.report());
}

BOOST_DATA_TEST_CASE(cache_contract_holds, data::make(layer_table()), row) {
  const auto result = testing::check_cache_contract(*row.layer, row.input, row.options);
  BOOST_TEST(result.passed, row.name << ": " << result.report());
}

BOOST_DATA_TEST_CASE(float_forward_matches_double_forward, data::make(layer_table()), row) {
  const auto result = testing::check_float_matches_double(*row.layer, row.input, 1e-5, row.options);
  BOOST_TEST(result.passed, row.name << ": " << result.report());
}
