// The Collective interface over MPI: a duplicate communicator, MPI_Bcast for broadcasts and
// MPI_Iallreduce for sums, progressed by MPI_Testall whenever the group is called again (an
// MPI library without a progress thread moves a nonblocking collective only inside MPI calls).
#include "layercache/mpi.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

namespace layercache::mpi {
namespace {

// Throws ConfigError naming the MPI call unless it returned MPI_SUCCESS (with MPI's default
// handler, MPI_ERRORS_ARE_FATAL, a failing call ends the job before returning).
void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw ConfigError(std::string(call) + " failed: " + std::string(text, std::size_t(length)));
}

// The largest count one MPI call takes (an int); larger buffers go in pieces.
constexpr std::size_t max_count = INT_MAX;

}  // namespace

Environment::Environment(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  finalize_ = true;
}

Environment::~Environment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalize_ && !finalized) MPI_Finalize();
}

struct ProcessGroup::State {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  std::vector<MPI_Request> requests;  // sums in flight

  // Starts the sum of n values at `data` once the sum in flight, if any, has finished, and
  // moves it on. One sum at a time: OpenMPI 4.1's nonblocking sums slow down by an order of
  // magnitude when several large ones are in flight together, or one is larger than a few
  // MiB (docs/distributed.md, "Measurements"), which buckets of at most 1 MiB, one after
  // another, avoid.
  void start(void* data, std::size_t n, std::size_t value_bytes, MPI_Datatype type) {
    finish();
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < n;) {
      const std::size_t count = std::min(n - done, max_count);
      MPI_Request request;
      check(MPI_Iallreduce(MPI_IN_PLACE, p + done * value_bytes, int(count), type, MPI_SUM, comm,
                           &request),
            "MPI_Iallreduce");
      requests.push_back(request);
      done += count;
      if (done < n) finish();
    }
    int all_done = 0;
    check(MPI_Testall(int(requests.size()), requests.data(), &all_done, MPI_STATUSES_IGNORE),
          "MPI_Testall");
    if (all_done) requests.clear();
  }

  // Waits for the sums in flight.
  void finish() {
    if (requests.empty()) return;
    check(MPI_Waitall(int(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    requests.clear();
  }
};

ProcessGroup::ProcessGroup() : ProcessGroup(nullptr, 0) {}

ProcessGroup::ProcessGroup(const void* comm, std::size_t comm_bytes) : state_(new State) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    throw ConfigError("a ProcessGroup needs MPI initialized first (make a layercache::mpi::Environment at the start of main)");
  MPI_Comm source = MPI_COMM_WORLD;
  if (comm_bytes != 0) {
    if (comm_bytes != sizeof(MPI_Comm))
      throw ConfigError("ProcessGroup was given a communicator of " + std::to_string(comm_bytes) +
                        " bytes; an MPI_Comm has " + std::to_string(sizeof(MPI_Comm)));
    std::memcpy(&source, comm, sizeof(MPI_Comm));
  }
  check(MPI_Comm_dup(source, &state_->comm), "MPI_Comm_dup");
  MPI_Comm_rank(state_->comm, &state_->rank);
  MPI_Comm_size(state_->comm, &state_->size);
}

ProcessGroup::~ProcessGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (!state_->requests.empty())
    MPI_Waitall(int(state_->requests.size()), state_->requests.data(), MPI_STATUSES_IGNORE);
  MPI_Comm_free(&state_->comm);
}

std::size_t ProcessGroup::rank() const noexcept { return std::size_t(state_->rank); }

std::size_t ProcessGroup::size() const noexcept { return std::size_t(state_->size); }

void ProcessGroup::broadcast(void* data, std::size_t bytes, std::size_t root) {
  wait();
  auto* p = static_cast<char*>(data);
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(bytes - done, max_count);
    check(MPI_Bcast(p + done, int(n), MPI_BYTE, int(root), state_->comm), "MPI_Bcast");
    done += n;
  }
}

void ProcessGroup::start_sum(float* data, std::size_t n) {
  state_->start(data, n, sizeof(float), MPI_FLOAT);
}

void ProcessGroup::start_sum(double* data, std::size_t n) {
  state_->start(data, n, sizeof(double), MPI_DOUBLE);
}

void ProcessGroup::wait() { state_->finish(); }

}  // namespace layercache::mpi
