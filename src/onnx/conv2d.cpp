// ONNX export of Conv2D: a Conv node on the NCHW input, with its kernel shape, strides,
// dilations, group and pads (where "same" padding falls is the layer's own, written out as
// explicit pads [top, left, bottom, right]). ONNX's weight is (o, c/g, kh, kw); layercache's
// row oc holds the kernels as an arma::Cube(kh, kw, c/g), tap (i, j) of channel ci at column
// (ci·kw + j)·kh + i (include/layercache/layers/conv2d.hpp).
#include "exporters.hpp"
#include "layercache/layers/conv2d.hpp"

namespace layercache::onnx_export {

Value export_conv2d(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& conv = layer.as<Conv2D>();
  const Conv2DOptions& o = conv.options();
  const std::size_t kh = o.kernel.height, kw = o.kernel.width, c = o.in_channels / o.groups;
  const arma::mat& w = layer.param("weight", o.out_channels, c * kh * kw);
  std::vector<double> kernel;
  kernel.reserve(w.n_elem);
  for (std::size_t oc = 0; oc < o.out_channels; ++oc)
    for (std::size_t ci = 0; ci < c; ++ci)
      for (std::size_t i = 0; i < kh; ++i)
        for (std::size_t j = 0; j < kw; ++j) kernel.push_back(w(oc, (ci * kw + j) * kh + i));
  std::vector<std::string> inputs{
      x.name, graph.constant(layer.name("weight"),
                             {std::int64_t(o.out_channels), std::int64_t(c), std::int64_t(kh),
                              std::int64_t(kw)},
                             kernel)};
  if (o.bias)
    inputs.push_back(graph.constant(layer.name("bias"), {std::int64_t(o.out_channels)},
                                    row_major(layer.param("bias", o.out_channels, 1))));
  const auto [rows, cols] = conv.windows(x.shape);
  return graph.node("Conv", inputs, conv.output_shape(x.shape), layer.name(),
                    {{"kernel_shape", std::vector<std::int64_t>{std::int64_t(kh), std::int64_t(kw)}},
                     {"strides", window_strides(rows, cols)},
                     {"dilations", std::vector<std::int64_t>{std::int64_t(rows.dilation),
                                                             std::int64_t(cols.dilation)}},
                     {"group", std::int64_t(o.groups)},
                     {"pads", window_pads(rows, cols)}});
}

}  // namespace layercache::onnx_export
