// The MPI-free part of training across processes: the check every phase ends with (an error
// on one rank thrown on all), broadcasts of trees and runs, and the ranks' shares of a batch.
#include "layercache/distributed.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "layercache/train_state.hpp"
#include "gradient_exchange.hpp"

namespace layercache {
namespace {

// The kinds of error check_all carries from one rank to the others.
enum class ErrorKind : std::int64_t { other, error, shape, cache, config, data, numeric, io };

ErrorKind kind_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const ShapeError&) {
    return ErrorKind::shape;
  } catch (const CacheError&) {
    return ErrorKind::cache;
  } catch (const ConfigError&) {
    return ErrorKind::config;
  } catch (const DataError&) {
    return ErrorKind::data;
  } catch (const NumericError&) {
    return ErrorKind::numeric;
  } catch (const IoError&) {
    return ErrorKind::io;
  } catch (const Error&) {
    return ErrorKind::error;
  } catch (...) {
    return ErrorKind::other;
  }
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

[[noreturn]] void throw_as(ErrorKind kind, std::string message) {
  switch (kind) {
    case ErrorKind::shape: throw ShapeError(std::move(message));
    case ErrorKind::cache: throw CacheError(std::move(message));
    case ErrorKind::config: throw ConfigError(std::move(message));
    case ErrorKind::data: throw DataError(std::move(message));
    case ErrorKind::numeric: throw NumericError(std::move(message));
    case ErrorKind::io: throw IoError(std::move(message));
    default: throw Error(std::move(message));
  }
}

// FNV-1a over the paths and leaf shapes of a tree: equal on two ranks when their trees have
// the same structure (up to a 64-bit collision).
template <class T>
std::uint64_t structure_hash(const Tree<T>& tree) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  tree.for_each([&](const std::string& path, const arma::Mat<T>& m) {
    const std::uint64_t shape[2] = {m.n_rows, m.n_cols};
    mix(path.data(), path.size() + 1);
    mix(shape, sizeof shape);
  });
  return h;
}

}  // namespace

void sum_across(Collective& group, double* data, std::size_t n) {
  group.start_sum(data, n);
  group.wait();
}

namespace detail {

void check_all(Collective& group, std::exception_ptr outcome, double* sums, std::size_t n,
               std::vector<double>& scratch) {
  const std::size_t ranks = group.size(), rank = group.rank();
  scratch.assign(ranks + n, 0.0);  // allocates only when the group or n grows
  if (outcome) scratch[rank] = 1;
  for (std::size_t i = 0; i < n; ++i) scratch[ranks + i] = sums[i];
  sum_across(group, scratch.data(), scratch.size());
  std::size_t failed = 0, first = ranks;
  for (std::size_t r = 0; r < ranks; ++r)
    if (scratch[r] != 0) {
      ++failed;
      if (first == ranks) first = r;
    }
  if (failed == 0) {
    for (std::size_t i = 0; i < n; ++i) sums[i] = scratch[ranks + i];
    return;
  }
  // The lowest failing rank tells the others what went wrong: its error's kind and message.
  std::int64_t header[2] = {0, 0};
  std::string message;
  if (rank == first) {
    message = message_of(outcome);
    header[0] = static_cast<std::int64_t>(kind_of(outcome));
    header[1] = static_cast<std::int64_t>(message.size());
  }
  group.broadcast(header, sizeof header, first);
  message.resize(static_cast<std::size_t>(header[1]));
  if (!message.empty()) group.broadcast(message.data(), message.size(), first);
  std::string text = "rank " + std::to_string(first) + " of " + std::to_string(ranks) + ": " + message;
  if (failed > 1)
    text += " (and " + std::to_string(failed - 1) + " other rank" + (failed > 2 ? "s" : "") +
            " failed)";
  throw_as(static_cast<ErrorKind>(header[0]), std::move(text));
}

}  // namespace detail

void check_all(Collective& group, std::exception_ptr outcome, double* sums, std::size_t n) {
  std::vector<double> scratch;
  detail::check_all(group, std::move(outcome), sums, n, scratch);
}

template <class T>
void broadcast(Collective& group, Tree<T>& tree, std::size_t root) {
  std::uint64_t theirs = structure_hash(tree);
  const std::uint64_t mine = theirs;
  group.broadcast(&theirs, sizeof theirs, root);
  std::exception_ptr outcome;
  if (theirs != mine)
    outcome = std::make_exception_ptr(ConfigError(
        "the tree to broadcast differs in paths or shapes from rank " + std::to_string(root) +
        "'s (were both made by the same network, optimizer and run?)"));
  check_all(group, outcome);
  tree.for_each([&](const std::string&, arma::Mat<T>& m) {
    if (m.n_elem) group.broadcast(m.memptr(), m.n_elem * sizeof(T), root);
  });
}

template <class T>
void broadcast(Collective& group, TrainState<T>& run, std::size_t root) {
  Tree<T> tree = run.tree();
  broadcast(group, tree, root);
  if (group.rank() == root) return;
  TrainState<T> copy = TrainState<T>::from_tree(tree);
  run.params = std::move(copy.params);
  run.state = std::move(copy.state);
  run.opt = std::move(copy.opt);
  run.rng = copy.rng;
  run.step = copy.step;
  run.epoch = copy.epoch;
  run.history = std::move(copy.history);
}

BatchRange rank_share(std::size_t n, const Collective* group) {
  if (!group) return {0, n};
  const std::size_t ranks = group->size(), rank = group->rank();
  // In 128 bits: n · (rank + 1) may pass 64 bits for a huge n and many ranks.
  const auto at = [&](std::size_t r) {
    return static_cast<std::size_t>(static_cast<unsigned __int128>(n) * r / ranks);
  };
  return {at(rank), at(rank + 1)};
}

BatchRange rank_share(const BatchRange& range, const Collective* group) {
  const BatchRange share = rank_share(range.size(), group);
  return {range.begin + share.begin, range.begin + share.end};
}

template void broadcast(Collective&, Tree<float>&, std::size_t);
template void broadcast(Collective&, Tree<double>&, std::size_t);
template void broadcast(Collective&, TrainState<float>&, std::size_t);
template void broadcast(Collective&, TrainState<double>&, std::size_t);

}  // namespace layercache
