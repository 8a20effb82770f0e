// The mistakes fit() flags: an activation applied twice at the output, and a loss that
// explodes in the first steps.
#include "warnings.hpp"

#include <cmath>
#include <sstream>

namespace layercache::detail {
namespace {

// The layer that makes the network's output: the last child of a Network, recursively (the
// output of other combinators is a merge of their children, not one child's output).
const Layer* output_layer(const Layer& layer, const Shape& input, std::string& path) {
  const Layer* at = &layer;
  Shape in = input;
  while (std::string(at->kind()) == "network") {
    const auto d = at->declaration(in);
    if (d->parts.empty()) break;
    const Part& last = d->parts.back();
    path += (path.empty() ? "" : "/") + last.name;
    at = last.layer;
    in = last.input;
  }
  return at;
}

}  // namespace

std::optional<std::string> activation_applied_twice(const Layer& network, const Shape& input,
                                                    const Loss& loss) {
  struct Pair {
    const char* layer;
    const char* loss;
    const char* instead;
  };
  static constexpr Pair pairs[] = {
      {"softmax", "softmax_cross_entropy", "Remove the Softmax layer (or end in LogSoftmax)"},
      {"sigmoid", "binary_cross_entropy_with_logits", "Remove the Sigmoid layer"},
  };
  std::string path;
  const Layer* last = output_layer(network, input, path);
  for (const Pair& p : pairs) {
    if (std::string(last->kind()) != p.layer || loss.name() != p.loss) continue;
    std::ostringstream os;
    os << "the network ends in " << p.layer << " (" << (path.empty() ? "the network" : path)
       << ") and the loss " << p.loss << " applies " << p.layer
       << " again: its gradients shrink and training stalls. " << p.instead
       << "; predictions then come from the loss's own " << p.layer << ".";
    return os.str();
  }
  return std::nullopt;
}

std::optional<std::string> LossExplosionWatch::step(double loss) {
  if (warned_ || steps_ >= window) return std::nullopt;
  ++steps_;
  if (std::isfinite(loss) && steps_ <= baseline) {
    baseline_sum_ += loss;
    return std::nullopt;
  }
  const std::size_t counted = std::min(steps_ - 1, baseline);
  const double start = counted ? baseline_sum_ / double(counted) : 0;
  if (std::isfinite(loss) && !(counted && loss > factor * start && loss > start + 1e-12))
    return std::nullopt;
  warned_ = true;
  std::ostringstream os;
  if (std::isfinite(loss))
    os << "the loss grew from " << start << " to " << loss << " within the first " << steps_
       << " steps: the learning rate is probably too large";
  else
    os << "the loss became " << loss << " at step " << steps_
       << ": the learning rate is probably too large (FitOptions::check_finite names the"
          " layer that makes the first non-finite value)";
  return os.str();
}

}  // namespace layercache::detail
