// Reading a value with another per-sample shape, as layercache's Reshape does (graph.hpp).
//
// layercache stores an image (c, h, w) as c column-major (h × w) channels, which read
// row-major is the array (c, w, h); ONNX holds it as (c, h, w). Every other shape is stored
// row-major in both. So an image is first transposed back to its memory order, and an image
// result is read in memory order and then transposed into NCHW.
#include "graph.hpp"

namespace layercache::onnx_export {
namespace {

const std::vector<std::int64_t> swap_height_width{0, 1, 3, 2};

// The row-major dimensions, batch first (0: the batch size is kept), under which the ONNX
// tensor's memory holds a value of `shape` in layercache's order.
std::vector<std::int64_t> memory_dims(const Shape& shape) {
  std::vector<std::int64_t> dims = onnx_dims(shape);
  if (shape.rank() == 3) std::swap(dims[1], dims[2]);
  dims.insert(dims.begin(), 0);
  return dims;
}

}  // namespace

Value reshape(GraphBuilder& graph, const Value& x, const Shape& shape, const std::string& name) {
  if (x.shape == shape) return x;
  std::string memory = x.name;
  if (x.shape.rank() == 3)
    memory = graph.node("Transpose", {memory}, x.shape, name + "/to_memory_order",
                        {{"perm", swap_height_width}}).name;
  const std::vector<std::int64_t> dims = memory_dims(shape);
  Value y = graph.node("Reshape", {memory, graph.int64s(name + "/shape", dims)}, shape,
                       shape.rank() == 3 ? name + "/from_memory_order" : name);
  if (shape.rank() == 3)
    y = graph.node("Transpose", {y.name}, shape, name, {{"perm", swap_height_width}});
  return y;
}

}  // namespace layercache::onnx_export
