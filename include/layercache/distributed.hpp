// Data-parallel training across processes (docs/distributed.md): several processes, on one
// machine or many, train one model together, each on its share of every batch, as Horovod
// and PyTorch's DistributedDataParallel do.
//
// The core library knows a group of processes only through the Collective interface below:
// a handful of collective operations (broadcast, sums started and waited for). The optional
// library layercache-mpi implements it with MPI (layercache/mpi.hpp: mpi::ProcessGroup), so
// the core never needs MPI. Given a group, fit, evaluate and train_step do the rest:
//   - fit broadcasts the run (params, state, optimizer state, stream, counters) from rank 0;
//   - every epoch's order is shuffled from that shared stream, the batches are batch_size ×
//     ranks samples, and each rank trains on its share of each (the distributed sampler), so
//     N ranks at batch_size B see the batches one process sees at N·B;
//   - each step's gradients are summed across the ranks in buckets, a bucket's sum started
//     while backward still runs the layers before it, and weighted by the shares' sizes;
//   - the new state (running statistics) is averaged across the ranks after each step;
//   - metrics are summed across the ranks, progress printed by rank 0, checkpoints written by
//     rank 0;
//   - an error on one rank (bad data, NaN) stops every rank with that error, naming the rank.
//
//   mpi::Environment env(argc, argv);
//   mpi::ProcessGroup group;                         // MPI_COMM_WORLD
//   fit(net, run, opt, loss, train, {.batch_size = 64, .group = &group});
#pragma once

#include <cstddef>
#include <exception>

#include "layercache/data.hpp"
#include "layercache/tree.hpp"

namespace layercache {

template <class T>
struct TrainState;  // layercache/train_state.hpp

/// A group of processes that train one model together (ranks 0 .. size() − 1), as the
/// training functions see it: the collective operations data parallelism needs. Every rank
/// calls the same operations in the same order with the same sizes (that is what makes them
/// collective). layercache-mpi's mpi::ProcessGroup implements it with MPI; a test may
/// implement it with threads.
class Collective {
 public:
  Collective() = default;
  Collective(const Collective&) = delete;
  Collective& operator=(const Collective&) = delete;
  virtual ~Collective() = default;

  /// This process's number in the group, from 0; rank 0 is the root (it broadcasts the
  /// run at the start, prints progress and writes checkpoints).
  virtual std::size_t rank() const noexcept = 0;
  /// Number of processes in the group.
  virtual std::size_t size() const noexcept = 0;
  /// Copies `bytes` bytes at `data` on rank `root` to `data` on every other rank; returns
  /// when this rank's copy is complete.
  virtual void broadcast(void* data, std::size_t bytes, std::size_t root) = 0;
  /// Starts replacing the n values at `data` by their element-wise sum over the ranks. The
  /// buffer must not be touched until wait() returns; every rank gets the same sums, bit for
  /// bit. Several sums may be in flight at once.
  virtual void start_sum(float* data, std::size_t n) = 0;
  /// start_sum for doubles.
  virtual void start_sum(double* data, std::size_t n) = 0;
  /// Returns when every sum started on this rank has finished.
  virtual void wait() = 0;
};

/// The element-wise sum over the ranks of the n doubles at `data`, in place (start_sum
/// and wait).
void sum_across(Collective& group, double* data, std::size_t n);

/// The collective check that ends every phase of distributed training: every rank calls it
/// with its own outcome (null when it succeeded, the exception it caught otherwise) and
/// `n` numbers to sum across the ranks (metrics, flags; may be none). When every rank
/// succeeded, `sums` holds the sums. When a rank failed, every rank throws the error of
/// the lowest failing rank, of the same type (DataError stays DataError; an exception that
/// is not a layercache::Error becomes an Error), with the message
/// "rank R of N: <its message>" (and how many other ranks failed, if any): no rank is left
/// waiting for another in a collective.
void check_all(Collective& group, std::exception_ptr outcome, double* sums = nullptr,
               std::size_t n = 0);

/// Copies every leaf of `tree` on rank `root` to the same leaf on the other ranks. The
/// ranks' trees must have the same paths and shapes; a rank whose tree differs from the
/// root's makes every rank throw ConfigError naming that rank (nothing is copied then).
template <class T>
void broadcast(Collective& group, Tree<T>& tree, std::size_t root = 0);

/// Copies the whole run on rank `root` (params, state, optimizer state, stream, counters,
/// history: TrainState::tree) to the other ranks, keeping each rank's workspace; fit does it
/// before its first step. A rank whose run differs in structure makes every rank throw
/// ConfigError naming it.
template <class T>
void broadcast(Collective& group, TrainState<T>& run, std::size_t root = 0);

/// The rank's share of `n` items dealt out to the ranks in order: items
/// [n·rank/ranks, n·(rank+1)/ranks). The shares are disjoint, cover the n items, and differ
/// in size by at most one. Without a group (null), all of them.
BatchRange rank_share(std::size_t n, const Collective* group);

/// The rank's share of the samples of `range` (a batch of the whole group), as rank_share;
/// the distributed sampler of fit and train_step.
BatchRange rank_share(const BatchRange& range, const Collective* group);

}  // namespace layercache
