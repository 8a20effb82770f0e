// summary(): walks a layer's declarations (its parts, recursively) beside the caches of one
// training forward, and prints a row per node.
#include "layercache/summary.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "layercache/initializers.hpp"
#include "layercache/rng.hpp"

namespace layercache {
namespace {

struct Row {
  std::string name;  // indented path segment
  std::string kind;
  std::string output;
  std::string params;
  std::string cache;
};

std::string pad(std::string s, std::size_t width) {
  s.resize(std::max(width, s.size()), ' ');
  return s;
}

class Walker {
 public:
  explicit Walker(bool with_cache) : with_cache_(with_cache) {}

  // Appends the rows of `layer` (path segment `name` at `depth`) and returns its parameter
  // count, its subtree's included.
  std::size_t walk(const Layer& layer, const Shape& in, const std::string& name, std::size_t depth,
                   const Cache* cache) {
    const auto d = layer.declaration(in);
    std::size_t own = 0;
    for (const auto& spec : d->params) own += spec.rows * spec.cols;
    const std::size_t at = rows_.size();
    rows_.push_back({std::string(2 * depth, ' ') + name, layer.kind(), d->output.str(), "",
                     cache ? std::to_string(cache->bytes()) : "-"});
    std::map<std::string, const Cache*> children;
    if (cache)
      cache->for_each_child([&](const std::string& n, const Cache& c) { children[n] = &c; });
    std::size_t total = own;
    for (const auto& p : d->parts) {
      const auto found = children.find(p.name);
      total += walk(*p.layer, p.input, p.name, depth + 1,
                    found == children.end() ? nullptr : found->second);
      if (found != children.end()) children.erase(found);
    }
    // Caches of children that are no part: uses of another part's layer (shared weights).
    for (const auto& [n, c] : children)
      rows_.push_back({std::string(2 * (depth + 1), ' ') + n, std::string(c->kind()) + " (shared)",
                       c->output_shape().str(), "0", std::to_string(c->bytes())});
    rows_[at].params = std::to_string(d->parts.empty() ? own : total);
    if (!d->parts.empty() && own > 0) rows_[at].params += " (" + std::to_string(own) + " own)";
    return total;
  }

  std::string table(std::size_t total, const Cache* root) const {
    std::size_t w_name = 5, w_kind = 4, w_out = 6, w_params = 6;
    for (const auto& r : rows_) {
      w_name = std::max(w_name, r.name.size());
      w_kind = std::max(w_kind, r.kind.size());
      w_out = std::max(w_out, r.output.size());
      w_params = std::max(w_params, r.params.size());
    }
    std::ostringstream os;
    auto line = [&](const Row& r) {
      os << pad(r.name, w_name + 2) << pad(r.kind, w_kind + 2) << pad(r.output, w_out + 2);
      if (with_cache_)
        os << pad(r.params, w_params + 2) << r.cache << "\n";
      else
        os << r.params << "\n";
    };
    line({"layer", "kind", "output", "params", "cache bytes"});
    for (const auto& r : rows_) line(r);
    os << "total parameters: " << total << "\n";
    if (with_cache_ && root) os << "cache bytes of one training step: " << root->bytes() << "\n";
    return os.str();
  }

 private:
  bool with_cache_;
  std::vector<Row> rows_;
};

}  // namespace

template <class T>
std::string summary(const Layer& layer, const Shape& input, const SummaryOptions& options) {
  layer.output_shape(input);  // throws for an input the layer rejects
  std::unique_ptr<Cache> cache;
  if (options.batch > 0) {
    Rng rng(options.seed);
    const Tree<T> params = layer.init<T>(input, xavier_uniform(), rng);
    const Tree<T> state = layer.init_state<T>(input);
    arma::Mat<T> x(input.size(), options.batch);
    for (T& v : x) v = T(rng.normal());
    Context ctx;
    ctx.rng = &rng;
    cache = std::move(layer.forward(params, x, input, ctx, state).cache);
  }
  Walker walker(options.batch > 0);
  const std::size_t total = walker.walk(layer, input, "(root)", 0, cache.get());
  return walker.table(total, cache.get());
}

template std::string summary<float>(const Layer&, const Shape&, const SummaryOptions&);
template std::string summary<double>(const Layer&, const Shape&, const SummaryOptions&);

}  // namespace layercache
