// export_onnx in a build without ONNX support (the `onnx` option off, or libonnx-dev and
// libprotobuf-dev not found): it says so, and how to get it.
#include "layercache/onnx.hpp"

namespace layercache {
namespace {

[[noreturn]] void unavailable(const std::string& path) {
  throw ConfigError(
      "cannot export ONNX: this layercache was built without ONNX support (install Debian's "
      "libonnx-dev and libprotobuf-dev and build with -Donnx=enabled, or "
      "-Dlayercache:onnx=enabled as a subproject)",
      path);
}

}  // namespace

bool onnx_export_available() noexcept { return false; }

void export_onnx(const Layer&, const Tree<float>&, const Tree<float>&, const Shape&,
                 const std::string& path, const OnnxExportOptions&) {
  unavailable(path);
}

void export_onnx(const Layer&, const Tree<double>&, const Tree<double>&, const Shape&,
                 const std::string& path, const OnnxExportOptions&) {
  unavailable(path);
}

}  // namespace layercache
