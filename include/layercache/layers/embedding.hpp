// Embedding: integer ids to learned vectors, one per step of a sequence (docs/sequences.md).
#pragma once

#include <cstddef>
#include <vector>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// What Embedding keeps for backward: the ids of every step of every sample.
template <class T>
struct EmbeddingCache : Cache {
  std::vector<std::size_t> ids;  ///< (T·batch) the id of step t of sample b at b·T + t

  /// The ids.
  void for_each_buffer(const BufferVisitor& f) const override {
    if (!ids.empty()) f(ids.data(), ids.size() * sizeof(std::size_t));
  }
};

/// A table of learned vectors, one column per id: the same as a Dense layer without bias
/// applied to one-hot ids, without making them. Each input value is an id (a whole number
/// in [0, n_ids), stored as T); an input of T values gives an output of Shape{T, n_out},
/// step t the column of the table for id t. Params: weight E (n_out × n_ids).
///   forward:  y_t = E[:, id_t]
///   backward: dE[:, k] = Σ_{t : id_t = k} dy_t (the columns of unused ids are 0); the ids
///             have no gradient (dx = 0).
/// An id that is not a whole number in range is a DataError naming the sample and step.
class Embedding : public LayerImpl<Embedding, EmbeddingCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "embedding";
  /// A table of n_ids vectors of n_out values (both positive, else ConfigError).
  Embedding(std::size_t n_ids, std::size_t n_out);

  /// Shape{T, n_out} for an input of T ids (any shape of T values).
  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;
  /// Number of ids.
  std::size_t n_ids() const noexcept { return n_ids_; }
  /// Values per vector.
  std::size_t n_out() const noexcept { return n_out_; }

  /// y_t = E[:, id_t] (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 EmbeddingCache<T>& cache, const LayerCall<T>& call) const;
  /// dE[:, id_t] += dy_t, dx = 0 (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const EmbeddingCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y_t = E[:, id_t], no cache (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  template <class T>
  void look_up(const arma::Mat<T>& table, const arma::Mat<T>& x, arma::Mat<T>& y,
               std::vector<std::size_t>* ids) const;

  std::size_t n_ids_;
  std::size_t n_out_;
};

extern template class LayerImpl<Embedding, EmbeddingCache>;

}  // namespace layercache
