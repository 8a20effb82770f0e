// Conv2D: forward and backward side by side, by im2col and one GEMM per group and block of
// samples.
//
// Layout (docs/convolution.md). A sample x is one column: pixel (row, col) of channel ci is at
// ci·H·W + col·H + row. For a block of nb samples the im2col matrix `patches` is
// (P·nb × K), P = h_out·w_out output pixels per sample, K = c·kh·kw: row n·P + (q·h_out + r)
// holds the receptive field of output pixel (r, q) of the block's sample n, and column
// (ci·kw + j)·kh + i holds tap (i, j) of input channel ci. Group g's columns are the
// contiguous range [g·Kg, (g + 1)·Kg), Kg = K / groups. Built column by column, each column is
// a run of h_out input values per output column q (contiguous when the height's stride is 1),
// so im2col is a sequence of short copies.
//
//   forward:  result[:, group g's filters] = patches[:, g's columns] · W[g's rows]ᵀ  (P·nb × o)
//             y[oc·P + p, n] = result[n·P + p, oc] + b[oc]   (rearranged into sample columns)
//   backward: dresult[n·P + p, oc] = dy[oc·P + p, n]          (the same rearrangement, reversed)
//             dW[g's rows] += dresult[:, g's filters]ᵀ · patches[:, g's columns]
//             dpatches[:, g's columns] = dresult[:, g's filters] · W[g's rows], then col2im
//             db[oc] = Σ_{n, p} dy[oc·P + p, n]
// With one sample per block the rearrangement is the identity: the GEMM writes straight into
// y's column and dy's column is read in place.
#include "layercache/layers/conv2d.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <tuple>

#include "layercache/sizes.hpp"

#include "../gemm.hpp"

namespace layercache {
namespace {

// Sizes of one convolution, from the options and the input shape (c, h, w).
struct Geometry {
  std::size_t channels = 0, height = 0, width = 0;  // input (c, h, w)
  std::size_t out_channels = 0, groups = 1;
  WindowAxis rows, cols;  // the windows along each channel's rows (height) and columns (width)

  Geometry(const Conv2DOptions& o, const Shape& input)
      : channels(input[0]), height(input[1]), width(input[2]), out_channels(o.out_channels),
        groups(o.groups) {
    const ImageWindows w = image_windows(
        input, {.kernel = o.kernel, .stride = o.stride, .dilation = o.dilation, .padding = o.padding});
    rows = w.height;
    cols = w.width;
  }
  std::size_t pixels() const { return rows.output * cols.output; }         // P, per channel
  std::size_t taps() const { return rows.kernel * cols.kernel; }             // kh·kw
  std::size_t patch() const { return channels * taps(); }                    // K, all groups
  std::size_t group_patch() const { return patch() / groups; }               // Kg
  std::size_t group_filters() const { return out_channels / groups; }        // o / g
  std::size_t in_size() const { return channels * height * width; }
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

// The rows of tap i that fall inside the image, and the input row of output row `first`.
struct TapRows {
  Range rows;
  std::size_t first_input = 0;  // input row read by output row rows.first
};
TapRows tap_rows(const WindowAxis& a, std::size_t i) {
  const auto offset = std::ptrdiff_t(i * a.dilation) - std::ptrdiff_t(a.pad_before);
  const Range r = valid_range(offset, a.input, a.stride, a.output);
  return {r, r.last > r.first ? std::size_t(std::ptrdiff_t(r.first * a.stride) + offset) : 0};
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

// Writes one block of im2col: the h_out values of tap row `tap` that output column q reads
// from input column `w` of `channel` (zeros where the window hangs over the border).
template <class T>
LAYERCACHE_SHORT_LOOPS void im2col_block(const Geometry& g, const T* channel, std::ptrdiff_t w,
                                         const TapRows& tap, T* dst) {
  const std::size_t ho = g.rows.output, s = g.rows.stride;
  const Range& rows = tap.rows;
  if (w < 0 || w >= std::ptrdiff_t(g.width) || rows.last == rows.first) {
    for (std::size_t r = 0; r < ho; ++r) dst[r] = T(0);
    return;
  }
  for (std::size_t r = 0; r < rows.first; ++r) dst[r] = T(0);
  const T* src = channel + (std::size_t(w) * g.height + tap.first_input);
  T* run = dst + rows.first;
  const std::size_t n = rows.last - rows.first;
  if (s == 1)
    for (std::size_t r = 0; r < n; ++r) run[r] = src[r];
  else
    for (std::size_t r = 0; r < n; ++r) run[r] = src[r * s];
  for (std::size_t r = rows.last; r < ho; ++r) dst[r] = T(0);
}

// Copies n scalars in 16-byte pieces, the last piece overlapping the one before it when n is
// not a multiple of the piece: the short runs of im2col (11 values in the benchmark CNN's
// second convolution) then take no scalar remainder loop.
template <class T>
LAYERCACHE_SHORT_LOOPS void copy_run(const T* src, std::size_t n, T* dst) {
  constexpr std::size_t piece = 16 / sizeof(T);
  if (n < piece) {
    for (std::size_t r = 0; r < n; ++r) dst[r] = src[r];
    return;
  }
  for (std::size_t r = 0; r + piece <= n; r += piece) std::memcpy(dst + r, src + r, 16);
  std::memcpy(dst + n - piece, src + n - piece, 16);
}

// Whether im2col builds the column of tap column j from the column of tap j − 1 shifted up by
// `dilation` blocks: output column q + d at tap j − 1 reads the input column that output column
// q reads at tap j (stride 1 along the width), so the column is one long copy plus d fresh
// blocks instead of w_out short runs (im2col does so for the columns whose windows hang over
// the border; the others are plain runs). col2im folds the columns the same way.
bool shifts(const Geometry& g) { return g.cols.stride == 1 && g.cols.dilation < g.cols.output; }

// Writes the im2col rows of one sample x (c·h·w) into `patches`, whose column starts at
// patches + column·ld (the caller offsets the pointer to the sample's first row).
template <class T>
LAYERCACHE_SHORT_LOOPS void im2col(const Geometry& g, const T* x, T* patches, std::size_t ld) {
  const std::size_t kh = g.rows.kernel, kw = g.cols.kernel, ho = g.rows.output,
                    wo = g.cols.output, s = g.cols.stride, d = g.cols.dilation,
                    rs = g.rows.stride;
  const auto pad = std::ptrdiff_t(g.cols.pad_before);
  const bool shift = shifts(g);
  for (std::size_t ci = 0; ci < g.channels; ++ci) {
    const T* channel = x + ci * g.height * g.width;
    for (std::size_t i = 0; i < kh; ++i) {
      const TapRows tap = tap_rows(g.rows, i);
      const bool full_rows = tap.rows.first == 0 && tap.rows.last == ho;
      for (std::size_t j = 0; j < kw; ++j) {
        T* column = patches + ((ci * kw + j) * kh + i) * ld;
        const auto w0 = std::ptrdiff_t(j * d) - pad;  // input column read by output column 0
        if (full_rows && w0 >= 0 && w0 + std::ptrdiff_t((wo - 1) * s) < std::ptrdiff_t(g.width)) {
          // the window never hangs over the border: one run per output column, no zeros
          const T* src = channel + (std::size_t(w0) * g.height + tap.first_input);
          for (std::size_t q = 0; q < wo; ++q, src += s * g.height)
            if (rs == 1)
              copy_run(src, ho, column + q * ho);
            else
              for (std::size_t r = 0; r < ho; ++r) column[q * ho + r] = src[r * rs];
          continue;
        }
        if (shift && j > 0) {
          const T* previous = column - kh * ld;  // same ci and i, tap column j − 1
          std::copy(previous + d * ho, previous + wo * ho, column);
          for (std::size_t q = wo - d; q < wo; ++q)
            im2col_block(g, channel, w0 + std::ptrdiff_t(q), tap, column + q * ho);
          continue;
        }
        for (std::size_t q = 0; q < wo; ++q)
          im2col_block(g, channel, w0 + std::ptrdiff_t(q * s), tap, column + q * ho);
      }
    }
  }
}

// Adds one block of im2col-shaped gradient back onto input column `w` of `channel`.
template <class T>
void col2im_block(const Geometry& g, const T* src, std::ptrdiff_t w, const TapRows& tap,
                  T* channel) {
  if (w < 0 || w >= std::ptrdiff_t(g.width)) return;
  const std::size_t s = g.rows.stride, n = tap.rows.last - tap.rows.first;
  T* dst = channel + (std::size_t(w) * g.height + tap.first_input);
  src += tap.rows.first;
  if (s == 1)  // contiguous: vectorizes
    for (std::size_t r = 0; r < n; ++r) dst[r] += src[r];
  else
    for (std::size_t r = 0; r < n; ++r) dst[r * s] += src[r];
}

// Adds the im2col-shaped gradient of one sample back onto its pixels: the transpose of
// im2col. dx (c·h·w) must be zeroed by the caller. `dpatches` is scratch and is overwritten:
// when im2col shifts, the tap columns are first folded onto each other (the transpose of the
// shifted copies), so each input column receives one run instead of kw.
template <class T>
void col2im(const Geometry& g, T* dpatches, std::size_t ld, T* dx) {
  const std::size_t kh = g.rows.kernel, kw = g.cols.kernel, ho = g.rows.output,
                    wo = g.cols.output, s = g.cols.stride, d = g.cols.dilation;
  const auto pad = std::ptrdiff_t(g.cols.pad_before);
  const bool shift = shifts(g);
  for (std::size_t ci = 0; ci < g.channels; ++ci) {
    T* channel = dx + ci * g.height * g.width;
    for (std::size_t i = 0; i < kh; ++i) {
      const TapRows tap = tap_rows(g.rows, i);
      if (tap.rows.last == tap.rows.first) continue;
      auto column = [&](std::size_t j) { return dpatches + ((ci * kw + j) * kh + i) * ld; };
      auto input_column = [&](std::size_t q, std::size_t j) {
        return std::ptrdiff_t(q * s + j * d) - pad;
      };
      if (shift) {
        // block q of column j belongs to the input column of block q + d of column j − 1: add
        // it there, down to column 0; the last d blocks of each column are left over.
        for (std::size_t j = kw - 1; j > 0; --j) {
          const T* from = column(j);
          T* onto = column(j - 1) + d * ho;
          for (std::size_t t = 0; t < (wo - d) * ho; ++t) onto[t] += from[t];
        }
        for (std::size_t q = 0; q < wo; ++q)
          col2im_block(g, column(0) + q * ho, input_column(q, 0), tap, channel);
        for (std::size_t j = 1; j < kw; ++j)
          for (std::size_t q = wo - d; q < wo; ++q)
            col2im_block(g, column(j) + q * ho, input_column(q, j), tap, channel);
        continue;
      }
      for (std::size_t j = 0; j < kw; ++j)
        for (std::size_t q = 0; q < wo; ++q)
          col2im_block(g, column(j) + q * ho, input_column(q, j), tap, channel);
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

// y = conv(x) for a whole batch; `workspace` is resized to one block's scratch.
template <class T>
void convolve(const Geometry& g, const arma::Mat<T>& w, const arma::Mat<T>* b,
              const arma::Mat<T>& x, arma::Mat<T>& y, arma::Mat<T>& workspace) {
  const std::size_t batch = x.n_cols, P = g.pixels(), K = g.patch(), O = g.out_channels;
  const std::size_t Kg = g.group_patch(), Og = g.group_filters();
  const std::size_t nb = block_samples(g, batch);
  workspace.set_size(P * nb * (K + (nb > 1 ? O : 0)), 1);
  for (std::size_t n0 = 0; n0 < batch; n0 += nb) {
    const std::size_t m = std::min(nb, batch - n0), ld = P * m;
    T* patches = workspace.memptr();
    for (std::size_t i = 0; i < m; ++i) im2col(g, x.colptr(n0 + i), patches + i * P, ld);
    // one sample: the GEMM writes the sample's column directly, (P × o) is its layout
    T* result = m == 1 ? y.colptr(n0) : workspace.memptr() + P * nb * K;
    for (std::size_t group = 0; group < g.groups; ++group)
      detail::gemm<T>('N', 'T', ld, Og, Kg, patches + group * Kg * ld, ld,
                      w.memptr() + group * Og, O, result + group * Og * ld, ld);
    if (m == 1) {
      if (b)
        for (std::size_t oc = 0; oc < O; ++oc) {
          const T bias = (*b)[oc];
          T* dst = result + oc * P;
          for (std::size_t p = 0; p < P; ++p) dst[p] += bias;
        }
      continue;
    }
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t oc = 0; oc < O; ++oc) {
        const T bias = b ? (*b)[oc] : T(0);
        const T* src = result + oc * ld + i * P;
        T* dst = y.colptr(n0 + i) + oc * P;
        for (std::size_t p = 0; p < P; ++p) dst[p] = src[p] + bias;
      }
  }
}

}  // namespace

Conv2D::Conv2D(Conv2DOptions options) : options_(options) {
  const Conv2DOptions& o = options;
  if (o.in_channels == 0 || o.out_channels == 0 || o.groups == 0 || o.kernel.height == 0 ||
      o.kernel.width == 0 || o.stride.height == 0 || o.stride.width == 0 ||
      o.dilation.height == 0 || o.dilation.width == 0)
    throw ConfigError("Conv2D needs positive in_channels, out_channels, groups, kernel, stride "
                      "and dilation, got " + std::to_string(o.in_channels) + ", " +
                      std::to_string(o.out_channels) + ", " + std::to_string(o.groups) + ", " +
                      o.kernel.str() + ", " + o.stride.str() + ", " + o.dilation.str());
  if (o.in_channels % o.groups != 0 || o.out_channels % o.groups != 0)
    throw ConfigError("Conv2D needs groups dividing in_channels and out_channels, got groups = " +
                      std::to_string(o.groups) + " for " + std::to_string(o.in_channels) +
                      " → " + std::to_string(o.out_channels) + " channels");
  // Every size the layer derives from its options is checked once here (layercache/sizes.hpp);
  // the geometry's sizes from the input shape are checked in output_shape.
  const std::size_t group_patch =
      checked_product({o.in_channels / o.groups, o.kernel.height, o.kernel.width},
                      "in_channels / groups × kernel height × kernel width");
  checked_product({o.in_channels, o.kernel.height, o.kernel.width},
                  "in_channels × kernel height × kernel width");
  checked_mul(o.out_channels, group_patch, "weight values out_channels × (in_channels / groups × kernel area)");
  for (const auto& [kernel, dilation, padding, axis] :
       {std::tuple{o.kernel.height, o.dilation.height, o.padding.height, "height"},
        std::tuple{o.kernel.width, o.dilation.width, o.padding.width, "width"}}) {
    checked_add(checked_mul(dilation, kernel - 1, std::string("dilation × (kernel − 1) along the ") + axis),
                1, std::string("dilated kernel along the ") + axis);
    checked_mul(2, padding, std::string("2 × padding along the ") + axis);
  }
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
  const Geometry g(options_, input);
  // the im2col scratch of one sample: pixels × (patch + out_channels) values
  checked_mul<ShapeError>(checked_mul<ShapeError>(g.rows.output, g.cols.output, "output pixels"),
                          checked_add<ShapeError>(g.patch(), g.out_channels, "patch + out_channels"),
                          "im2col values per sample");
  return Shape{g.out_channels, g.rows.output, g.cols.output};
}

std::pair<WindowAxis, WindowAxis> Conv2D::windows(const Shape& input) const {
  output_shape(input);  // the checks
  const Geometry g(options_, input);
  return {g.rows, g.cols};
}

std::vector<TensorSpec> Conv2D::param_specs(const Shape&) const {
  const std::size_t taps = options_.kernel.height * options_.kernel.width;
  const std::size_t o = options_.out_channels, fan_in = options_.in_channels / options_.groups * taps;
  const std::size_t fan_out = o * taps;  // as PyTorch counts it
  std::vector<TensorSpec> specs{{"weight", o, fan_in, Role::weight, fan_in, fan_out}};
  if (options_.bias) specs.push_back({"bias", o, 1, Role::bias, fan_in, fan_out});
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
  const std::size_t Kg = g.group_patch(), Og = g.group_filters();
  const arma::Mat<T>& w = params["weight"];
  arma::Mat<T>* dw = grads.param("weight");
  arma::Mat<T>* db = options_.bias ? grads.param("bias") : nullptr;
  arma::Mat<T>* dx = grads.dx();

  // db[oc] sums dy's rows of channel oc: here when nothing else reads dy, else block by block
  // below, as one matrix-vector product while the block's dy is in cache.
  if (db) db->zeros();
  if (!dw && !dx) {
    for (std::size_t n = 0; db && n < batch; ++n)
      for (std::size_t oc = 0; oc < O; ++oc) (*db)[oc] += sum_of(dy.colptr(n) + oc * P, P);
    return;
  }
  if (dw) dw->zeros();

  // Scratch lives in the result, so a reused result allocates nothing; the cache is never
  // written.
  const std::size_t nb = block_samples(g, batch);
  arma::Mat<T>& workspace = grads.workspace();
  // scratch: patches (P·nb × K), dresult (P·nb × o) when nb > 1, and P·nb ones for db
  const std::size_t scratch = P * nb * (K + (nb > 1 ? O : 0));
  workspace.set_size(scratch + (db ? P * nb : 0), 1);
  T* ones = workspace.memptr() + scratch;
  if (db) std::fill(ones, ones + P * nb, T(1));
  for (std::size_t n0 = 0; n0 < batch; n0 += nb) {
    const std::size_t m = std::min(nb, batch - n0), ld = P * m;
    // dresult (P·m × o): with one sample it is dy's column itself, read in place (only ever a
    // GEMM operand, so dy is not written).
    T* dresult = m == 1 ? const_cast<T*>(dy.colptr(n0)) : workspace.memptr() + P * nb * K;
    if (m > 1)
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t oc = 0; oc < O; ++oc) {
          const T* src = dy.colptr(n0 + i) + oc * P;
          std::copy(src, src + P, dresult + oc * ld + i * P);
        }
    // db += dresultᵀ · ones, while the block is in cache
    if (db) detail::gemm<T>('T', 'N', O, 1, ld, dresult, ld, ones, ld, db->memptr(), O, T(1));
    T* patches = workspace.memptr();
    if (dw) {
      for (std::size_t i = 0; i < m; ++i) im2col(g, x.colptr(n0 + i), patches + i * P, ld);
      for (std::size_t group = 0; group < g.groups; ++group)
        detail::gemm<T>('T', 'N', Og, Kg, ld, dresult + group * Og * ld, ld,
                        patches + group * Kg * ld, ld, dw->memptr() + group * Og, O, T(1));
    }
    if (dx) {
      for (std::size_t group = 0; group < g.groups; ++group)  // patches now hold dpatches
        detail::gemm<T>('N', 'N', ld, Kg, Og, dresult + group * Og * ld, ld,
                        w.memptr() + group * Og, O, patches + group * Kg * ld, ld);
      for (std::size_t i = 0; i < m; ++i) {
        T* column = dx->colptr(n0 + i);
        std::fill(column, column + g.in_size(), T(0));
        col2im(g, patches + i * P, ld, column);
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
