// Exporting a network and its weights as an ONNX model, for ONNX Runtime and every other tool
// that reads ONNX (docs/onnx.md).
//
//   export_onnx(net, params, state, Shape{1, 28, 28}, "model.onnx");
//
// The model computes the network's inference (infer) for a batch of any size. Its input is
// the usual row-major layout: (batch, c, h, w) — NCHW — for an image input shape (c, h, w),
// (batch, n) for a vector (n); its output likewise. The exporter converts from layercache's
// layout (one sample per column, image channels column-major; see layercache/layout.hpp)
// inside the model, so a caller feeds the model what PyTorch or NumPy would. Export needs the
// optional dependency on Debian's libonnx-dev and libprotobuf-dev (Meson option `onnx`);
// this header does not include them.
#pragma once

#include <cstdint>
#include <string>

#include "layercache/layer.hpp"

namespace layercache {

/// The ONNX operator set (of the default domain) exported models use.
inline constexpr std::int64_t onnx_opset = 17;

/// Options of export_onnx.
struct OnnxExportOptions {
  /// Name of the model's input tensor.
  std::string input_name = "input";
  /// Name of the model's output tensor.
  std::string output_name = "output";
  /// Name of the batch dimension (a symbolic dimension: any batch size is accepted).
  std::string batch_name = "batch";
  /// Name of the graph.
  std::string graph_name = "layercache";
};

/// True when this build of layercache can export ONNX (it was built with the `onnx` option
/// and found libonnx-dev and libprotobuf-dev); otherwise export_onnx throws ConfigError.
bool onnx_export_available() noexcept;

/// Writes `model` (a network, or any single layer) with `params` and `state` as an ONNX model
/// at `path`, for samples of shape `input_shape`, in inference mode; tensors are float32.
/// Throws, before anything touches the disk:
///   - ShapeError or ConfigError (naming the path) when params or state do not fit the model
///     for that input shape, as infer would;
///   - ConfigError naming a layer's path when it is of a kind the exporter does not know (a
///     custom layer), and when the options name nothing or name the input like the output;
///   - ConfigError when this build cannot export ONNX (onnx_export_available()).
/// The file is written atomically (a temporary file renamed over `path`); a failure throws
/// IoError naming the file and leaves any previous file as it was.
void export_onnx(const Layer& model, const Tree<float>& params, const Tree<float>& state,
                 const Shape& input_shape, const std::string& path,
                 const OnnxExportOptions& options = {});

/// export_onnx for double-precision params and state: the model's tensors are float64.
void export_onnx(const Layer& model, const Tree<double>& params, const Tree<double>& state,
                 const Shape& input_shape, const std::string& path,
                 const OnnxExportOptions& options = {});

}  // namespace layercache
