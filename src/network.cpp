// Sequential networks: forward in order, backward in reverse, errors carry the child path.
#include "layercache/network.hpp"

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "layers/layer_instantiation.hpp"

namespace layercache {
namespace {

// Rethrows a layercache error with the child's name prepended to its path.
template <class F>
decltype(auto) in_child(const std::string& name, F&& f) {
  try {
    return f();
  } catch (Error& e) {
    e.prepend_path(name);
    throw;
  }
}

template <class T>
const Tree<T>& child_or_empty(const Tree<T>& tree, std::size_t i) {
  static const Tree<T> empty;
  return tree.size() > i ? tree.child(i) : empty;
}

// The entries a layer declares for its own node of params (or of state), in init's order:
// its parts, then its tensors.
std::vector<std::string> declared_entries(const Layer& layer, const Shape& input, bool state) {
  std::vector<std::string> names;
  for (const auto& part : layer.parts(input)) names.push_back(part.name);
  for (const auto& spec : state ? layer.state_specs(input) : layer.param_specs(input))
    names.push_back(spec.name);
  return names;
}

// Throws ConfigError naming the first entry of `node`, a layer's own node of params or state
// (`what`), that is not among `names`, the entries the layer declares (its child layers when
// `layers`); returns when there is none. The caller's path is the layer's.
template <class T>
void reject_undeclared(const Tree<T>& node, const std::vector<std::string>& names,
                       const std::string& kind, bool layers, const char* what) {
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (std::find(names.begin(), names.end(), node.name(i)) != names.end()) continue;
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
    const std::string declared =
        layers ? "the " + kind + "'s layers are " + list
        : names.empty() ? "the " + kind + " layer has no " + what
                        : "the " + kind + " layer's " + what + " are " + list;
    throw ConfigError("unexpected entry '" + node.name(i) + "' in the " + what + " (" +
                      declared + ")");
  }
}

// Throws ConfigError when `node`, the layer's own node of params (or of state), holds an
// entry the layer does not declare for `input`. Costs a comparison of counts unless the
// count differs; an entry that is only missing is left to the layer, which reports it.
template <class T>
void check_entries(const Layer& layer, const Tree<T>& node, const Shape& input, bool state) {
  const std::size_t declared = state ? layer.state_entries(input) : layer.param_entries(input);
  if (node.size() == declared) return;
  const std::vector<std::string> names = declared_entries(layer, input, state);
  reject_undeclared(node, names, layer.kind(), !layer.parts(input).empty(),
                    state ? "state" : "params");
}

// True when backward has a gradient to compute in `params`, a child's node of the params:
// it holds a tensor that `frozen` (the child's frozen set, null for none) does not cover.
template <class T>
bool wants_grads(const Tree<T>& params, const FrozenSet* frozen) {
  if (frozen && frozen->all()) return false;
  if (params.is_leaf()) return true;
  for (std::size_t i = 0; i < params.size(); ++i)
    if (wants_grads(params.child(i), frozen ? frozen->child(params.name(i)) : nullptr)) return true;
  return false;
}

// The path of the layer that first reads the input of `layer` (given `input`), down through
// nested combinators: "encoder/dense1" for a network whose first child is network "encoder".
std::string first_layer_path(const Layer& layer, const Shape& input) {
  std::string path;
  std::vector<Part> parts = layer.parts(input);
  while (!parts.empty()) {
    path = join_path(path, parts.front().name);
    parts = parts.front().layer->parts(parts.front().input);
  }
  return path;
}

}  // namespace

template <class T>
void NetworkCache<T>::for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const {
  for (const auto& step : steps)
    if (step.cache) step.cache->for_each_buffer(f);
}

Network::Network(std::initializer_list<AnyLayer> layers) : Network(std::vector<AnyLayer>(layers)) {}

Network::Network(std::vector<AnyLayer> layers) {
  if (layers.empty()) throw ConfigError("a network needs at least one layer");
  std::vector<std::string> taken;
  for (const auto& l : layers)
    if (!l.name().empty()) {
      if (l.name().find('/') != std::string::npos)
        throw ConfigError("layer name '" + l.name() + "' must not contain '/'");
      for (const auto& t : taken)
        if (t == l.name()) throw ConfigError("two layers are named '" + l.name() + "'");
      taken.push_back(l.name());
    }
  std::map<std::string, int> counters;
  for (const auto& l : layers) {
    std::string name = l.name();
    if (name.empty()) {
      const std::string kind = l->kind();
      do {
        name = kind + std::to_string(++counters[kind]);
      } while (std::find(taken.begin(), taken.end(), name) != taken.end());
      taken.push_back(name);
    }
    layers_.push_back(Entry{name, l.shared()});
  }
}

Shape Network::output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& e : layers_) s = in_child(e.name, [&] { return e.layer->output_shape(s); });
  return s;
}

std::vector<Part> Network::parts(const Shape& input) const {
  std::vector<Part> out;
  Shape s = input;
  for (const auto& e : layers_) {
    out.push_back(Part{e.name, e.layer.get(), s});
    s = in_child(e.name, [&] { return e.layer->output_shape(s); });
  }
  return out;
}

std::string Network::summary(const Shape& input) const {
  std::ostringstream os;
  std::size_t total = 0;
  os << "layer                          kind          output        params\n";
  std::function<void(const Layer&, const Shape&, const std::string&)> walk =
      [&](const Layer& layer, const Shape& in, const std::string& path) {
        const auto parts = layer.parts(in);
        if (!parts.empty() && !path.empty()) {
          os << path << "/\n";
        }
        for (const auto& p : parts) walk(*p.layer, p.input, join_path(path, p.name));
        if (!parts.empty()) return;
        std::size_t n = 0;
        for (const auto& spec : layer.param_specs(in)) n += spec.rows * spec.cols;
        total += n;
        std::string padded = path;
        padded.resize(std::max<std::size_t>(31, path.size() + 1), ' ');
        std::string kind = layer.kind();
        kind.resize(std::max<std::size_t>(14, kind.size() + 1), ' ');
        std::string out = layer.output_shape(in).str();
        out.resize(std::max<std::size_t>(14, out.size() + 1), ' ');
        os << padded << kind << out << n << "\n";
      };
  walk(*this, input, "");
  os << "total parameters: " << total << "\n";
  return os.str();
}

template <class T>
void Network::check_tree(const Tree<T>& tree, const char* what, bool allow_empty) const {
  if (allow_empty && tree.empty()) return;
  bool ok = !tree.is_leaf() && tree.size() == layers_.size();
  for (std::size_t i = 0; ok && i < layers_.size(); ++i) ok = tree.name(i) == layers_[i].name;
  if (ok) return;
  std::vector<std::string> names;
  std::string expected, found;
  for (const auto& e : layers_) {
    names.push_back(e.name);
    expected += (expected.empty() ? "" : ", ") + e.name;
  }
  if (!tree.is_leaf() && tree.size() != layers_.size())
    reject_undeclared(tree, names, kind(), true, what);  // an extra entry, named on its own
  for (std::size_t i = 0; i < tree.size(); ++i) found += (i ? ", " : "") + tree.name(i);
  throw ConfigError(std::string(what) + " do not belong to this network: expected entries (" +
                    expected + "), found (" + (tree.is_leaf() ? "a tensor" : found) + ")");
}

template <class T>
void Network::check_children(const Tree<T>& params, const Tree<T>& state,
                             const Shape& input) const {
  Shape shape = input;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Entry& e = layers_[i];
    in_child(e.name, [&] {
      const Shape out = e.layer->output_shape(shape);
      check_entries(*e.layer, params.child(i), shape, false);
      if (!state.empty()) check_entries(*e.layer, state.child(i), shape, true);
      shape = out;
    });
  }
}

template <class T>
void Network::forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                        const Shape& x_shape, const Context& ctx, ForwardResult<T>& out) const {
  check_tree(params, "params", false);
  check_tree(state, "state", true);
  check_rows(x->n_rows, x_shape);
  check_children(params, state, x_shape);  // the whole network, before any data flows

  auto& cache = out.template reuse_cache<NetworkCache<T>>();
  cache.steps.resize(layers_.size());
  cache.input = x_shape;
  ConstBuffer<T> current = x;
  Shape shape = x_shape;
  bool any_state = false;
  // With checking on, the input is checked once and then each child's output, so a NaN is
  // reported where it appears: by the (innermost) first layer, or by the layer that made it.
  if (ctx.check_finite && !x->is_finite())
    throw NumericError("input contains NaN or Inf", first_layer_path(*this, x_shape));
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Entry& e = layers_[i];
    in_child(e.name, [&] {
      e.layer->forward_into(params.child(i), child_or_empty(state, i), current, shape, ctx,
                            cache.steps[i]);
    });
    current = cache.steps[i].output;
    shape = cache.steps[i].shape;
    any_state = any_state || !cache.steps[i].state.empty();
    if (ctx.check_finite && !current->is_finite())
      throw NumericError("output contains NaN or Inf", e.name);
  }
  out.output = current;
  out.shape = shape;
  if (any_state) {
    if (out.state.size() != layers_.size()) {
      out.state = Tree<T>();
      for (const auto& e : layers_) out.state.add(e.name, Tree<T>());
    }
    for (std::size_t i = 0; i < layers_.size(); ++i) out.state.child(i) = cache.steps[i].state;
  }
}

template <class T>
void Network::backward_t(const Tree<T>& params, const Cache& cache_base, const arma::Mat<T>& dy,
                         const Needs& needs, BackwardResult<T>& out) const {
  const auto& cache = cache_as<NetworkCache<T>>(cache_base, "network");
  if (cache.steps.size() != layers_.size())
    throw CacheError("a network of " + std::to_string(layers_.size()) +
                     " layers was handed the cache of a network of " +
                     std::to_string(cache.steps.size()));
  check_tree(params, "params", false);
  prepare_grads(params, needs, out.grads);
  const std::size_t n = layers_.size();
  out.parts.resize(n);

  // Children write into their own results; the grads subtrees are lent to them and the
  // network's dx buffer to the first child, then returned, so nothing is copied.
  struct Lend {
    BackwardResult<T>& out;
    std::size_t n;
    Lend(BackwardResult<T>& o, std::size_t count) : out(o), n(count) { swap(); }
    ~Lend() { swap(); }
    void swap() {
      for (std::size_t i = 0; i < n; ++i) std::swap(out.parts[i].grads, out.grads.child(i));
      out.parts[0].dx.swap(out.dx);
    }
  } lend(out, n);

  // Unless the caller wants dx, the layers before the first one with a gradient to compute
  // (frozen or without params) need nothing: they run no backward, and that one computes no dx.
  std::size_t first = 0;
  const auto frozen_in = [&](std::size_t i) {
    return needs.frozen ? needs.frozen->child(layers_[i].name) : nullptr;
  };
  if (!needs.input)
    while (first < n && !wants_grads(params.child(first), frozen_in(first))) ++first;
  if (first > 0) out.parts[0].dx.reset();  // the network's dx, not wanted
  // Child i's input shape, against which its params entries are checked (skipped or not).
  const auto input_of = [&](std::size_t i) -> const Shape& {
    return i == 0 ? cache.input : cache.steps[i - 1].shape;
  };
  for (std::size_t i = 0; i < first; ++i)
    in_child(layers_[i].name,
             [&] { check_entries(*layers_[i].layer, params.child(i), input_of(i), false); });

  const arma::Mat<T>* d = &dy;
  for (std::size_t i = n; i-- > first;) {
    const Entry& e = layers_[i];
    if (!cache.steps[i].cache) throw CacheError("the cache holds no entry for this layer", e.name);
    const Needs child_needs = needs.child(e.name, i > first || needs.input);
    in_child(e.name, [&] {
      e.layer->backward_into(params.child(i), *cache.steps[i].cache, *d, child_needs, out.parts[i]);
      // After the child has accepted the cache, whose shapes are then the child's own.
      check_entries(*e.layer, params.child(i), input_of(i), false);
    });
    d = &out.parts[i].dx;
  }
}

template <class T>
void Network::infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                      const Shape& x_shape, arma::Mat<T>& y) const {
  check_tree(params, "params", false);
  check_tree(state, "state", true);
  check_rows(x.n_rows, x_shape);
  check_children(params, state, x_shape);
  arma::Mat<T> buffers[2];
  const arma::Mat<T>* current = &x;
  Shape shape = x_shape;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Entry& e = layers_[i];
    arma::Mat<T>& target = i + 1 == layers_.size() ? y : buffers[i % 2];
    in_child(e.name, [&] {
      e.layer->infer_into(params.child(i), child_or_empty(state, i), *current, shape, target);
      shape = e.layer->output_shape(shape);
    });
    current = &target;
  }
}

template struct NetworkCache<float>;
template struct NetworkCache<double>;

LAYERCACHE_INSTANTIATE_LAYER(Network)

}  // namespace layercache
