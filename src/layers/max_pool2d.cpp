// MaxPool2D: forward records where each maximum is; backward routes dy there.
//
// A sample is one column: pixel (row, col) of channel ci is at ci·H·W + col·H + row (each
// channel column-major, see docs/convolution.md); output (ci, i, j) is at
// ci·h_out·w_out + j·h_out + i. Padding is never read: a window's maximum is over its taps
// inside the image.
#include "layercache/layers/max_pool2d.hpp"

#include <algorithm>
#include <limits>

#include "pooling.hpp"


namespace layercache {
namespace {

using detail::PoolGeometry;

// Whether v replaces the running maximum m: strictly greater (so the first maximum in scan
// order wins), or NaN (so a NaN in the window reaches the output). Written without
// short-circuit branches so that the loops below vectorize.
template <class T>
bool replaces(T v, T m) {
  return (v > m) | (v != v);
}

// The windows [begin, end) of the column pair (left, right) of pool_2x2, written so that the
// loop vectorizes; `first` is the input row of window 0's top left, H the column height.
// Kept out of line: inlined with a constant count of 4, GCC unrolls it into branchy scalar code.
template <bool Track, class T>
[[gnu::noinline]] void pool_2x2_rows(const T* left, const T* right, std::uint32_t first,
                                     std::uint32_t H, std::size_t begin, std::size_t end, T* out,
                                     std::uint32_t* where) {
  for (std::size_t i = begin; i < end; ++i) {
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
      at = r + H;
    }
    if (replaces(right[2 * i + 1], m)) {
      m = right[2 * i + 1];
      at = r + H + 1;
    }
    out[i] = m;
    if (Track) where[i] = at;
  }
}

// y = maxpool(x) for 2×2 windows with stride 2, the common case. Each column of h_out output
// rows is pooled in vector code: the rows up to a multiple of 4, then, when h_out is not one,
// the last four rows, which overlap rows already written and write them again with the same
// values (the vector loop's scalar remainder, branchy and slow, is never reached). When Track,
// also the input row of every maximum.
template <bool Track, class T>
void pool_2x2(const PoolGeometry& g, const arma::Mat<T>& x, arma::Mat<T>& y,
              arma::Mat<std::uint32_t>* argmax) {
  const std::size_t H = g.height, ho = g.rows.output, whole = ho / 4 * 4;
  for (std::size_t n = 0; n < x.n_cols; ++n) {
    const T* sample = x.colptr(n);
    for (std::size_t ci = 0; ci < g.channels; ++ci)
      for (std::size_t j = 0; j < g.cols.output; ++j) {
        const std::size_t first = ci * H * g.width + 2 * j * H;  // row of window (0, j)'s top left
        const T* left = sample + first;                          // input column 2j
        const T* right = left + H;                               // input column 2j + 1
        const std::size_t o = (ci * g.cols.output + j) * ho;
        T* out = y.colptr(n) + o;
        std::uint32_t* where = Track ? argmax->colptr(n) + o : nullptr;
        const auto r = static_cast<std::uint32_t>(first), h = static_cast<std::uint32_t>(H);
        pool_2x2_rows<Track>(left, right, r, h, 0, ho < 4 ? ho : whole, out, where);
        if (ho >= 4 && whole < ho) pool_2x2_rows<Track>(left, right, r, h, ho - 4, ho, out, where);
      }
  }
}

// y = maxpool(x) for any window, stride and padding: only the taps inside the image are
// read. When Track, also the input row of every maximum.
template <bool Track, class T>
void pool_any(const PoolGeometry& g, const arma::Mat<T>& x, arma::Mat<T>& y,
              arma::Mat<std::uint32_t>* argmax) {
  const std::size_t H = g.height;
  for (std::size_t n = 0; n < x.n_cols; ++n) {
    const T* sample = x.colptr(n);
    T* out = y.colptr(n);
    std::uint32_t* where = Track ? argmax->colptr(n) : nullptr;
    // every window holds a tap inside the image (padding < kernel)
    detail::for_each_window(g, [&](const detail::Window& w) {
      std::size_t best_at = w.first;
      T best = sample[w.first];
      for (std::size_t kw = 0; kw < w.across; ++kw)
        for (std::size_t kh = 0; kh < w.down; ++kh) {
          const std::size_t at = w.first + kw * H + kh;
          if (replaces(sample[at], best)) {
            best = sample[at];
            best_at = at;
          }
        }
      out[w.output] = best;
      if (Track) where[w.output] = static_cast<std::uint32_t>(best_at);
    });
  }
}

// Whether the windows are 2×2 with stride 2 and no padding (pool_2x2 and unpool_2x2).
bool is_2x2(const PoolGeometry& g) {
  return g.rows.kernel == 2 && g.cols.kernel == 2 && g.rows.stride == 2 && g.cols.stride == 2 &&
         g.rows.pad_before == 0 && g.cols.pad_before == 0;
}

// dx = the gradient of pool_2x2 for one sample, one pair of input columns (2j, 2j + 1) at a
// time: the pair is zeroed and each of its windows' dy is stored at the recorded maximum
// while the pair is in the L1 cache; the input columns that no window covers (an odd width)
// are zeroed at the end, and the last row of each pair is covered by the pair's zeroing.
// Every value of the sample's column is written, so it needs no zeroing first.
template <class T>
void unpool_2x2(const PoolGeometry& g, const std::uint32_t* where, const T* dy, T* dx) {
  const std::size_t H = g.height, ho = g.rows.output, wo = g.cols.output;
  for (std::size_t ci = 0; ci < g.channels; ++ci) {
    const std::size_t first_in = ci * H * g.width;
    for (std::size_t j = 0; j < wo; ++j) {
      T* pair = dx + first_in + 2 * j * H;
      std::fill(pair, pair + 2 * H, T(0));
      const std::size_t o = (ci * wo + j) * ho;
      for (std::size_t i = 0; i < ho; ++i) dx[where[o + i]] = dy[o + i];
    }
    std::fill(dx + first_in + 2 * wo * H, dx + first_in + H * g.width, T(0));
  }
}

template <bool Track, class T>
void pool(const PoolGeometry& g, const arma::Mat<T>& x, arma::Mat<T>& y,
          arma::Mat<std::uint32_t>* argmax) {
  if (is_2x2(g))
    pool_2x2<Track>(g, x, y, argmax);
  else
    pool_any<Track>(g, x, y, argmax);
}

}  // namespace

// A zero stride along an axis means the kernel's size there.
MaxPool2D::MaxPool2D(MaxPool2DOptions options)
    : windows_{.kernel = options.kernel,
               .stride = {options.stride.height ? options.stride.height : options.kernel.height,
                          options.stride.width ? options.stride.width : options.kernel.width},
               .padding = options.padding} {
  detail::check_pool_options("MaxPool2D", windows_);
}

Shape MaxPool2D::output_shape(const Shape& input) const {
  return detail::pool_output_shape(input, windows_, std::numeric_limits<std::uint32_t>::max());
}

ImageWindows MaxPool2D::windows(const Shape& input) const {
  output_shape(input);  // the checks
  return image_windows(input, windows_);
}

template <class T>
void MaxPool2D::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                          MaxPool2DCache<T>& cache, const LayerCall<T>& call) const {
  const PoolGeometry g(windows_, call.input());
  cache.argmax.set_size(g.out_size(), x->n_cols);
  pool<true>(g, *x, y, &cache.argmax);
}

template <class T>
void MaxPool2D::backward_t(const Tensors<T>&, const MaxPool2DCache<T>& cache,
                           const arma::Mat<T>& dy, Gradients<T>& grads) const {
  const PoolGeometry g(windows_, cache.input_shape());
  if (cache.argmax.n_rows != g.out_size() || cache.argmax.n_cols != dy.n_cols)
    throw CacheError("expected the cache of a max_pool2d layer with " +
                     std::to_string(g.out_size()) + " outputs per sample, got " +
                     std::to_string(cache.argmax.n_rows));
  arma::Mat<T>& dx = *grads.dx();  // backward runs only when dx is wanted (no params)
  if (is_2x2(g)) {  // windows that tile the image: every input value is written once
    for (std::size_t n = 0; n < dy.n_cols; ++n)
      unpool_2x2(g, cache.argmax.colptr(n), dy.colptr(n), dx.colptr(n));
    return;
  }
  // Windows may overlap (stride < kernel), so gradients are added, not assigned. Each sample's
  // column is zeroed just before its gradients land, while it is in cache.
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
  pool<false>(PoolGeometry(windows_, call.input()), x, y, nullptr);
}

template class LayerImpl<MaxPool2D, MaxPool2DCache>;

}  // namespace layercache
