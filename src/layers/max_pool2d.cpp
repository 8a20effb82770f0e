// MaxPool2D: forward records where each maximum is; backward routes dy there.
//
// A sample is one column: pixel (row, col) of channel ci is at ci·H·W + col·H + row (each
// channel column-major, see docs/convolution.md); output (ci, i, j) is at
// ci·h_out·w_out + j·h_out + i.
#include "layercache/layers/max_pool2d.hpp"

#include <algorithm>
#include <limits>


namespace layercache {
namespace {

struct Geometry {
  std::size_t channels = 0, height = 0, width = 0;  // input (c, h, w)
  std::size_t out_height = 0, out_width = 0;
  std::size_t kernel = 0, stride = 0;

  Geometry(std::size_t k, std::size_t s, const Shape& input)
      : channels(input[0]), height(input[1]), width(input[2]), kernel(k), stride(s) {
    out_height = (height - kernel) / stride + 1;
    out_width = (width - kernel) / stride + 1;
  }
  std::size_t in_size() const { return channels * height * width; }
  std::size_t out_size() const { return channels * out_height * out_width; }
};

// Whether v replaces the running maximum m: strictly greater (so the first maximum in scan
// order wins), or NaN (so a NaN in the window reaches the output). Written without
// short-circuit branches so that the loops below vectorize.
template <class T>
bool replaces(T v, T m) {
  return (v > m) | (v != v);
}

// y = maxpool(x) for 2×2 windows with stride 2, the common case, written so that the loop
// over output rows vectorizes. When Track, also the input row of every maximum.
template <bool Track, class T>
void pool_2x2(const Geometry& g, const arma::Mat<T>& x, arma::Mat<T>& y,
              arma::Mat<std::uint32_t>* argmax) {
  const std::size_t H = g.height;
  for (std::size_t n = 0; n < x.n_cols; ++n) {
    const T* sample = x.colptr(n);
    for (std::size_t ci = 0; ci < g.channels; ++ci)
      for (std::size_t j = 0; j < g.out_width; ++j) {
        const std::size_t first = ci * H * g.width + 2 * j * H;  // row of window (0, j)'s top left
        const T* left = sample + first;                          // input column 2j
        const T* right = left + H;                               // input column 2j + 1
        const std::size_t o = (ci * g.out_width + j) * g.out_height;
        T* out = y.colptr(n) + o;
        std::uint32_t* where = Track ? argmax->colptr(n) + o : nullptr;
        for (std::size_t i = 0; i < g.out_height; ++i) {
          // scan order = memory order: down the left column, then down the right column
          const auto r = static_cast<std::uint32_t>(first + 2 * i);
          T m = left[2 * i];
          std::uint32_t at = r;
          if (replaces(left[2 * i + 1], m)) {
            m = left[2 * i + 1];
            at = r + 1;
          }
          if (replaces(right[2 * i], m)) {
            m = right[2 * i];
            at = r + std::uint32_t(H);
          }
          if (replaces(right[2 * i + 1], m)) {
            m = right[2 * i + 1];
            at = r + std::uint32_t(H) + 1;
          }
          out[i] = m;
          if (Track) where[i] = at;
        }
      }
  }
}

// y = maxpool(x) for any window and stride. When Track, also the input row of every maximum.
template <bool Track, class T>
void pool_any(const Geometry& g, const arma::Mat<T>& x, arma::Mat<T>& y,
              arma::Mat<std::uint32_t>* argmax) {
  const std::size_t H = g.height, k = g.kernel, s = g.stride;
  for (std::size_t n = 0; n < x.n_cols; ++n) {
    const T* sample = x.colptr(n);
    T* out = y.colptr(n);
    std::uint32_t* where = Track ? argmax->colptr(n) : nullptr;
    for (std::size_t ci = 0; ci < g.channels; ++ci)
      for (std::size_t j = 0; j < g.out_width; ++j)
        for (std::size_t i = 0; i < g.out_height; ++i) {
          const std::size_t first = ci * H * g.width + j * s * H + i * s;  // window's top left
          std::size_t best_at = first;
          T best = sample[first];
          for (std::size_t kw = 0; kw < k; ++kw)
            for (std::size_t kh = 0; kh < k; ++kh) {
              const std::size_t at = first + kw * H + kh;
              if (replaces(sample[at], best)) {
            best = sample[at];
            best_at = at;
          }
            }
          const std::size_t o = (ci * g.out_width + j) * g.out_height + i;
          out[o] = best;
          if (Track) where[o] = static_cast<std::uint32_t>(best_at);
        }
  }
}

template <bool Track, class T>
void pool(const Geometry& g, const arma::Mat<T>& x, arma::Mat<T>& y,
          arma::Mat<std::uint32_t>* argmax) {
  if (g.kernel == 2 && g.stride == 2)
    pool_2x2<Track>(g, x, y, argmax);
  else
    pool_any<Track>(g, x, y, argmax);
}

}  // namespace

MaxPool2D::MaxPool2D(MaxPool2DOptions options)
    : kernel_(options.kernel), stride_(options.stride ? options.stride : options.kernel) {
  if (kernel_ == 0) throw ConfigError("MaxPool2D needs a positive kernel, got 0");
}

Shape MaxPool2D::output_shape(const Shape& input) const {
  if (input.rank() != 3)
    throw ShapeError("expected input (channels, height, width), got " + input.str() +
                     "; a pooling layer needs the image shape, e.g. Shape{1, 28, 28}");
  if (input[1] < kernel_ || input[2] < kernel_)
    throw ShapeError("expected input (channels, height, width) of at least " +
                     std::to_string(kernel_) + " × " + std::to_string(kernel_) + ", got " +
                     input.str());
  if (input.size() > std::numeric_limits<std::uint32_t>::max())
    throw ShapeError("expected input of at most 2^32 − 1 values per sample, got " + input.str());
  const Geometry g(kernel_, stride_, input);
  return Shape{g.channels, g.out_height, g.out_width};
}

template <class T>
void MaxPool2D::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                          MaxPool2DCache<T>& cache, const LayerCall<T>& call) const {
  const Geometry g(kernel_, stride_, call.input());
  cache.argmax.set_size(g.out_size(), x->n_cols);
  pool<true>(g, *x, y, &cache.argmax);
}

template <class T>
void MaxPool2D::backward_t(const Tensors<T>&, const MaxPool2DCache<T>& cache,
                           const arma::Mat<T>& dy, Gradients<T>& grads) const {
  const Geometry g(kernel_, stride_, cache.input_shape());
  if (cache.argmax.n_rows != g.out_size() || cache.argmax.n_cols != dy.n_cols)
    throw CacheError("expected the cache of a max_pool2d layer with " +
                     std::to_string(g.out_size()) + " outputs per sample, got " +
                     std::to_string(cache.argmax.n_rows));
  // Windows may overlap (stride < kernel), so gradients are added, not assigned. Each sample's
  // column is zeroed just before its gradients land, while it is in cache.
  arma::Mat<T>& dx = *grads.dx();  // backward runs only when dx is wanted (no params)
  for (std::size_t n = 0; n < dy.n_cols; ++n) {
    const std::uint32_t* where = cache.argmax.colptr(n);
    const T* d = dy.colptr(n);
    T* column = dx.colptr(n);
    std::fill(column, column + g.in_size(), T(0));
    for (std::size_t o = 0; o < dy.n_rows; ++o) column[where[o]] += d[o];
  }
}

template <class T>
void MaxPool2D::infer_t(const Tensors<T>&, const arma::Mat<T>& x, arma::Mat<T>& y,
                        const LayerCall<T>& call) const {
  pool<false>(Geometry(kernel_, stride_, call.input()), x, y, nullptr);
}

template class LayerImpl<MaxPool2D, MaxPool2DCache>;

}  // namespace layercache
