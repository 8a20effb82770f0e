// Parallel: one input fanned out to several branches whose outputs are merged.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "layercache/combinator.hpp"

namespace layercache {

/// How Parallel (and a Graph node with several inputs) merges its branches' outputs.
enum class Merge {
  /// Stacked along the first dimension: features of vectors ((a) + (b) → (a + b)), channels
  /// of images ((c₁, h, w) + (c₂, h, w) → (c₁ + c₂, h, w)). In the column layout both are
  /// the rows of one branch after the other's.
  concat,
  /// Summed entry by entry (the shapes must be equal).
  add,
  /// Multiplied entry by entry (gating; the shapes must be equal).
  multiply,
  /// The first minus the others, entry by entry (the shapes must be equal).
  subtract,
};

/// The name of a merge ("concat", "add", "multiply", "subtract").
const char* merge_name(Merge merge) noexcept;

/// The output shape of merging outputs of the given shapes; throws ShapeError naming the
/// branches (`names`) whose shapes do not fit.
Shape merged_shape(Merge merge, const std::vector<Shape>& shapes,
                   const std::vector<std::string>& names);

/// Branches that each receive the same input, their outputs merged:
///   forward:  y = merge(b₁(x), …, bₙ(x))
///   backward: dyᵢ = the part of dy (concat), dy (add), dy ⊙ Πⱼ≠ᵢ bⱼ (multiply),
///             ±dy (subtract); dx = Σᵢ dxᵢ
/// Branches are named like a network's children (dense1, network1, or named(...)).
class Parallel : public CombinatorImpl<Parallel, ChildrenCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "parallel";
  /// Branches whose outputs are concatenated.
  Parallel(std::initializer_list<AnyLayer> branches);
  /// Branches whose outputs are merged by `merge`.
  explicit Parallel(std::vector<AnyLayer> branches, Merge merge = Merge::concat);

  /// The merged shape of the branches' outputs.
  Shape output_shape(const Shape& input) const override;
  /// One part per branch, each receiving the input.
  std::vector<Part> parts(const Shape& input) const override;
  /// How the outputs are merged.
  Merge merge() const noexcept { return merge_; }
  /// The branches.
  const std::vector<Child>& children() const noexcept { return children_; }

  /// y = merge of the branches' outputs (see CombinatorImpl).
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const LayerCall<T>& call, ChildrenCache<T>& cache, ForwardResult<T>& out) const;
  /// Each branch's dy from the merge; dx = Σ branch dx (see CombinatorImpl).
  template <class T>
  void backward_t(const Tree<T>& params, const ChildrenCache<T>& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const;
  /// y = merge of the branches' outputs (see CombinatorImpl).
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const LayerCall<T>& call, arma::Mat<T>& y) const;

 private:
  std::vector<Child> children_;
  Merge merge_;
};

namespace detail {
// y = merge(inputs) (each (nᵢ × batch)), y already of the merged size.
template <class T>
void merge_into(Merge merge, const std::vector<const arma::Mat<T>*>& inputs, arma::Mat<T>& y);
// The gradient reaching input i of a merge, given dy of the merged output: for concat its
// rows of dy, for add dy itself (returned without a copy), for multiply dy ⊙ Πⱼ≠ᵢ inputⱼ,
// for subtract dy (i = 0) or −dy; `scratch` holds what must be computed.
template <class T>
const arma::Mat<T>& merge_gradient(Merge merge, const std::vector<const arma::Mat<T>*>& inputs,
                                   std::size_t i, const arma::Mat<T>& dy, arma::Mat<T>& scratch);
}  // namespace detail

extern template class LayerImpl<Parallel, ChildrenCache>;

}  // namespace layercache
