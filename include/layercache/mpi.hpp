// layercache-mpi: training across processes and machines over MPI (docs/distributed.md).
// An optional library beside layercache (Meson option `mpi`; pkg-config `layercache-mpi`),
// built on Debian's OpenMPI; the core library never needs MPI. It gives the core's
// Collective interface (layercache/distributed.hpp) an MPI implementation, which fit,
// evaluate and train_step take as their group:
//
//   int main(int argc, char** argv) {
//     layercache::mpi::Environment mpi(argc, argv);  // MPI_Init ... MPI_Finalize
//     layercache::mpi::ProcessGroup group;           // every process of the job
//     ...
//     fit(net, run, opt, loss, train, {.batch_size = 64, .group = &group});
//   }
//
//   mpirun -np 4 ./train
//
// This header does not include <mpi.h>: a communicator is passed as the MPI_Comm value it is.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

#include "layercache/distributed.hpp"

namespace layercache::mpi {

/// MPI for the lifetime of the object: initializes it (MPI_Init_thread; the library calls
/// MPI from the thread that made the group only) unless the program already did, and
/// finalizes it at destruction if it initialized it. Make one at the start of main, before
/// any ProcessGroup.
class Environment {
 public:
  /// Initializes MPI with the program's arguments (either may be null).
  Environment(int* argc, char*** argv);
  /// Initializes MPI with main's arguments.
  Environment(int& argc, char**& argv) : Environment(&argc, &argv) {}
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  /// Finalizes MPI if this object initialized it.
  ~Environment();

 private:
  bool finalize_ = false;
};

/// A group of processes training together over MPI: a Collective on a private duplicate of
/// an MPI communicator (its messages never mix with the program's own), MPI_COMM_WORLD by
/// default. Sums are MPI_Iallreduce calls (MPI_SUM), one in flight at a time (a new one
/// starts when the previous has finished), progressed whenever the group is called;
/// broadcasts are MPI_Bcast. Use it from the thread that made it.
class ProcessGroup final : public Collective {
 public:
  /// Every process of the job (a duplicate of MPI_COMM_WORLD). Needs MPI initialized
  /// (Environment); throws ConfigError otherwise.
  ProcessGroup();
  /// The processes of the communicator `comm`, an MPI_Comm passed as is
  /// (ProcessGroup group(my_comm)); the group works on a duplicate of it.
  template <class Comm, class = std::enable_if_t<std::is_pointer_v<Comm> || std::is_integral_v<Comm>>>
  explicit ProcessGroup(Comm comm) : ProcessGroup(static_cast<const void*>(&comm), sizeof(Comm)) {}
  /// Frees the duplicate communicator (waits for the sums in flight first).
  ~ProcessGroup() override;

  std::size_t rank() const noexcept override;
  std::size_t size() const noexcept override;
  void broadcast(void* data, std::size_t bytes, std::size_t root) override;
  void start_sum(float* data, std::size_t n) override;
  void start_sum(double* data, std::size_t n) override;
  void wait() override;

 private:
  struct State;
  ProcessGroup(const void* comm, std::size_t comm_bytes);
  std::unique_ptr<State> state_;
};

}  // namespace layercache::mpi
