// BatchNorm: forward and backward side by side, per channel of every sample column.
#include "layercache/layers/batch_norm.hpp"

#include <cmath>
#include <string>

namespace layercache {
namespace {

// The values of one channel of one sample: `size` consecutive rows of a column.
struct ChannelBlocks {
  std::size_t channels;
  std::size_t size;  // values per channel per sample (h·w, or 1 for feature vectors)
};

ChannelBlocks blocks_of(const Shape& input) {
  return {input[0], input.rank() == 3 ? input[1] * input[2] : 1};
}

// sums[c] = Σ over the batch of f(x value, c) for every channel c (sums sized ≥ channels).
template <class T, class F>
void channel_sums(const arma::Mat<T>& x, ChannelBlocks b, arma::Col<T>& sums, F f) {
  for (std::size_t c = 0; c < b.channels; ++c) {
    double total = 0;  // in double: a float sum of a large batch would lose digits
    for (std::size_t j = 0; j < x.n_cols; ++j) {
      const T* v = x.colptr(j) + c * b.size;
      for (std::size_t s = 0; s < b.size; ++s) total += double(f(v[s], c));
    }
    sums[c] = T(total);
  }
}

// y = scale[c]·(x − mean[c])·inv_std[c] + shift[c] per channel; with `normalized`, also
// writes x̂ there.
template <class T>
void normalize(const arma::Mat<T>& x, ChannelBlocks b, const T* mean, const T* inv_std,
               const T* scale, const T* shift, arma::Mat<T>* normalized, arma::Mat<T>& y) {
  for (std::size_t j = 0; j < x.n_cols; ++j)
    for (std::size_t c = 0; c < b.channels; ++c) {
      const std::size_t first = c * b.size;
      const T* v = x.colptr(j) + first;
      T* out = y.colptr(j) + first;
      T* n = normalized ? normalized->colptr(j) + first : nullptr;
      for (std::size_t s = 0; s < b.size; ++s) {
        const T h = (v[s] - mean[c]) * inv_std[c];
        if (n) n[s] = h;
        out[s] = scale[c] * h + shift[c];  // infer_t computes the same expression
      }
    }
}

}  // namespace

BatchNorm::BatchNorm(std::size_t channels, BatchNormOptions options)
    : channels_(channels), options_(options) {
  if (channels == 0) throw ConfigError("BatchNorm needs at least one channel, got 0");
  if (!(options.momentum > 0 && options.momentum <= 1))
    throw ConfigError("BatchNorm needs a momentum in (0, 1], got " +
                      std::to_string(options.momentum));
  if (!(options.eps > 0 && std::isfinite(options.eps)))
    throw ConfigError("BatchNorm needs a positive eps, got " + std::to_string(options.eps));
}

Shape BatchNorm::output_shape(const Shape& input) const {
  const std::string c = std::to_string(channels_);
  if ((input.rank() != 1 && input.rank() != 3) || input[0] != channels_)
    throw ShapeError("expected input (" + c + ") or (" + c + ", height, width), got " +
                     input.str());
  return input;
}

std::vector<TensorSpec> BatchNorm::param_specs(const Shape&) const {
  return {{"scale", channels_, 1, Role::scale}, {"shift", channels_, 1, Role::shift}};
}

std::vector<TensorSpec> BatchNorm::state_specs(const Shape&) const {
  return {{"running_mean", channels_, 1, Role::running_mean},
          {"running_variance", channels_, 1, Role::running_variance}};
}

template <class T>
void BatchNorm::forward_t(const Tensors<T>& params, const ConstBuffer<T>& x_buffer,
                          arma::Mat<T>& y, BatchNormCache<T>& cache,
                          const LayerCall<T>& call) const {
  const arma::Mat<T>& x = *x_buffer;
  const ChannelBlocks b = blocks_of(call.input());
  const std::size_t C = channels_;
  cache.normalized.set_size(x.n_rows, x.n_cols);
  cache.inv_std.set_size(C);
  const T eps = T(options_.eps);
  if (!call.training()) {
    // Infer mode: the running statistics, kept for a backward through them.
    const arma::Mat<T>& mean = call.state("running_mean");
    const arma::Mat<T>& variance = call.state("running_variance");
    for (std::size_t c = 0; c < C; ++c) cache.inv_std[c] = T(1) / std::sqrt(variance[c] + eps);
    cache.count = 0;
    normalize(x, b, mean.memptr(), cache.inv_std.memptr(), params["scale"].memptr(),
              params["shift"].memptr(), &cache.normalized, y);
    return;
  }
  // The batch's mean: the sums and the count over the whole batch (every shard's).
  arma::Col<T>& sums = cache.sums;
  sums.set_size(C + 1);
  channel_sums(x, b, sums, [](T v, std::size_t) { return v; });
  sums[C] = T(x.n_cols * b.size);
  call.sum_over_batch(sums);
  const double m = double(sums[C]);
  for (std::size_t c = 0; c < C; ++c) sums[c] = T(double(sums[c]) / m);  // now the means
  // The batch's variance about that mean (two passes: no cancellation).
  arma::Col<T>& variance = cache.inv_std;
  const T* mean = sums.memptr();
  channel_sums(x, b, variance, [mean](T v, std::size_t c) { return (v - mean[c]) * (v - mean[c]); });
  call.sum_over_batch(variance);
  cache.count = m;
  // The new running statistics, then the variance turned into 1 / √(σ² + eps) in place.
  const T p = T(options_.momentum);
  arma::Mat<T>* new_mean = call.new_state("running_mean");
  arma::Mat<T>* new_variance = call.new_state("running_variance");
  const arma::Mat<T>& old_mean = call.state("running_mean");
  const arma::Mat<T>& old_variance = call.state("running_variance");
  for (std::size_t c = 0; c < C; ++c) {
    const double biased = double(variance[c]) / m;
    const double unbiased = m > 1 ? double(variance[c]) / (m - 1) : biased;
    if (new_mean) (*new_mean)[c] = (T(1) - p) * old_mean[c] + p * mean[c];
    if (new_variance) (*new_variance)[c] = (T(1) - p) * old_variance[c] + p * T(unbiased);
    variance[c] = T(1) / std::sqrt(T(biased) + eps);
  }
  normalize(x, b, mean, cache.inv_std.memptr(), params["scale"].memptr(),
            params["shift"].memptr(), &cache.normalized, y);
}

template <class T>
void BatchNorm::backward_t(const Tensors<T>& params, const BatchNormCache<T>& cache,
                           const arma::Mat<T>& dy, Gradients<T>& grads) const {
  const ChannelBlocks b = blocks_of(cache.input_shape());
  const std::size_t C = channels_;
  const arma::Mat<T>& h = cache.normalized;
  // sums rows 0..C−1: Σ dy (dβ); rows C..2C−1: Σ dy x̂ (dγ), over this call's samples.
  arma::Mat<T>& sums = grads.workspace();
  sums.set_size(2 * C, 1);
  for (std::size_t c = 0; c < C; ++c) {
    double shift = 0, scale = 0;
    for (std::size_t j = 0; j < dy.n_cols; ++j) {
      const T* d = dy.colptr(j) + c * b.size;
      const T* n = h.colptr(j) + c * b.size;
      for (std::size_t s = 0; s < b.size; ++s) {
        shift += double(d[s]);
        scale += double(d[s]) * double(n[s]);
      }
    }
    sums[c] = T(shift);
    sums[C + c] = T(scale);
  }
  // The parameter gradients are this shard's share (train_step adds the shards' up).
  if (arma::Mat<T>* dshift = grads.param("shift")) std::copy_n(sums.memptr(), C, dshift->memptr());
  if (arma::Mat<T>* dscale = grads.param("scale"))
    std::copy_n(sums.memptr() + C, C, dscale->memptr());
  arma::Mat<T>* dx = grads.dx();
  if (!dx) return;
  const T* gamma = params["scale"].memptr();
  const bool batch_statistics = cache.count > 0;
  if (batch_statistics) grads.sum_over_batch(sums);  // dx needs the whole batch's sums
  const T m = T(cache.count);
  for (std::size_t j = 0; j < dy.n_cols; ++j)
    for (std::size_t c = 0; c < C; ++c) {
      const std::size_t first = c * b.size;
      const T* d = dy.colptr(j) + first;
      const T* n = h.colptr(j) + first;
      T* out = dx->colptr(j) + first;
      const T k = gamma[c] * cache.inv_std[c];
      if (batch_statistics) {
        const T mean_dy = sums[c] / m, mean_dy_h = sums[C + c] / m;
        for (std::size_t s = 0; s < b.size; ++s) out[s] = k * (d[s] - mean_dy - n[s] * mean_dy_h);
      } else {
        for (std::size_t s = 0; s < b.size; ++s) out[s] = k * d[s];
      }
    }
}

template <class T>
void BatchNorm::infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
                        const LayerCall<T>& call) const {
  const ChannelBlocks b = blocks_of(call.input());
  const arma::Mat<T>& mean = call.state("running_mean");
  const arma::Mat<T>& variance = call.state("running_variance");
  const arma::Mat<T>& gamma = params["scale"];
  const arma::Mat<T>& beta = params["shift"];
  const T eps = T(options_.eps);
  // The same arithmetic as a forward in infer mode, so both give the same bits.
  for (std::size_t j = 0; j < x.n_cols; ++j)
    for (std::size_t c = 0; c < channels_; ++c) {
      const T inv_std = T(1) / std::sqrt(variance[c] + eps);
      const T* v = x.colptr(j) + c * b.size;
      T* out = y.colptr(j) + c * b.size;
      for (std::size_t s = 0; s < b.size; ++s) out[s] = gamma[c] * ((v[s] - mean[c]) * inv_std) + beta[c];
    }
}

template class LayerImpl<BatchNorm, BatchNormCache>;

}  // namespace layercache
