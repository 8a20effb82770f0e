// Library-internal (not installed): copy_batch in two halves, so that the data-parallel
// training step can check and size a batch on the calling thread and let each shard copy
// its own samples on its own thread.
#pragma once

#include <cstddef>

#include "layercache/data.hpp"

namespace layercache::detail {

/// The checks of copy_batch (range inside `order`, one label or target per sample, every
/// index below data.size()), then sizes the buffers for the samples order[begin..end):
/// x_out, and labels_out or targets_out as the data has them, the other emptied. Copies
/// nothing. Throws before changing any buffer.
template <class T>
void prepare_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                   std::size_t end, arma::Mat<T>& x_out, arma::uvec& labels_out,
                   arma::Mat<T>& targets_out);

/// Copies the samples order[begin + first .. begin + last) into columns (entries) [first,
/// last) of the buffers prepare_batch sized for this batch. Checks nothing; copies into
/// disjoint column ranges may run on different threads at once.
template <class T>
void fill_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                std::size_t first, std::size_t last, arma::Mat<T>& x_out,
                arma::uvec& labels_out, arma::Mat<T>& targets_out) noexcept;

}  // namespace layercache::detail
