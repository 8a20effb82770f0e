// The standard initializers; all draws come from the caller's Rng.
#include "layercache/initializers.hpp"

#include <cmath>
#include <string>

#include "format_number.hpp"

namespace layercache {
namespace {

void fill_uniform(arma::mat& out, double limit, Rng& rng) {
  for (double& v : out) v = rng.uniform(-limit, limit);
}

void fill_normal(arma::mat& out, double stddev, Rng& rng) {
  for (double& v : out) v = rng.normal(0.0, stddev);
}

// Throws ConfigError naming the initializer unless `gain` is finite and positive.
double checked_gain(const char* name, double gain) {
  if (!(gain > 0) || !std::isfinite(gain))
    throw ConfigError(std::string(name) + " needs a finite gain > 0, got " +
                      detail::format_number(gain));
  return gain;
}

std::size_t fan_in_of(const TensorSpec& spec) { return spec.fan_in ? spec.fan_in : spec.cols; }
std::size_t fan_out_of(const TensorSpec& spec) { return spec.fan_out ? spec.fan_out : spec.rows; }

}  // namespace

Initializer::Initializer(std::string name, Fill fill) : name_(std::move(name)), fill_(std::move(fill)) {
  if (!fill_) throw ConfigError("initializer '" + name_ + "' has no fill function");
}

Initializer xavier_uniform(double gain) {
  checked_gain("xavier_uniform", gain);
  return {"xavier_uniform", [gain](arma::mat& out, const TensorSpec& s, Rng& rng) {
            fill_uniform(out, gain * std::sqrt(6.0 / double(fan_in_of(s) + fan_out_of(s))), rng);
          }};
}

Initializer xavier_normal(double gain) {
  checked_gain("xavier_normal", gain);
  return {"xavier_normal", [gain](arma::mat& out, const TensorSpec& s, Rng& rng) {
            fill_normal(out, gain * std::sqrt(2.0 / double(fan_in_of(s) + fan_out_of(s))), rng);
          }};
}

Initializer he_uniform() {
  return {"he_uniform", [](arma::mat& out, const TensorSpec& s, Rng& rng) {
            fill_uniform(out, std::sqrt(6.0 / double(fan_in_of(s))), rng);
          }};
}

Initializer he_normal() {
  return {"he_normal", [](arma::mat& out, const TensorSpec& s, Rng& rng) {
            fill_normal(out, std::sqrt(2.0 / double(fan_in_of(s))), rng);
          }};
}

Initializer lecun_normal() {
  return {"lecun_normal", [](arma::mat& out, const TensorSpec& s, Rng& rng) {
            fill_normal(out, std::sqrt(1.0 / double(fan_in_of(s))), rng);
          }};
}

Initializer lecun_uniform() {
  return {"lecun_uniform", [](arma::mat& out, const TensorSpec& s, Rng& rng) {
            fill_uniform(out, std::sqrt(3.0 / double(fan_in_of(s))), rng);
          }};
}

Initializer zeros() {
  return {"zeros", [](arma::mat& out, const TensorSpec&, Rng&) { out.zeros(); }};
}

Initializer constant(double value) {
  if (!std::isfinite(value))
    throw ConfigError("constant needs a finite value, got " + detail::format_number(value));
  return {"constant", [value](arma::mat& out, const TensorSpec&, Rng&) { out.fill(value); }};
}

Initializer orthogonal(double gain) {
  checked_gain("orthogonal", gain);
  return {"orthogonal", [gain](arma::mat& out, const TensorSpec&, Rng& rng) {
            // QR of a tall Gaussian matrix; multiplying Q's columns by sign(diag(R)) makes
            // the result uniformly distributed over orthogonal matrices.
            const bool wide = out.n_rows < out.n_cols;
            arma::mat a(wide ? out.n_cols : out.n_rows, wide ? out.n_rows : out.n_cols);
            fill_normal(a, 1.0, rng);
            arma::mat q, r;
            if (!arma::qr_econ(q, r, a)) throw NumericError("QR decomposition failed in orthogonal()");
            for (arma::uword j = 0; j < q.n_cols; ++j)
              if (r(j, j) < 0) q.col(j) *= -1.0;
            out = gain * (wide ? arma::mat(q.t()) : q);
          }};
}

std::vector<std::string> Initializer::names() {
  return {"xavier_uniform", "xavier_normal", "glorot_uniform", "glorot_normal", "he_uniform",
          "he_normal",      "kaiming_uniform", "kaiming_normal", "lecun_normal", "lecun_uniform",
          "zeros",          "orthogonal"};
}

Initializer Initializer::by_name(std::string_view name) {
  if (name == "xavier_uniform" || name == "glorot_uniform") return xavier_uniform();
  if (name == "xavier_normal" || name == "glorot_normal") return xavier_normal();
  if (name == "he_uniform" || name == "kaiming_uniform") return he_uniform();
  if (name == "he_normal" || name == "kaiming_normal") return he_normal();
  if (name == "lecun_normal") return lecun_normal();
  if (name == "lecun_uniform") return lecun_uniform();
  if (name == "zeros") return zeros();
  if (name == "orthogonal") return orthogonal();
  std::string valid;
  for (const auto& n : names()) valid += (valid.empty() ? "" : ", ") + n;
  throw ConfigError("unknown initializer '" + std::string(name) + "'; valid names: " + valid);
}

}  // namespace layercache
