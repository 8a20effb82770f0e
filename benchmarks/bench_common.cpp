// Shared benchmark plumbing: Fashion-MNIST IDX reader, flags, statistics and JSON (see bench_common.hpp).
#include "bench_common.hpp"

#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace lcbench {

// ---------------------------------------------------------------------------------------------
// IDX reader

namespace {

// Owns a gzFile so every early throw still closes it.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)), f_(gzopen(path_.c_str(), "rb")) {
    if (!f_) throw std::runtime_error("cannot open " + path_);
    gzbuffer(f_, 1 << 20);  // fewer, larger reads: the training images are 26 MB compressed
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() { gzclose(f_); }

  void read(void* dst, std::size_t n) {
    auto* p = static_cast<unsigned char*>(dst);
    while (n > 0) {
      // gzread takes an unsigned count; chunk to stay far from its INT_MAX limit.
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
      const int got = gzread(f_, p, chunk);
      if (got <= 0) {
        int errnum = 0;
        const char* msg = gzerror(f_, &errnum);
        throw std::runtime_error(path_ + ": truncated or corrupt (" + (errnum ? msg : "unexpected end of file") + ")");
      }
      p += got;
      n -= static_cast<std::size_t>(got);
    }
  }

  std::uint32_t read_be32() {
    unsigned char b[4];
    read(b, 4);
    return (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) | std::uint32_t(b[3]);
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile f_;
};

// IDX magic: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
void expect_magic(GzReader& r, std::uint32_t dims) {
  const std::uint32_t magic = r.read_be32();
  const std::uint32_t want = 0x00000800u | dims;
  if (magic != want) {
    char buf[96];
    std::snprintf(buf, sizeof buf, ": bad IDX magic 0x%08x, expected 0x%08x", magic, want);
    throw std::runtime_error(r.path() + buf);
  }
}

}  // namespace

Dataset load_fashion_mnist(const std::string& dir, const std::string& split) {
  Dataset d;

  GzReader img(dir + "/" + split + "-images-idx3-ubyte.gz");
  expect_magic(img, 3);
  d.n = img.read_be32();
  d.rows = img.read_be32();
  d.cols = img.read_be32();
  if (d.n == 0 || d.rows == 0 || d.cols == 0 || d.rows > 4096 || d.cols > 4096 || d.n > 100'000'000)
    throw std::runtime_error(img.path() + ": implausible dimensions");
  std::vector<std::uint8_t> raw(d.n * d.rows * d.cols);
  img.read(raw.data(), raw.size());
  d.pixels.resize(raw.size());
  // Scale to [0, 1]; no mean/std normalisation, so every implementation sees exactly these values.
  for (std::size_t i = 0; i < raw.size(); ++i) d.pixels[i] = static_cast<float>(raw[i]) * (1.0f / 255.0f);

  GzReader lab(dir + "/" + split + "-labels-idx1-ubyte.gz");
  expect_magic(lab, 1);
  const std::size_t n_labels = lab.read_be32();
  if (n_labels != d.n)
    throw std::runtime_error(lab.path() + ": " + std::to_string(n_labels) + " labels for " + std::to_string(d.n) + " images");
  d.labels.resize(n_labels);
  lab.read(d.labels.data(), n_labels);
  for (std::size_t i = 0; i < n_labels; ++i)
    if (d.labels[i] > 9) throw std::runtime_error(lab.path() + ": label " + std::to_string(d.labels[i]) + " out of range 0..9 at index " + std::to_string(i));
  return d;
}

// ---------------------------------------------------------------------------------------------
// Flags

namespace {

[[noreturn]] void usage(const char* program, const char* extra_help, int code) {
  std::ostream& os = code == 0 ? std::cout : std::cerr;
  os << "usage: " << program << " [flags]\n"
     << "  --batch N        mini-batch size (default 128)\n"
     << "  --threads N      intra-op / BLAS threads (default 1)\n"
     << "  --epochs N       timed epochs or passes; the median is reported (default 3)\n"
     << "  --warmup N       untimed warm-up epochs or passes (default 1)\n"
     << "  --max-samples N  time only ceil(N/batch) batches per epoch and extrapolate (default 0 = full epoch)\n"
     << "  --mode M         train | infer (default train)\n"
     << "  --seed N         shuffling / initialisation seed (default 42)\n"
     << "  --repeats N      repeat count where a benchmark needs one (0 = its default)\n"
     << "  --data-dir D     Fashion-MNIST directory (default " << default_data_dir << ")\n"
     << "  --strategy S     threads split the batch (data, default), each layer's products (layers)\n"
     << "                   or the BLAS (blas)\n"
     << "  --evict-kb N     KiB written per thread before each timed product (gemm_roofline; default 0)\n"
     << extra_help;
  std::exit(code);
}

long long to_int(const std::string& flag, const std::string& v, long long lo) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo) {
    std::cerr << flag << ": expected an integer >= " << lo << ", got '" << v << "'\n";
    std::exit(2);
  }
  return x;
}

}  // namespace

Options parse_options(int argc, char** argv, const char* program, const char* extra_help) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (flag == "--help" || flag == "-h") usage(program, extra_help, 0);
    auto next = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) {
        std::cerr << flag << ": missing value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--batch") o.batch = static_cast<std::size_t>(to_int(flag, next(), 1));
    else if (flag == "--threads") o.threads = static_cast<int>(to_int(flag, next(), 1));
    else if (flag == "--epochs") o.epochs = static_cast<int>(to_int(flag, next(), 1));
    else if (flag == "--warmup") o.warmup = static_cast<int>(to_int(flag, next(), 0));
    else if (flag == "--max-samples") o.max_samples = static_cast<std::size_t>(to_int(flag, next(), 0));
    else if (flag == "--seed") o.seed = static_cast<std::uint64_t>(to_int(flag, next(), 0));
    else if (flag == "--repeats") o.repeats = static_cast<int>(to_int(flag, next(), 0));
    else if (flag == "--data-dir") o.data_dir = next();
    else if (flag == "--evict-kb") o.evict_kb = static_cast<std::size_t>(to_int(flag, next(), 0));
    else if (flag == "--strategy") {
      o.strategy = next();
      if (o.strategy != "data" && o.strategy != "blas" && o.strategy != "layers") {
        std::cerr << "--strategy: expected data, layers or blas, got '" << o.strategy << "'\n";
        std::exit(2);
      }
    } else if (flag == "--mode") {
      o.mode = next();
      if (o.mode != "train" && o.mode != "infer") {
        std::cerr << "--mode: expected train or infer, got '" << o.mode << "'\n";
        std::exit(2);
      }
    } else {
      std::cerr << program << ": unknown flag '" << argv[i] << "'\n";
      usage(program, extra_help, 2);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Statistics

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double machine_busy_seconds() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return -1;
  unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  const int got = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq, &softirq, &steal);
  std::fclose(f);
  if (got < 4) return -1;
  return double(user + nice + sys + irq + softirq + steal) / double(sysconf(_SC_CLK_TCK));
}

int online_cores() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

void Contention::start() {
  t0_ = Clock::now();
  cpu0_ = process_cpu_seconds();
  busy0_ = machine_busy_seconds();
}

void Contention::stop() {
  const double busy1 = machine_busy_seconds();
  wall_ += seconds_since(t0_);
  own_ += process_cpu_seconds() - cpu0_;
  if (busy0_ < 0 || busy1 < 0) valid_ = false;
  else busy_ += busy1 - busy0_;
}

double Contention::other_busy_frac() const {
  if (!valid_ || wall_ <= 0) return -1;
  // /proc/stat ticks at 100 Hz: clamp the small negative values its coarseness produces.
  return std::max(0.0, (busy_ - own_) / (wall_ * online_cores()));
}

double loadavg_1m() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return -1;
  double l = -1;
  if (std::fscanf(f, "%lf", &l) != 1) l = -1;
  std::fclose(f);
  return l;
}

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

double minimum(const std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  return *std::min_element(v.begin(), v.end());
}

std::size_t batches_to_time(std::size_t samples_per_epoch, std::size_t batch, std::size_t max_samples) {
  const std::size_t full = (samples_per_epoch + batch - 1) / batch;
  if (max_samples == 0) return full;
  return std::min(full, (max_samples + batch - 1) / batch);
}

std::vector<std::int64_t> permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::int64_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::int64_t>(i);
  std::uint64_t s = seed;
  auto next = [&s]() {  // splitmix64
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  for (std::size_t i = n; i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(next() % i);  // modulo bias is irrelevant here
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// JSON

std::string json_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

namespace {
// JSON has no NaN/Inf; null keeps the line parseable when a measurement is missing.
std::string number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}
}  // namespace

void JsonLine::key(const std::string& k) {
  if (!body_.empty()) body_ += ',';
  body_ += '"' + json_escape(k) + "\":";
}

JsonLine& JsonLine::str(const std::string& k, const std::string& v) {
  key(k);
  body_ += '"' + json_escape(v) + '"';
  return *this;
}

JsonLine& JsonLine::num(const std::string& k, double v) {
  key(k);
  body_ += number(v);
  return *this;
}

JsonLine& JsonLine::integer(const std::string& k, long long v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}

JsonLine& JsonLine::boolean(const std::string& k, bool v) {
  key(k);
  body_ += v ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::array(const std::string& k, const std::vector<double>& vs) {
  key(k);
  body_ += '[';
  for (std::size_t i = 0; i < vs.size(); ++i) {
    if (i) body_ += ',';
    body_ += number(vs[i]);
  }
  body_ += ']';
  return *this;
}

JsonLine& JsonLine::object(const std::string& k, const std::vector<std::pair<std::string, double>>& vs) {
  key(k);
  body_ += '{';
  for (std::size_t i = 0; i < vs.size(); ++i) {
    if (i) body_ += ',';
    body_ += '"';
    body_ += json_escape(vs[i].first);
    body_ += "\":";
    body_ += number(vs[i].second);
  }
  body_ += '}';
  return *this;
}

std::string JsonLine::text() const { return '{' + body_ + '}'; }

void JsonLine::print() const {
  std::cout << text() << '\n';
  std::cout.flush();
}

JsonLine& add_timing(JsonLine& j, std::size_t samples_per_epoch, std::size_t samples_timed,
                     const std::vector<double>& epoch_s, const std::vector<double>& epoch_cpu_s,
                     const Contention& contention, double load_start) {
  const double med = median(epoch_s);
  return j.integer("samples_per_epoch", static_cast<long long>(samples_per_epoch))
      .integer("samples_timed", static_cast<long long>(samples_timed))
      .boolean("extrapolated", samples_timed < samples_per_epoch)
      .num("epoch_s", med)
      .array("epochs_s", epoch_s)
      .num("samples_per_s", double(samples_per_epoch) / med)
      .num("epoch_cpu_s", median(epoch_cpu_s))
      .num("other_busy_frac", contention.other_busy_frac())
      .num("loadavg_1m_start", load_start);
}

}  // namespace lcbench
