// Specification of the ONNX export (layercache/onnx.hpp): what the file holds, read back with
// ONNX's own protobuf classes. scripts/check_onnx runs the exported models in ONNX Runtime.
#define BOOST_TEST_MODULE onnx
#include <boost/test/unit_test.hpp>

#include <onnx/onnx_pb.h>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"
#include "support/temp_dir.hpp"

using namespace layercache;

namespace {

struct TempDir : testing_files::TempDir {
  TempDir() : testing_files::TempDir("layercache-onnx") {}
};

onnx::ModelProto read_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto model;
  BOOST_REQUIRE(model.ParseFromIstream(&in));
  return model;
}

std::vector<std::string> op_types(const onnx::ModelProto& model) {
  std::vector<std::string> ops;
  for (const auto& node : model.graph().node()) ops.push_back(node.op_type());
  return ops;
}

const onnx::TensorProto& initializer(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& tensor : model.graph().initializer())
    if (tensor.name() == name) return tensor;
  BOOST_FAIL("no initializer " + name);
  throw;
}

template <class T>
std::vector<T> values(const onnx::TensorProto& tensor) {
  std::vector<T> v(tensor.raw_data().size() / sizeof(T));
  std::memcpy(v.data(), tensor.raw_data().data(), tensor.raw_data().size());
  return v;
}

// "batch, 1, 28, 28": the dimensions of a graph input or output.
std::string dims(const onnx::ValueInfoProto& info) {
  std::string s;
  for (const auto& d : info.type().tensor_type().shape().dim())
    s += (s.empty() ? "" : ", ") + (d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return s;
}

// A layer the exporter cannot know: a user's own class (here a ReLU under another name).
struct Scale : ReLU {
  std::string kind() const override { return "scale"; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(this_build_can_export_onnx) { BOOST_TEST(onnx_export_available()); }

BOOST_AUTO_TEST_CASE(an_mlp_on_images_becomes_gemms_on_the_nchw_input_read_in_layercache_order) {
  TempDir tmp;
  const Network net{Dense(784, 16), ReLU(), Dense(16, 10)};
  Rng rng(1);
  const TreeF params = net.init(Shape{1, 28, 28}, he_normal(), rng);
  export_onnx(net, params, TreeF{}, Shape{1, 28, 28}, tmp.file("mlp.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("mlp.onnx"));
  BOOST_TEST(model.opset_import(0).version() == onnx_opset);
  BOOST_TEST(model.producer_name() == "layercache");
  BOOST_TEST(model.graph().input(0).name() == "input");
  BOOST_TEST(dims(model.graph().input(0)) == "batch, 1, 28, 28");
  BOOST_TEST(model.graph().output(0).name() == "output");
  BOOST_TEST(dims(model.graph().output(0)) == "batch, 10");
  BOOST_TEST(model.graph().input(0).type().tensor_type().elem_type() == onnx::TensorProto_DataType_FLOAT);
  // The image is read as Dense reads it: each channel transposed back to column-major first.
  const std::vector<std::string> want{"Transpose", "Reshape", "Gemm", "Relu", "Gemm"};
  BOOST_TEST(op_types(model) == want, boost::test_tools::per_element());
  BOOST_TEST(model.graph().node(4).output(0) == "output");
}

BOOST_AUTO_TEST_CASE(a_dense_weight_is_stored_row_major_with_transposed_gemm) {
  TempDir tmp;
  const Network net{Dense(3, 2)};
  TreeF params;
  params.add("dense1", TreeF{});
  params.at("dense1").add("weight", TreeF(arma::fmat{{1, 2, 3}, {4, 5, 6}}));
  params.at("dense1").add("bias", TreeF(arma::fmat(arma::fvec{7, 8})));
  export_onnx(net, params, TreeF{}, Shape{3}, tmp.file("dense.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("dense.onnx"));
  const auto& w = initializer(model, "dense1/weight");
  BOOST_TEST(w.dims_size() == 2);
  BOOST_TEST(w.dims(0) == 2);
  BOOST_TEST(w.dims(1) == 3);
  const std::vector<float> want_w{1, 2, 3, 4, 5, 6};
  BOOST_TEST(values<float>(w) == want_w, boost::test_tools::per_element());
  const std::vector<float> want_b{7, 8};
  BOOST_TEST(values<float>(initializer(model, "dense1/bias")) == want_b,
             boost::test_tools::per_element());
  BOOST_TEST(model.graph().node(0).attribute(0).name() == "transB");
  BOOST_TEST(model.graph().node(0).attribute(0).i() == 1);
}

// ONNX's weight is (o, c, kh, kw); layercache's column (ci·k + kw)·k + kh holds (kh, kw).
BOOST_AUTO_TEST_CASE(a_conv_kernel_is_stored_as_out_in_height_width) {
  TempDir tmp;
  const Network net{Conv2D({.in_channels = 2, .out_channels = 1, .kernel = 2, .bias = false})};
  TreeF params;
  params.add("conv2d1", TreeF{});
  params.at("conv2d1").add("weight", TreeF(arma::fmat{{0, 1, 2, 3, 4, 5, 6, 7}}));
  export_onnx(net, params, TreeF{}, Shape{2, 3, 3}, tmp.file("conv.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("conv.onnx"));
  const auto& w = initializer(model, "conv2d1/weight");
  BOOST_TEST(w.dims_size() == 4);
  const std::vector<float> want{0, 2, 1, 3, 4, 6, 5, 7};
  BOOST_TEST(values<float>(w) == want, boost::test_tools::per_element());
  BOOST_TEST(dims(model.graph().input(0)) == "batch, 2, 3, 3");
  BOOST_TEST(dims(model.graph().output(0)) == "batch, 1, 2, 2");
}

// The integers of attribute `name` of `node` (fails the test when it has none).
std::vector<std::int64_t> ints(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name)
      return a.ints_size() ? std::vector<std::int64_t>(a.ints().begin(), a.ints().end())
                           : std::vector<std::int64_t>{a.i()};
  BOOST_FAIL("no attribute " + name + " on " + node.op_type());
  throw;
}

BOOST_AUTO_TEST_CASE(a_grouped_conv_with_same_padding_writes_its_group_and_uneven_pads) {
  TempDir tmp;
  // 1 × 2 kernels, one per channel; "same" with stride 2 over a width of 5: ⌈5/2⌉ = 3 outputs,
  // (3 − 1)·2 + 2 − 5 = 1 zero of padding, on the right.
  const Network net{Conv2D({.in_channels = 2, .out_channels = 2, .kernel = {1, 2},
                            .stride = {1, 2}, .padding = Padding2D::same_size(), .groups = 2,
                            .bias = false})};
  TreeF params;
  params.add("conv2d1", TreeF{});
  params.at("conv2d1").add("weight", TreeF(arma::fmat{{0, 1}, {2, 3}}));
  export_onnx(net, params, TreeF{}, Shape{2, 3, 5}, tmp.file("conv.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("conv.onnx"));
  const auto& w = initializer(model, "conv2d1/weight");
  BOOST_TEST(w.dims_size() == 4);
  BOOST_TEST(w.dims(1) == 1);  // in_channels / groups
  const std::vector<float> want{0, 1, 2, 3};
  BOOST_TEST(values<float>(w) == want, boost::test_tools::per_element());
  const onnx::NodeProto& conv = model.graph().node(0);
  BOOST_TEST(ints(conv, "group") == std::vector<std::int64_t>{2}, boost::test_tools::per_element());
  BOOST_TEST(ints(conv, "pads") == (std::vector<std::int64_t>{0, 0, 0, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(ints(conv, "strides") == (std::vector<std::int64_t>{1, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(dims(model.graph().output(0)) == "batch, 2, 3, 3");
}

BOOST_AUTO_TEST_CASE(double_params_give_a_float64_model) {
  TempDir tmp;
  const Network net{Dense(4, 3), Tanh()};
  Rng rng(2);
  const TreeD params = net.init<double>(Shape{4}, xavier_uniform(), rng);
  export_onnx(net, params, TreeD{}, Shape{4}, tmp.file("d.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("d.onnx"));
  BOOST_TEST(model.graph().input(0).type().tensor_type().elem_type() == onnx::TensorProto_DataType_DOUBLE);
  const std::vector<double> w = values<double>(initializer(model, "dense1/weight"));
  BOOST_TEST(w[1] == params.at("dense1/weight").value()(0, 1));  // row-major, bit for bit
}

BOOST_AUTO_TEST_CASE(a_model_that_changes_nothing_still_has_a_node_making_its_output) {
  TempDir tmp;
  const Network net{Identity()};
  Rng rng(8);
  export_onnx(net, net.init(Shape{5}, he_normal(), rng), TreeF{}, Shape{5},
              tmp.file("identity.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("identity.onnx"));
  BOOST_TEST(model.graph().node_size() == 1);
  BOOST_TEST(model.graph().node(0).op_type() == "Identity");
  BOOST_TEST(model.graph().node(0).output(0) == "output");
}

BOOST_AUTO_TEST_CASE(nested_networks_name_their_tensors_by_path) {
  TempDir tmp;
  const Network net{named("encoder", Network{Dense(4, 4), ReLU()}), Dense(4, 2)};
  Rng rng(3);
  const TreeF params = net.init(Shape{4}, he_normal(), rng);
  OnnxExportOptions options;
  options.input_name = "features";
  options.output_name = "logits";
  export_onnx(net, params, TreeF{}, Shape{4}, tmp.file("nested.onnx"), options);
  const onnx::ModelProto model = read_model(tmp.file("nested.onnx"));
  initializer(model, "encoder/dense1/weight");
  initializer(model, "dense1/weight");
  BOOST_TEST(model.graph().input(0).name() == "features");
  BOOST_TEST(model.graph().output(0).name() == "logits");
  BOOST_TEST(model.graph().node(0).input(0) == "features");
}

BOOST_AUTO_TEST_CASE(a_custom_layer_is_a_config_error_naming_its_path_and_nothing_is_written) {
  TempDir tmp;
  const Network net{Dense(4, 4), named("block", Network{ReLU(), Scale()})};
  Rng rng(4);
  const TreeF params = net.init(Shape{4}, he_normal(), rng);
  try {
    export_onnx(net, params, TreeF{}, Shape{4}, tmp.file("custom.onnx"));
    BOOST_FAIL("no error");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "block/scale1");
    BOOST_TEST(std::string(e.what()).find("'scale'") != std::string::npos);
  }
  BOOST_TEST(tmp.listing().empty());  // not even a temporary file
}

BOOST_AUTO_TEST_CASE(params_that_do_not_fit_are_rejected_and_the_old_file_is_kept) {
  TempDir tmp;
  std::ofstream(tmp.file("model.onnx")) << "the previous model";
  const Network net{Dense(4, 3), ReLU(), Dense(3, 2)};
  Rng rng(5);
  const TreeF params = net.init(Shape{4}, he_normal(), rng);
  BOOST_CHECK_THROW(export_onnx(net, params, TreeF{}, Shape{5}, tmp.file("model.onnx")), ShapeError);
  const TreeF other = Network{Dense(4, 3), ReLU(), Dense(3, 3)}.init(Shape{4}, he_normal(), rng);
  try {
    export_onnx(net, other, TreeF{}, Shape{4}, tmp.file("model.onnx"));
    BOOST_FAIL("no error");
  } catch (const ShapeError& e) {
    BOOST_TEST(e.path() == "dense2/weight");
  }
  BOOST_TEST(testing_files::read_bytes(tmp.file("model.onnx")) == "the previous model");
  BOOST_TEST(tmp.listing() == std::vector<std::string>{"model.onnx"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(options_that_name_nothing_or_the_same_tensor_twice_are_config_errors) {
  TempDir tmp;
  const Network net{Dense(2, 2)};
  Rng rng(6);
  const TreeF params = net.init(Shape{2}, he_normal(), rng);
  OnnxExportOptions empty_name;
  empty_name.batch_name = "";
  BOOST_CHECK_THROW(export_onnx(net, params, TreeF{}, Shape{2}, tmp.file("a.onnx"), empty_name),
                    ConfigError);
  OnnxExportOptions same;
  same.output_name = same.input_name;
  BOOST_CHECK_THROW(export_onnx(net, params, TreeF{}, Shape{2}, tmp.file("a.onnx"), same),
                    ConfigError);
  BOOST_TEST(tmp.listing().empty());
}

BOOST_AUTO_TEST_CASE(a_file_that_cannot_be_written_is_an_io_error_naming_it) {
  TempDir tmp;
  const Network net{Dense(2, 2)};
  Rng rng(7);
  const TreeF params = net.init(Shape{2}, he_normal(), rng);
  const std::string path = tmp.file("missing/dir/model.onnx");
  try {
    export_onnx(net, params, TreeF{}, Shape{2}, path);
    BOOST_FAIL("no error");
  } catch (const IoError& e) {
    BOOST_TEST(e.path() == path);
  }
}

// ----- combinators ------------------------------------------------------------------------
// What the combinators become; scripts/check_onnx runs models with each of them in ONNX
// Runtime against layercache's outputs.

namespace {

// The names of the initializers, in order.
std::vector<std::string> initializer_names(const onnx::ModelProto& model) {
  std::vector<std::string> names;
  for (const auto& tensor : model.graph().initializer()) names.push_back(tensor.name());
  return names;
}

// The node making the tensor `name`.
const onnx::NodeProto& producer(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& node : model.graph().node())
    if (node.output(0) == name) return node;
  BOOST_FAIL("no node makes " + name);
  throw;
}

template <class L>
onnx::ModelProto exported(const TempDir& tmp, const L& model, const Shape& shape) {
  Rng rng(11);
  export_onnx(model, model.init(shape, he_normal(), rng), TreeF{}, shape, tmp.file("m.onnx"));
  return read_model(tmp.file("m.onnx"));
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_residual_block_adds_its_input_to_its_inner_output) {
  TempDir tmp;
  const Network net{named("block", Residual(Network{Dense(3, 3), Tanh()}))};
  const onnx::ModelProto model = exported(tmp, net, Shape{3});
  BOOST_TEST(op_types(model) == (std::vector<std::string>{"Gemm", "Tanh", "Add"}),
             boost::test_tools::per_element());
  const auto& add = producer(model, "output");
  BOOST_TEST(add.input(0) == "input");
  BOOST_TEST(producer(model, add.input(1)).op_type() == "Tanh");
  initializer(model, "block/inner/dense1/weight");
}

BOOST_AUTO_TEST_CASE(a_projection_is_exported_on_the_skip_path) {
  TempDir tmp;
  const Residual block(Network{Dense(4, 2), ReLU()}, Dense(4, 2));
  const onnx::ModelProto model = exported(tmp, block, Shape{4});
  const auto& add = producer(model, "output");
  BOOST_TEST(producer(model, add.input(0)).op_type() == "Gemm");  // the projection
  BOOST_TEST(producer(model, add.input(1)).op_type() == "Relu");
  initializer(model, "projection/weight");
  BOOST_TEST(dims(model.graph().output(0)) == "batch, 2");
}

BOOST_AUTO_TEST_CASE(a_parallel_concat_of_images_joins_their_channels) {
  TempDir tmp;
  const Parallel branches{Conv2D({.in_channels = 1, .out_channels = 2, .kernel = 3, .padding = 1}),
                          Conv2D({.in_channels = 1, .out_channels = 3, .kernel = 1})};
  const onnx::ModelProto model = exported(tmp, branches, Shape{1, 4, 4});
  const auto& concat = producer(model, "output");
  BOOST_TEST(concat.op_type() == "Concat");
  BOOST_TEST(concat.attribute(0).name() == "axis");
  BOOST_TEST(concat.attribute(0).i() == 1);  // the channels of (batch, c, h, w)
  BOOST_TEST(concat.input_size() == 2);
  BOOST_TEST(dims(model.graph().output(0)) == "batch, 5, 4, 4");
}

BOOST_AUTO_TEST_CASE(each_merge_becomes_its_operator_chained_over_the_branches) {
  TempDir tmp;
  const std::pair<Merge, std::string> merges[] = {
      {Merge::add, "Add"}, {Merge::multiply, "Mul"}, {Merge::subtract, "Sub"}};
  for (const auto& [merge, op] : merges) {
    const Parallel branches({Dense(2, 2), Identity(), Tanh()}, merge);
    const onnx::ModelProto model = exported(tmp, branches, Shape{2});
    // (dense − x) − tanh(x): the first branch first, then the others in order.
    const auto& last = producer(model, "output");
    BOOST_TEST(last.op_type() == op);
    BOOST_TEST(producer(model, last.input(1)).op_type() == "Tanh");
    const auto& first = producer(model, last.input(0));
    BOOST_TEST(first.op_type() == op);
    BOOST_TEST(producer(model, first.input(0)).op_type() == "Gemm");
    BOOST_TEST(first.input(1) == "input");
  }
}

BOOST_AUTO_TEST_CASE(a_graph_slices_its_inputs_and_stores_a_shared_nodes_weights_once) {
  TempDir tmp;
  const Graph siamese({.inputs = {{"left", Shape{3}}, {"right", Shape{3}}},
                       .nodes = {{.name = "embed_left", .layer = Network{Dense(3, 2)}, .inputs = {"left"}},
                                 {.name = "embed_right", .inputs = {"right"}, .shares = "embed_left"},
                                 {.name = "difference", .inputs = {"embed_left", "embed_right"},
                                  .merge = Merge::subtract}},
                       .outputs = {"difference", "embed_left"}});
  const onnx::ModelProto model = exported(tmp, siamese, Shape{6});
  BOOST_TEST(initializer_names(model) ==
                 (std::vector<std::string>{"graph/inputs/axes", "graph/left/starts", "graph/left/ends",
                                           "graph/right/starts", "graph/right/ends",
                                           "embed_left/dense1/weight", "embed_left/dense1/bias"}),
             boost::test_tools::per_element());
  std::vector<std::string> gemm_weights;
  for (const auto& node : model.graph().node())
    if (node.op_type() == "Gemm") gemm_weights.push_back(node.input(1));
  BOOST_TEST(gemm_weights == (std::vector<std::string>{"embed_left/dense1/weight",
                                                       "embed_left/dense1/weight"}),
             boost::test_tools::per_element());
  const auto& output = producer(model, "output");  // both outputs, one after the other
  BOOST_TEST(output.op_type() == "Concat");
  BOOST_TEST(producer(model, output.input(0)).op_type() == "Sub");
  BOOST_TEST(dims(model.graph().output(0)) == "batch, 4");
}

BOOST_AUTO_TEST_CASE(a_custom_layer_inside_a_combinator_is_named_by_its_full_path) {
  TempDir tmp;
  const Network net{named("pair", Parallel{Dense(4, 4), Residual(Network{Scale()})})};
  Rng rng(12);
  const TreeF params = net.init(Shape{4}, he_normal(), rng);
  try {
    export_onnx(net, params, TreeF{}, Shape{4}, tmp.file("custom.onnx"));
    BOOST_FAIL("no error");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "pair/residual1/inner/scale1");
  }
  BOOST_TEST(tmp.listing().empty());
}

BOOST_AUTO_TEST_CASE(batch_norm_exports_its_running_statistics_and_dropout_exports_nothing) {
  TempDir tmp;
  const Network net{Conv2D({.in_channels = 1, .out_channels = 2, .kernel = 1, .bias = false}),
                    BatchNorm(2, {.eps = 0.25}), Dropout2D(), Flatten(), Dropout()};
  const Shape image{1, 2, 2};
  Rng rng(3);
  const TreeF params = net.init(image, he_normal(), rng);
  TreeF state = net.init_state(image);
  state.at("batch_norm1/running_mean").value() = arma::fmat(arma::fvec{0.5f, -1.5f});
  state.at("batch_norm1/running_variance").value() = arma::fmat(arma::fvec{2.0f, 3.0f});
  export_onnx(net, params, state, image, tmp.file("bn.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("bn.onnx"));
  const std::vector<std::string> ops = op_types(model);
  BOOST_TEST(std::count(ops.begin(), ops.end(), "BatchNormalization") == 1);
  BOOST_TEST(std::count(ops.begin(), ops.end(), "Dropout") == 0);
  BOOST_TEST(values<float>(initializer(model, "batch_norm1/running_mean")) ==
                 (std::vector<float>{0.5f, -1.5f}),
             boost::test_tools::per_element());
  BOOST_TEST(values<float>(initializer(model, "batch_norm1/running_variance")) ==
                 (std::vector<float>{2.0f, 3.0f}),
             boost::test_tools::per_element());
  for (const auto& node : model.graph().node())
    if (node.op_type() == "BatchNormalization") {
      BOOST_TEST(node.attribute(0).name() == "epsilon");
      BOOST_TEST(node.attribute(0).f() == 0.25f);
    }
}

BOOST_AUTO_TEST_CASE(layer_norm_of_an_image_stores_its_scale_in_onnx_order) {
  TempDir tmp;
  const Network net{LayerNorm()};
  const Shape image{1, 2, 3};  // one channel of 2 rows and 3 columns
  TreeF params;
  params.add("layer_norm1", TreeF{});
  // In layercache's order the channel is column-major: (row 0, col 0), (1, 0), (0, 1), ...
  params.at("layer_norm1").add("scale", TreeF(arma::fmat(arma::fvec{0, 3, 1, 4, 2, 5})));
  params.at("layer_norm1").add("shift", TreeF(arma::fmat(6, 1, arma::fill::zeros)));
  export_onnx(net, params, TreeF{}, image, tmp.file("ln.onnx"));
  const onnx::ModelProto model = read_model(tmp.file("ln.onnx"));
  BOOST_TEST(op_types(model) == (std::vector<std::string>{"LayerNormalization"}),
             boost::test_tools::per_element());
  const auto& scale = initializer(model, "layer_norm1/scale");
  BOOST_TEST(scale.dims_size() == 3);
  BOOST_TEST(values<float>(scale) == (std::vector<float>{0, 1, 2, 3, 4, 5}),
             boost::test_tools::per_element());
}
