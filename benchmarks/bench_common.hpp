// Shared benchmark plumbing: Fashion-MNIST IDX reader, command-line flags, timing statistics, JSON output.
//
// Deliberately free of Armadillo and libtorch so that every benchmark (the torch twins, the
// layercache benchmarks, the GEMM roofline) reads the same bytes, parses the same flags and
// prints the same JSON fields; differences in the numbers then come from the libraries alone.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lcbench {

// ---------------------------------------------------------------------------------------------
// Data

inline constexpr const char* default_data_dir = "/usr/share/datasets/fashion-mnist";

// One split of Fashion-MNIST. Pixels are float32 scaled to [0, 1], sample after sample
// (n × 784 row-major, which is the same memory as a column-major 784 × n matrix: one sample per
// column, the layercache layout). Within a sample the 28 × 28 image is stored as in the file,
// row after row.
struct Dataset {
  std::size_t n = 0;       // number of samples
  std::size_t rows = 0;    // 28
  std::size_t cols = 0;    // 28
  std::vector<float> pixels;          // n * rows * cols
  std::vector<std::uint8_t> labels;   // n, each in 0..9
  std::size_t features() const { return rows * cols; }
};

// Reads one gzip-compressed IDX file pair (e.g. "train" or "t10k") with zlib.
// Throws std::runtime_error naming the file on any malformed input.
Dataset load_fashion_mnist(const std::string& dir, const std::string& split);

// ---------------------------------------------------------------------------------------------
// Command line

// Every benchmark accepts the same flags; each one uses the subset that applies to it.
struct Options {
  std::size_t batch = 128;
  int threads = 1;
  int epochs = 3;             // timed epochs (median is reported)
  int warmup = 1;             // untimed epochs before timing
  std::size_t max_samples = 0;  // 0: full epoch; else time ceil(max_samples / batch) batches and extrapolate
  std::string mode = "train";   // "train" or "infer"
  std::uint64_t seed = 42;
  int repeats = 0;            // generic repeat count (infer passes, GEMM repeats); 0: benchmark default
  std::string data_dir = default_data_dir;
  // How layercache (and the roofline) use several threads: "data" splits each batch across
  // them with a single-threaded BLAS each (train_step's data parallelism), "blas" runs one
  // pass with a threaded BLAS. The libtorch twins ignore it.
  std::string strategy = "data";
  // gemm_roofline: KiB each thread writes to a scratch buffer of its own before every timed
  // product, evicting the operands from its L2 cache (0: operands stay warm).
  std::size_t evict_kb = 0;
};

// Parses --batch N --threads N --epochs N --warmup N --max-samples N --mode M --seed N
// --repeats N --data-dir D --strategy S --evict-kb N (also the --flag=value form). Prints usage and exits on --help or
// on an unknown flag, so a typo never silently benchmarks the wrong configuration.
Options parse_options(int argc, char** argv, const char* program, const char* extra_help = "");

// ---------------------------------------------------------------------------------------------
// Timing

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU time consumed by this process (all threads), in seconds.
double process_cpu_seconds();

// Busy time of the whole machine (all processes, all cores; /proc/stat user+nice+system+irq+
// softirq+steal), in seconds; -1 when unavailable. The benchmarks share their machine with
// whatever else runs, so they report how much of it other processes used while timing:
//   other_busy_frac = (Δ machine busy − Δ own CPU) / (Δ wall × cores).
// Near 0 means the numbers are clean; anything above a few percent means they are not.
double machine_busy_seconds();
int online_cores();

// Tracks wall, own-CPU and other-process time over a region; several regions accumulate.
class Contention {
 public:
  void start();
  void stop();
  double other_busy_frac() const;  // -1 when /proc/stat is unreadable
  double own_cpu_seconds() const { return own_; }

 private:
  Clock::time_point t0_{};
  double cpu0_ = 0, busy0_ = 0;
  double wall_ = 0, own_ = 0, busy_ = 0;
  bool valid_ = true;
};

// 1-minute load average (/proc/loadavg), -1 when unavailable.
double loadavg_1m();

double median(std::vector<double> v);
double minimum(const std::vector<double>& v);

// Number of mini-batches that cover `samples_per_epoch` (the last one may be partial), or, when
// max_samples > 0, the smaller number of batches that cover max_samples.
std::size_t batches_to_time(std::size_t samples_per_epoch, std::size_t batch, std::size_t max_samples);

// Deterministic Fisher–Yates permutation of 0..n-1 (splitmix64 stream), so every implementation
// can visit samples in the same order for a given seed.
std::vector<std::int64_t> permutation(std::size_t n, std::uint64_t seed);

// ---------------------------------------------------------------------------------------------
// JSON: one flat object per run, printed on a single line to stdout.

class JsonLine {
 public:
  JsonLine& str(const std::string& key, const std::string& value);
  JsonLine& num(const std::string& key, double value);
  JsonLine& integer(const std::string& key, long long value);
  JsonLine& boolean(const std::string& key, bool value);
  JsonLine& array(const std::string& key, const std::vector<double>& values);
  // A nested object of numbers, e.g. per-GEMM rates; keys keep insertion order.
  JsonLine& object(const std::string& key, const std::vector<std::pair<std::string, double>>& values);
  std::string text() const;  // "{...}"
  void print() const;        // text() + '\n' to stdout, flushed

 private:
  void key(const std::string& k);
  std::string body_;
};

std::string json_escape(const std::string& s);

// Adds the timing fields every training and inference benchmark reports, layercache's and
// the twins' alike: samples_per_epoch, samples_timed, extrapolated, epoch_s (median of
// epoch_s), epochs_s, samples_per_s, epoch_cpu_s (median), other_busy_frac and
// loadavg_1m_start.
JsonLine& add_timing(JsonLine& j, std::size_t samples_per_epoch, std::size_t samples_timed,
                     const std::vector<double>& epoch_s, const std::vector<double>& epoch_cpu_s,
                     const Contention& contention, double load_start);

}  // namespace lcbench
