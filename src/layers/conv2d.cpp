// Conv2D: forward and backward side by side, by im2col and one GEMM per block of samples.
//
// Layout (docs/convolution.md). A sample x is one column: pixel (row, col) of channel ci is at
// ci·H·W + col·H + row. For a block of nb samples the im2col matrix `patches` is
// (P·nb × K), P = h_out·w_out output pixels per sample, K = c·k·k: row i·P + (j·h_out + r)
// holds the receptive field of output pixel (r, j) of the block's sample i, and column
// (ci·k + kw)·k + kh holds kernel position (kh, kw) of input channel ci. Built column by
// column, each column is a run of h_out input values per output column j (contiguous when
// stride = 1), so im2col is a sequence of short copies.
//
//   forward:  result = patches · Wᵀ                 (P·nb × o), one GEMM per block
//             y[oc·P + p, n] = result[i·P + p, oc] + b[oc]   (rearranged into sample columns)
//   backward: dresult[i·P + p, oc] = dy[oc·P + p, n]          (the same rearrangement, reversed)
//             dW += dresultᵀ · patches              (o × K), patches rebuilt from the cached x
//             dpatches = dresult · W                (P·nb × K), then col2im adds into dx
//             db[oc] = Σ_{n, p} dy[oc·P + p, n]
// With one sample per block the rearrangement is the identity: the GEMM writes straight into
// y's column and dy's column is read in place.
#include "layercache/layers/conv2d.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "layercache/sizes.hpp"

namespace layercache {
namespace {

// Sizes of one convolution, from the options and the input shape (c, h, w).
struct Geometry {
  std::size_t channels = 0, height = 0, width = 0;              // input (c, h, w)
  std::size_t out_channels = 0, out_height = 0, out_width = 0;  // output (o, h_out, w_out)
  std::size_t kernel = 0, stride = 0, padding = 0;

  Geometry(const Conv2DOptions& o, const Shape& input)
      : channels(input[0]), height(input[1]), width(input[2]), out_channels(o.out_channels),
        kernel(o.kernel), stride(o.stride), padding(o.padding) {
    out_height = (height + 2 * padding - kernel) / stride + 1;
    out_width = (width + 2 * padding - kernel) / stride + 1;
  }
  std::size_t pixels() const { return out_height * out_width; }       // P, per channel
  std::size_t patch() const { return channels * kernel * kernel; }    // K, one receptive field
  std::size_t in_size() const { return channels * height * width; }
  std::size_t out_size() const { return out_channels * pixels(); }
};

// The output rows r with 0 ≤ r·s + offset < extent: [first, last).
struct Range {
  std::size_t first = 0, last = 0;
};
Range valid_range(std::ptrdiff_t offset, std::size_t extent, std::size_t stride, std::size_t count) {
  const auto s = static_cast<std::ptrdiff_t>(stride);
  const std::ptrdiff_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
  const std::ptrdiff_t top = static_cast<std::ptrdiff_t>(extent) - 1 - offset;  // r·s ≤ top
  const std::ptrdiff_t hi = top < 0 ? 0 : std::min<std::ptrdiff_t>(top / s + 1, count);
  return hi > lo ? Range{std::size_t(lo), std::size_t(hi)} : Range{0, 0};
}

// Samples per block: enough for large GEMMs while the block's scratch (patches and result)
// stays near the size of the L2 cache. One sample when a sample alone fills the budget.
std::size_t block_samples(const Geometry& g, std::size_t batch) {
  constexpr std::size_t budget = std::size_t(1) << 17;  // scalars (512 KiB of float)
  const std::size_t per_sample = g.pixels() * (g.patch() + g.out_channels);
  return std::clamp<std::size_t>(budget / std::max<std::size_t>(per_sample, 1), 1,
                                 std::max<std::size_t>(batch, 1));
}

// GCC turns short copy loops into calls to memmove, which cost more than the copies themselves
// for the runs of h_out values in im2col (about 25% of its time); this keeps them inline.
#if defined(__GNUC__) && !defined(__clang__)
#define LAYERCACHE_SHORT_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define LAYERCACHE_SHORT_LOOPS
#endif

// Writes one block of im2col: the h_out values of kernel row kh that output column j reads
// from input column `w` of `channel` (zeros where the window hangs over the border).
template <class T>
LAYERCACHE_SHORT_LOOPS void im2col_block(const Geometry& g, const T* channel, std::ptrdiff_t w,
                                         std::size_t kh, const Range& rows, T* dst) {
  const std::size_t ho = g.out_height, s = g.stride;
  if (w < 0 || w >= std::ptrdiff_t(g.width) || rows.last == rows.first) {
    for (std::size_t r = 0; r < ho; ++r) dst[r] = T(0);
    return;
  }
  for (std::size_t r = 0; r < rows.first; ++r) dst[r] = T(0);
  const T* src = channel + (std::size_t(w) * g.height + (rows.first * s + kh - g.padding));
  T* run = dst + rows.first;
  const std::size_t n = rows.last - rows.first;
  if (s == 1)
    for (std::size_t r = 0; r < n; ++r) run[r] = src[r];
  else
    for (std::size_t r = 0; r < n; ++r) run[r] = src[r * s];
  for (std::size_t r = rows.last; r < ho; ++r) dst[r] = T(0);
}

// Writes the im2col rows of one sample x (c·h·w) into `patches`, whose column j starts at
// patches + j·ld (the caller offsets the pointer to the sample's first row).
// With stride 1, the column of kernel column kw is the column of kw − 1 moved up by one block
// of h_out rows (output column j + 1 at kw − 1 reads the input column that output column j
// reads at kw), so it is one long copy plus one fresh block instead of w_out short runs.
template <class T>
LAYERCACHE_SHORT_LOOPS void im2col(const Geometry& g, const T* x, T* patches, std::size_t ld) {
  const std::size_t k = g.kernel, s = g.stride, ho = g.out_height, wo = g.out_width;
  const auto pad = static_cast<std::ptrdiff_t>(g.padding);
  for (std::size_t ci = 0; ci < g.channels; ++ci) {
    const T* channel = x + ci * g.height * g.width;
    for (std::size_t kh = 0; kh < k; ++kh) {
      const Range rows = valid_range(std::ptrdiff_t(kh) - pad, g.height, s, ho);
      for (std::size_t kw = 0; kw < k; ++kw) {
        T* column = patches + ((ci * k + kw) * k + kh) * ld;
        const auto w0 = std::ptrdiff_t(kw) - pad;  // input column read by output column 0
        if (s == 1 && kw > 0) {
          const T* previous = column - k * ld;  // same ci and kh, kernel column kw − 1
          std::copy(previous + ho, previous + wo * ho, column);
          im2col_block(g, channel, w0 + std::ptrdiff_t(wo - 1), kh, rows, column + (wo - 1) * ho);
          continue;
        }
        for (std::size_t j = 0; j < wo; ++j)
          im2col_block(g, channel, w0 + std::ptrdiff_t(j * s), kh, rows, column + j * ho);
      }
    }
  }
}

// Adds one block of im2col-shaped gradient back onto input column `w` of `channel`.
template <class T>
void col2im_block(const Geometry& g, const T* src, std::ptrdiff_t w, std::size_t kh,
                  const Range& rows, T* channel) {
  if (w < 0 || w >= std::ptrdiff_t(g.width)) return;
  const std::size_t s = g.stride, n = rows.last - rows.first;
  T* dst = channel + (std::size_t(w) * g.height + (rows.first * s + kh - g.padding));
  src += rows.first;
  if (s == 1)  // contiguous: vectorizes
    for (std::size_t r = 0; r < n; ++r) dst[r] += src[r];
  else
    for (std::size_t r = 0; r < n; ++r) dst[r * s] += src[r];
}

// Adds the im2col-shaped gradient of one sample back onto its pixels: the transpose of
// im2col. dx (c·h·w) must be zeroed by the caller. `dpatches` is scratch and is overwritten:
// with stride 1 the kernel columns are first folded onto each other (the transpose of the
// shifted copies in im2col), so each input column receives one run instead of k.
template <class T>
void col2im(const Geometry& g, T* dpatches, std::size_t ld, T* dx) {
  const std::size_t k = g.kernel, s = g.stride, ho = g.out_height, wo = g.out_width;
  const auto pad = static_cast<std::ptrdiff_t>(g.padding);
  for (std::size_t ci = 0; ci < g.channels; ++ci) {
    T* channel = dx + ci * g.height * g.width;
    for (std::size_t kh = 0; kh < k; ++kh) {
      const Range rows = valid_range(std::ptrdiff_t(kh) - pad, g.height, s, ho);
      if (rows.last == rows.first) continue;
      auto column = [&](std::size_t kw) { return dpatches + ((ci * k + kw) * k + kh) * ld; };
      if (s == 1) {
        // block j of column kw belongs to input column j + kw − p: add it to block j + 1 of
        // column kw − 1, down to column 0; the last block of each column is left over.
        for (std::size_t kw = k - 1; kw > 0; --kw) {
          const T* from = column(kw);
          T* onto = column(kw - 1) + ho;
          for (std::size_t i = 0; i + ho < wo * ho; ++i) onto[i] += from[i];
        }
        for (std::size_t j = 0; j < wo; ++j)
          col2im_block(g, column(0) + j * ho, std::ptrdiff_t(j) - pad, kh, rows, channel);
        for (std::size_t kw = 1; kw < k; ++kw)
          col2im_block(g, column(kw) + (wo - 1) * ho, std::ptrdiff_t(wo - 1 + kw) - pad, kh, rows,
                       channel);
        continue;
      }
      for (std::size_t kw = 0; kw < k; ++kw)
        for (std::size_t j = 0; j < wo; ++j)
          col2im_block(g, column(kw) + j * ho, std::ptrdiff_t(j * s + kw) - pad, kh, rows, channel);
    }
  }
}

// Sum of n scalars with independent partial sums (fast, and the same for every call).
template <class T>
T sum_of(const T* p, std::size_t n) {
  T part[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t l = 0; l < 8; ++l) part[l] += p[i + l];
  for (; i < n; ++i) part[0] += p[i];
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// A matrix that aliases existing memory (no copy, never reallocated).
template <class T>
arma::Mat<T> alias(T* memory, std::size_t rows, std::size_t cols) {
  return arma::Mat<T>(memory, rows, cols, false, true);
}

// y = conv(x) for a whole batch; `workspace` is resized to one block's scratch.
template <class T>
void convolve(const Geometry& g, const arma::Mat<T>& w, const arma::Mat<T>* b,
              const arma::Mat<T>& x, arma::Mat<T>& y, arma::Mat<T>& workspace) {
  const std::size_t batch = x.n_cols, P = g.pixels(), K = g.patch(), O = g.out_channels;
  const std::size_t nb = block_samples(g, batch);
  workspace.set_size(P * nb * (K + (nb > 1 ? O : 0)), 1);
  for (std::size_t n0 = 0; n0 < batch; n0 += nb) {
    const std::size_t m = std::min(nb, batch - n0);
    arma::Mat<T> patches = alias(workspace.memptr(), P * m, K);
    for (std::size_t i = 0; i < m; ++i) im2col(g, x.colptr(n0 + i), patches.memptr() + i * P, P * m);
    if (m == 1) {  // the GEMM writes the sample's column directly: (P × o) is its layout
      arma::Mat<T> result = alias(y.colptr(n0), P, O);
      result = patches * w.t();
      if (b)
        for (std::size_t oc = 0; oc < O; ++oc) {
          const T bias = (*b)[oc];
          T* dst = result.colptr(oc);
          for (std::size_t p = 0; p < P; ++p) dst[p] += bias;
        }
      continue;
    }
    arma::Mat<T> result = alias(workspace.memptr() + P * nb * K, P * m, O);
    result = patches * w.t();
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t oc = 0; oc < O; ++oc) {
        const T bias = b ? (*b)[oc] : T(0);
        const T* src = result.colptr(oc) + i * P;
        T* dst = y.colptr(n0 + i) + oc * P;
        for (std::size_t p = 0; p < P; ++p) dst[p] = src[p] + bias;
      }
  }
}

}  // namespace

Conv2D::Conv2D(Conv2DOptions options) : options_(options) {
  if (options.in_channels == 0 || options.out_channels == 0 || options.kernel == 0 ||
      options.stride == 0)
    throw ConfigError("Conv2D needs positive in_channels, out_channels, kernel and stride, got " +
                      std::to_string(options.in_channels) + ", " +
                      std::to_string(options.out_channels) + ", " + std::to_string(options.kernel) +
                      ", " + std::to_string(options.stride));
  // Every size the layer derives from its options is checked once here (include/layercache/
  // sizes.hpp); the geometry's products from the input shape are checked in output_shape.
  const std::size_t patch = checked_product({options.in_channels, options.kernel, options.kernel},
                                            "in_channels × kernel × kernel");
  checked_mul(options.out_channels, patch, "weight values out_channels × in_channels × kernel²");
  checked_mul(2, options.padding, "2 × padding");
}

Shape Conv2D::output_shape(const Shape& input) const {
  const std::size_t c = options_.in_channels;
  // built only on the error paths: a steady-state step must not allocate
  auto expected = [&] { return "(" + std::to_string(c) + ", height, width)"; };
  if (input.rank() != 3) {
    std::string hint = "a conv layer needs the image shape (channels, height, width)";
    const std::size_t per_channel = input.size() / c;
    const auto side = static_cast<std::size_t>(std::llround(std::sqrt(double(per_channel))));
    if (input.rank() == 1 && input.size() % c == 0 && side * side == per_channel && side > 0)
      hint += ", e.g. Shape{" + std::to_string(c) + ", " + std::to_string(side) + ", " +
              std::to_string(side) + "}";
    throw ShapeError("expected input " + expected() + ", got " + input.str() + "; " + hint);
  }
  if (input[0] != c)
    throw ShapeError("expected input " + expected() + " with " + std::to_string(c) +
                     " channels, got " + input.str());
  const std::size_t k = options_.kernel, p = options_.padding;
  const std::size_t padded_height = checked_add<ShapeError>(input[1], 2 * p, "height + 2 × padding");
  const std::size_t padded_width = checked_add<ShapeError>(input[2], 2 * p, "width + 2 × padding");
  if (padded_height < k || padded_width < k)
    throw ShapeError("expected input " + expected() + " of at least " + std::to_string(k) + " × " +
                     std::to_string(k) + " after padding " + std::to_string(p) + ", got " +
                     input.str());
  const Geometry g(options_, input);
  // the im2col scratch of one sample: pixels × (patch + out_channels) values
  checked_mul<ShapeError>(checked_mul<ShapeError>(g.out_height, g.out_width, "output pixels"),
                          checked_add<ShapeError>(g.patch(), g.out_channels, "patch + out_channels"),
                          "im2col values per sample");
  return Shape{g.out_channels, g.out_height, g.out_width};
}

std::vector<TensorSpec> Conv2D::param_specs(const Shape&) const {
  const std::size_t k2 = options_.kernel * options_.kernel;
  const std::size_t o = options_.out_channels, fan_in = options_.in_channels * k2;
  std::vector<TensorSpec> specs{{"weight", o, fan_in, Role::weight, fan_in, o * k2}};
  if (options_.bias) specs.push_back({"bias", o, 1, Role::bias, fan_in, o * k2});
  return specs;
}

template <class T>
void Conv2D::forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                       Conv2DCache<T>& cache, const LayerCall<T>& call) const {
  const Geometry g(options_, call.input());
  convolve(g, params["weight"], options_.bias ? &params["bias"] : nullptr, *x, y,
           cache.workspace);
  cache.x = x;
}

template <class T>
void Conv2D::backward_t(const Tensors<T>& params, const Conv2DCache<T>& cache,
                        const arma::Mat<T>& dy, Gradients<T>& grads) const {
  const Geometry g(options_, cache.input_shape());
  const arma::Mat<T>& x = *cache.x;
  const std::size_t batch = x.n_cols, P = g.pixels(), K = g.patch(), O = g.out_channels;
  const arma::Mat<T>& w = params["weight"];
  arma::Mat<T>* dw = grads.param("weight");
  arma::Mat<T>* db = options_.bias ? grads.param("bias") : nullptr;
  arma::Mat<T>* dx = grads.dx();

  if (db) {
    db->zeros();
    for (std::size_t n = 0; n < batch; ++n)
      for (std::size_t oc = 0; oc < O; ++oc) (*db)[oc] += sum_of(dy.colptr(n) + oc * P, P);
  }
  if (!dw && !dx) return;
  if (dw) dw->zeros();

  // Scratch lives in the result, so a reused result allocates nothing; the cache is never
  // written.
  const std::size_t nb = block_samples(g, batch);
  arma::Mat<T>& workspace = grads.workspace();
  workspace.set_size(P * nb * (K + (nb > 1 ? O : 0)), 1);
  for (std::size_t n0 = 0; n0 < batch; n0 += nb) {
    const std::size_t m = std::min(nb, batch - n0);
    // dresult (P·m × o): with one sample it is dy's column itself, read in place (the alias
    // is only ever a GEMM operand, so dy is not written).
    arma::Mat<T> dresult = m == 1 ? alias(const_cast<T*>(dy.colptr(n0)), P, O)
                                  : alias(workspace.memptr() + P * nb * K, P * m, O);
    if (m > 1)
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t oc = 0; oc < O; ++oc) {
          const T* src = dy.colptr(n0 + i) + oc * P;
          std::copy(src, src + P, dresult.colptr(oc) + i * P);
        }
    arma::Mat<T> patches = alias(workspace.memptr(), P * m, K);
    if (dw) {
      for (std::size_t i = 0; i < m; ++i)
        im2col(g, x.colptr(n0 + i), patches.memptr() + i * P, P * m);
      *dw += dresult.t() * patches;
    }
    if (dx) {
      patches = dresult * w;  // now dpatches
      for (std::size_t i = 0; i < m; ++i) {
        T* column = dx->colptr(n0 + i);
        std::fill(column, column + g.in_size(), T(0));
        col2im(g, patches.memptr() + i * P, P * m, column);
      }
    }
  }
}

template <class T>
void Conv2D::infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
                     const LayerCall<T>& call) const {
  const Geometry g(options_, call.input());
  arma::Mat<T> workspace;
  convolve(g, params["weight"], options_.bias ? &params["bias"] : nullptr, x, y, workspace);
}

template class LayerImpl<Conv2D, Conv2DCache>;

}  // namespace layercache
