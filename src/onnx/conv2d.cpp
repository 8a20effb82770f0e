// ONNX export of Conv2D: a Conv node on the NCHW input. ONNX's weight is (o, c, kh, kw);
// layercache's row oc holds the kernels as an arma::Cube(k, k, c), kernel position (kh, kw)
// of channel ci at column (ci·k + kw)·k + kh (include/layercache/layers/conv2d.hpp).
#include "exporters.hpp"
#include "layercache/layers/conv2d.hpp"

namespace layercache::onnx_export {

Value export_conv2d(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& conv = layer.as<Conv2D>();
  const Conv2DOptions& o = conv.options();
  const std::size_t k = o.kernel;
  const arma::mat& w = layer.param("weight", o.out_channels, o.in_channels * k * k);
  std::vector<double> kernel;
  kernel.reserve(w.n_elem);
  for (std::size_t oc = 0; oc < o.out_channels; ++oc)
    for (std::size_t ci = 0; ci < o.in_channels; ++ci)
      for (std::size_t kh = 0; kh < k; ++kh)
        for (std::size_t kw = 0; kw < k; ++kw) kernel.push_back(w(oc, (ci * k + kw) * k + kh));
  const auto ki = std::int64_t(k), s = std::int64_t(o.stride), p = std::int64_t(o.padding);
  std::vector<std::string> inputs{
      x.name, graph.constant(layer.name("weight"),
                             {std::int64_t(o.out_channels), std::int64_t(o.in_channels), ki, ki},
                             kernel)};
  if (o.bias)
    inputs.push_back(graph.constant(layer.name("bias"), {std::int64_t(o.out_channels)},
                                    row_major(layer.param("bias", o.out_channels, 1))));
  return graph.node("Conv", inputs, conv.output_shape(x.shape), layer.name(),
                    {{"kernel_shape", std::vector<std::int64_t>{ki, ki}},
                     {"strides", std::vector<std::int64_t>{s, s}},
                     {"pads", std::vector<std::int64_t>{p, p, p, p}}});
}

}  // namespace layercache::onnx_export
