// ONNX export of the pooling layers: MaxPool and AveragePool nodes on the NCHW input, with
// explicit pads (where "same" padding falls is the layer's own) and windows that would run
// past the padded border dropped (ceil_mode 0), as layercache's; GlobalAveragePool followed by
// a reshape of its (c, 1, 1) output to layercache's (c).
#include "exporters.hpp"
#include "layercache/layers/avg_pool2d.hpp"
#include "layercache/layers/max_pool2d.hpp"

namespace layercache::onnx_export {

std::vector<std::int64_t> window_strides(const WindowAxis& rows, const WindowAxis& cols) {
  return {std::int64_t(rows.stride), std::int64_t(cols.stride)};
}

std::vector<std::int64_t> window_pads(const WindowAxis& rows, const WindowAxis& cols) {
  return {std::int64_t(rows.pad_before), std::int64_t(cols.pad_before),
          std::int64_t(rows.pad_after), std::int64_t(cols.pad_after)};
}

namespace {

// The attributes every pooling node takes.
std::vector<Attribute> pool_attributes(const ImageWindows& w) {
  return {{"kernel_shape", std::vector<std::int64_t>{std::int64_t(w.height.kernel),
                                                     std::int64_t(w.width.kernel)}},
          {"strides", window_strides(w.height, w.width)},
          {"pads", window_pads(w.height, w.width)}};
}

}  // namespace

Value export_max_pool2d(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& pool = layer.as<MaxPool2D>();
  return graph.node("MaxPool", {x.name}, pool.output_shape(x.shape), layer.name(),
                    pool_attributes(pool.windows(x.shape)));
}

Value export_avg_pool2d(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& pool = layer.as<AvgPool2D>();
  std::vector<Attribute> attributes = pool_attributes(pool.windows(x.shape));
  attributes.push_back({"count_include_pad", std::int64_t(pool.options().count_padding)});
  return graph.node("AveragePool", {x.name}, pool.output_shape(x.shape), layer.name(),
                    attributes);
}

Value export_global_avg_pool2d(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const Value pooled = graph.node("GlobalAveragePool", {x.name}, Shape{x.shape[0], 1, 1},
                                  layer.name("pooled"));
  return reshape(graph, pooled, Shape{x.shape[0]}, layer.name());
}

}  // namespace layercache::onnx_export
