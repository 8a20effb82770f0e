// export_onnx (layercache/onnx.hpp): checks the model, params and state as infer does, builds
// the graph with the layer exporters, and writes the file atomically.
#include "../atomic_file.hpp"
#include "exporters.hpp"
#include "layercache/onnx.hpp"

namespace layercache {
namespace {

void check_options(const OnnxExportOptions& options, const std::string& path) {
  const std::pair<const char*, const std::string*> names[] = {{"input_name", &options.input_name},
                                                              {"output_name", &options.output_name},
                                                              {"batch_name", &options.batch_name},
                                                              {"graph_name", &options.graph_name}};
  for (const auto& [field, value] : names)
    if (value->empty()) throw ConfigError("ONNX export: OnnxExportOptions::" + std::string(field) + " is empty", path);
  if (options.input_name == options.output_name)
    throw ConfigError("ONNX export: the input and the output are both named '" + options.input_name + "'", path);
}

template <class T>
void export_model(const Layer& model, const Tree<T>& params, const Tree<T>& state,
                  const Shape& input_shape, const std::string& path,
                  const OnnxExportOptions& options) {
  check_options(options, path);
  // The checks every infer makes (shapes through the model, params and state of each layer),
  // on one sample, so that the exporters below read tensors that fit their layers.
  model.infer(params, arma::Mat<T>(input_shape.size(), 1, arma::fill::zeros), input_shape, state);
  onnx_export::GraphBuilder graph(
      std::is_same_v<T, float> ? onnx_export::Element::float32 : onnx_export::Element::float64,
      input_shape, options.input_name, options.output_name, options.batch_name);
  const onnx_export::Value output = onnx_export::export_layer(
      graph, model, convert<double>(params), convert<double>(state), graph.input(), "");
  const std::string bytes = graph.finish(output, options.graph_name);
  detail::AtomicFile file(path, "ONNX model");
  file.write(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace

bool onnx_export_available() noexcept { return true; }

void export_onnx(const Layer& model, const Tree<float>& params, const Tree<float>& state,
                 const Shape& input_shape, const std::string& path,
                 const OnnxExportOptions& options) {
  export_model(model, params, state, input_shape, path, options);
}

void export_onnx(const Layer& model, const Tree<double>& params, const Tree<double>& state,
                 const Shape& input_shape, const std::string& path,
                 const OnnxExportOptions& options) {
  export_model(model, params, state, input_shape, path, options);
}

}  // namespace layercache
