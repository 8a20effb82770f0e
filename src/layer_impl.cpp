// The checks LayerImpl and CombinatorImpl run around every layer's math, written once here
// instead of in every layer: declarations against the params and state given, the cache's
// stamp against the layer, dy against the output, finite values with checking on.
#include "layercache/layer_impl.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace layercache {
namespace {

std::string dims(std::size_t rows, std::size_t cols) {
  std::string s = "(";
  s += std::to_string(rows);
  s += " × ";
  s += std::to_string(cols);
  s += ")";
  return s;
}

std::string listing(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The question an error about a layer's params (or state) ends with.
std::string made_by(bool of_state) {
  return of_state ? "was this state made by this layer's init_state?"
                  : "were these params made by this layer's init?";
}

// The names of the entries a layer declares for its node of params (or state): its parts,
// then its own tensors (the order init makes them in).
std::vector<std::string> declared_names(const Declaration& d, bool of_state) {
  std::vector<std::string> names;
  for (const auto& part : d.parts) names.push_back(part.name);
  for (const auto& spec : of_state ? d.state : d.params) names.push_back(spec.name);
  return names;
}

// Throws the ConfigError for a node whose entries are not the declared ones: an entry the
// layer does not declare is named on its own (a layer would pass over it, an optimizer would
// move it); otherwise the first declared entry that is missing.
template <class T>
[[noreturn]] void throw_entries(const Layer& layer, const Declaration& d, const Tree<T>& node,
                                bool of_state) {
  const char* what = of_state ? "state" : "params";
  const std::vector<std::string> names = declared_names(d, of_state);
  const std::string kind = layer.kind();
  const bool combinator = !d.parts.empty();
  std::vector<std::string> found;
  for (std::size_t i = 0; i < node.size(); ++i) found.push_back(node.name(i));
  for (const auto& name : found) {
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    if (combinator && found.size() <= names.size())
      throw ConfigError(std::string(what) + " do not belong to this " + kind +
                        ": expected entries (" + listing(names) + "), found (" + listing(found) +
                        ")");
    const std::string declared =
        combinator      ? "the " + kind + "'s " + (d.params.empty() && d.state.empty()
                                                       ? std::string("layers")
                                                       : std::string("entries")) +
                              " are " + listing(names)
        : names.empty() ? "the " + kind + " layer has no " + what
                        : "the " + kind + " layer's " + what + " are " + listing(names);
    throw ConfigError("unexpected entry '" + name + "' in the " + what + " (" + declared + ")");
  }
  for (const auto& name : names)
    if (std::find(found.begin(), found.end(), name) == found.end())
      throw ConfigError(std::string("missing ") + (of_state ? "state" : "parameter") + " '" +
                        name + "' (the " + what + (of_state ? " given has: " : " given have: ") +
                        (found.empty() ? std::string("nothing") : listing(found)) + "); " +
                        made_by(of_state));
  throw ConfigError(std::string(what) + " entries do not match the declaration");  // unreachable
}

// Checks a layer's own node of params (or state) against its declaration: a branch holding
// exactly the declared entries, each part's entry a branch and each tensor of its declared
// shape. Allocates nothing unless it throws.
template <class T>
void check_node(const Layer& layer, const Declaration& d, const Tree<T>& node, bool of_state) {
  const auto& specs = of_state ? d.state : d.params;
  const char* what = of_state ? "state" : "params";
  if (node.is_leaf())
    throw ConfigError(std::string("expected the ") + what + " of a " + layer.kind() +
                      " layer (a branch of named entries), got a single tensor");
  bool match = node.size() == d.entries(of_state);
  for (std::size_t i = 0; match && i < d.parts.size(); ++i) {
    const Tree<T>* entry = node.find(d.parts[i].name);
    match = entry != nullptr;
    if (entry && entry->is_leaf())
      throw ConfigError(std::string("expected the ") + what + " of layer '" + d.parts[i].name +
                        "' (a branch), got a single tensor");
  }
  for (std::size_t i = 0; match && i < specs.size(); ++i) {
    const Tree<T>* entry = node.find(specs[i].name);
    match = entry != nullptr;
    if (!entry) break;
    if (!entry->is_leaf())
      throw ConfigError(std::string("expected ") + (of_state ? "state" : "parameter") + " '" +
                        specs[i].name + "' to be a tensor, got a branch");
    const arma::Mat<T>& m = entry->value();
    if (m.n_rows != specs[i].rows || m.n_cols != specs[i].cols)
      throw ShapeError("expected " + dims(specs[i].rows, specs[i].cols) + ", got " +
                           dims(m.n_rows, m.n_cols) + "; " + made_by(of_state),
                       specs[i].name);
  }
  if (!match) throw_entries(layer, d, node, of_state);
}

// The state rules: an empty state tree stands for "no state" and is accepted by layers that
// declare none (and passed on empty to children); a layer that declares state needs it.
template <class T>
void check_state(const Layer& layer, const Declaration& d, const Tree<T>& state) {
  if (state.empty() && d.state.empty()) return;
  check_node(layer, d, state, true);
}

// Rethrows an error with `segment` prepended to its path.
template <class F>
void in_child(const std::string& segment, F&& f) {
  try {
    f();
  } catch (Error& e) {
    e.prepend_path(segment);
    throw;
  }
}

// Checks the nodes of every descendant of a combinator (its own node is checked already).
template <class T>
void check_subtree(const Declaration& d, const Tree<T>& params, const Tree<T>* state) {
  static const Tree<T> empty;
  for (const auto& part : d.parts) {
    in_child(part.name, [&] {
      const auto child = part.layer->declaration(part.input);
      const Tree<T>& p = *params.find(part.name);
      const Tree<T>* s = !state ? nullptr : state->empty() ? &empty : state->find(part.name);
      check_node(*part.layer, *child, p, false);
      if (s) check_state(*part.layer, *child, *s);
      if (!child->parts.empty()) check_subtree(*child, p, s);
    });
  }
}

}  // namespace

Shape require_size(const Shape& input, std::size_t n) {
  if (input.size() != n)
    throw ShapeError("expected input (" + std::to_string(n) + "), got " + input.str());
  return input;
}

// ----- the views a layer's math receives --------------------------------------------------

template <class T>
const arma::Mat<T>& Tensors<T>::operator[](std::string_view name) const {
  const Tree<T>* entry = node_->is_leaf() ? nullptr : node_->find(name);
  if (!entry || !entry->is_leaf())
    throw ConfigError("the layer asked for tensor '" + std::string(name) +
                      "', which its param_specs or state_specs do not declare");
  return entry->value();
}

template <class T>
Rng& LayerCall<T>::rng() const {
  if (!ctx_->rng)
    throw ConfigError("this layer draws random numbers: set Context::rng (fit and train_step "
                      "do; a hand-written forward passes one)");
  return *ctx_->rng;
}

template <class T>
void LayerCall<T>::sum_over_batch(arma::Mat<T>& values) const {
  if (ctx_->batch_reduction) ctx_->batch_reduction->sum(values.memptr(), values.n_elem);
}

template <class T>
void Gradients<T>::sum_over_batch(arma::Mat<T>& values) const {
  if (needs_->batch_reduction) needs_->batch_reduction->sum(values.memptr(), values.n_elem);
}

template <class T>
arma::Mat<T>* LayerCall<T>::new_state(std::string_view name) const {
  if (!new_state_) return nullptr;
  Tree<T>* entry = new_state_->find(name);
  if (!entry || !entry->is_leaf())
    throw ConfigError("the layer asked for state '" + std::string(name) +
                      "', which its state_specs do not declare");
  return &entry->value();
}

template <class T>
arma::Mat<T>* Gradients<T>::param(std::string_view name) const {
  if (!needs_->param(name)) return nullptr;
  Tree<T>* entry = out_->grads.is_leaf() ? nullptr : out_->grads.find(name);
  if (!entry || !entry->is_leaf())
    throw ConfigError("the layer asked for the gradient of '" + std::string(name) +
                      "', which its param_specs do not declare");
  return &entry->value();
}

// ----- the framework's checks -------------------------------------------------------------

namespace detail {

template <class T>
std::shared_ptr<const Declaration> check_call(const Layer& layer, const Tree<T>& params,
                                              const Tree<T>& state, const arma::Mat<T>& x,
                                              const Shape& x_shape, bool check_finite,
                                              bool subtree) {
  auto d = layer.declaration(x_shape);
  check_rows(x.n_rows, x_shape);
  check_node(layer, *d, params, false);
  check_state(layer, *d, state);
  if (subtree) check_subtree(*d, params, &state);
  if (check_finite && !x.is_finite()) throw NumericError("input contains NaN or Inf");
  return d;
}

template <class T>
void check_output(const arma::Mat<T>& y, const Context& ctx) {
  if (ctx.check_finite && !y.is_finite()) throw NumericError("output contains NaN or Inf");
}

template <class T>
void prepare_state(const Declaration& d, Tree<T>& state) {
  bool same = !state.is_leaf() && state.size() == d.state.size();
  for (std::size_t i = 0; same && i < d.state.size(); ++i)
    same = state.name(i) == d.state[i].name && state.child(i).is_leaf();
  if (!same) {
    state = Tree<T>();
    for (const auto& spec : d.state) state.add(spec.name, Tree<T>(arma::Mat<T>()));
  }
  for (std::size_t i = 0; i < d.state.size(); ++i)
    state.child(i).value().set_size(d.state[i].rows, d.state[i].cols);
}

template <class T>
std::shared_ptr<const Declaration> check_backward(const Layer& layer, const Cache& cache,
                                                  const Tree<T>& params, const arma::Mat<T>& dy,
                                                  const Needs& needs, BackwardResult<T>& out,
                                                  bool subtree, bool leave_dx) {
  std::shared_ptr<const Declaration> d;
  try {
    d = layer.declaration(cache.input_shape());
  } catch (const ShapeError&) {
    throw CacheError("expected the cache of this " + layer.kind() +
                     " layer, got one made for input " + cache.input_shape().str() +
                     ", which this layer does not take");
  }
  if (!(d->output == cache.output_shape()))
    throw CacheError("expected the cache of this " + layer.kind() + " layer (output " +
                     d->output.str() + " for input " + d->input.str() +
                     "), got one with output " + cache.output_shape().str());
  if (dy.n_rows != d->output.size() || dy.n_cols != cache.batch())
    throw ShapeError("expected dy " + dims(d->output.size(), cache.batch()) +
                     " (the shape of this layer's output), got " + dims(dy.n_rows, dy.n_cols));
  check_node(layer, *d, params, false);
  if (subtree) check_subtree(*d, params, static_cast<const Tree<T>*>(nullptr));
  prepare_grads(params, needs, out.grads);
  if (!leave_dx) {
    if (needs.input)
      out.dx.set_size(d->input.size(), cache.batch());
    else
      out.dx.reset();
  }
  return d;
}

bool wants_anything(const Declaration& d, const Needs& needs) noexcept {
  if (needs.input) return true;
  for (const auto& spec : d.params)
    if (needs.param(spec.name)) return true;
  return false;
}

void throw_foreign_cache(const Cache& cache, const char* kind, bool same_type) {
  std::string what = std::string("a ") + kind + " layer was handed a " + cache.kind() + " cache";
  // The same kind: the cache is of the other element type (a float forward's cache given to a
  // double backward) or from another layer class that uses the same kind.
  if (!same_type && std::string_view(cache.kind()) == kind)
    what += " of another element type (float and double mixed?) or from another layer class";
  throw CacheError(what + "; pass each layer the cache its own forward returned");
}

#define LAYERCACHE_INSTANTIATE(T)                                                              \
  template std::shared_ptr<const Declaration> check_call(const Layer&, const Tree<T>&,         \
                                                         const Tree<T>&, const arma::Mat<T>&,  \
                                                         const Shape&, bool, bool);            \
  template void check_output(const arma::Mat<T>&, const Context&);                             \
  template void prepare_state(const Declaration&, Tree<T>&);                                   \
  template std::shared_ptr<const Declaration> check_backward(                                  \
      const Layer&, const Cache&, const Tree<T>&, const arma::Mat<T>&, const Needs&,           \
      BackwardResult<T>&, bool, bool);

LAYERCACHE_INSTANTIATE(float)
LAYERCACHE_INSTANTIATE(double)
#undef LAYERCACHE_INSTANTIATE

}  // namespace detail

template class Tensors<float>;
template class Tensors<double>;
template class LayerCall<float>;
template class LayerCall<double>;
template class Gradients<float>;
template class Gradients<double>;

}  // namespace layercache
