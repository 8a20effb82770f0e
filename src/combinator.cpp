// The per-child machinery of combinators: names, error paths, lent gradients, gathered state.
#include "layercache/combinator.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace layercache {
namespace {

// Runs f, rethrowing a layercache error with the child's name prepended to its path.
template <class F>
void in_child(const std::string& name, F&& f) {
  try {
    f();
  } catch (Error& e) {
    e.prepend_path(name);
    throw;
  }
}

}  // namespace

template <class T>
void ChildrenCache<T>::prepare(const std::vector<Child>& children) {
  steps.resize(children.size());
  bool same = names.size() == children.size();
  for (std::size_t i = 0; same && i < children.size(); ++i) same = names[i] == children[i].name;
  if (same) return;
  names.clear();
  for (const auto& c : children) names.push_back(c.name);
}

template <class T>
void ChildrenCache<T>::for_each_buffer(const BufferVisitor& f) const {
  for (const auto& step : steps)
    if (step.cache) step.cache->for_each_buffer(f);
}

template <class T>
void ChildrenCache<T>::for_each_child(
    const std::function<void(const std::string&, const Cache&)>& f) const {
  for (std::size_t i = 0; i < steps.size() && i < names.size(); ++i)
    if (steps[i].cache) f(names[i], *steps[i].cache);
}

template struct ChildrenCache<float>;
template struct ChildrenCache<double>;

std::vector<Child> name_children(const std::vector<AnyLayer>& layers,
                                 const std::vector<std::string>& reserved) {
  if (layers.empty()) throw ConfigError("a combinator needs at least one layer");
  std::vector<std::string> taken = reserved;
  for (const auto& l : layers)
    if (!l.name().empty()) {
      if (l.name().find('/') != std::string::npos)
        throw ConfigError("layer name '" + l.name() + "' must not contain '/'");
      if (std::find(taken.begin(), taken.end(), l.name()) != taken.end())
        throw ConfigError("two layers are named '" + l.name() + "'");
      taken.push_back(l.name());
    }
  std::map<std::string, int> counters;
  std::vector<Child> children;
  for (const auto& l : layers) {
    std::string name = l.name();
    if (name.empty()) {
      const std::string kind = l->kind();
      do {
        name = kind + std::to_string(++counters[kind]);
      } while (std::find(taken.begin(), taken.end(), name) != taken.end());
      taken.push_back(name);
    }
    children.push_back(Child{name, l.shared()});
  }
  return children;
}

template <class T>
const Tree<T>& child_node(const Tree<T>& tree, std::string_view name) {
  static const Tree<T> empty;
  if (tree.empty()) return empty;
  const Tree<T>* node = tree.find(name);
  if (!node) throw ConfigError("no entry for layer '" + std::string(name) + "'");
  return *node;
}

template <class T>
void forward_child(const Child& child, const Tree<T>& params, const Tree<T>& state,
                   const ConstBuffer<T>& x, const Shape& shape, const Context& ctx,
                   ForwardResult<T>& out) {
  in_child(child.name, [&] {
    child.layer->forward_into(params, state, x, shape, ctx, out);
  });
}

template <class T>
void infer_child(const Child& child, const Tree<T>& params, const Tree<T>& state,
                 const arma::Mat<T>& x, const Shape& shape, arma::Mat<T>& y) {
  in_child(child.name, [&] {
    child.layer->infer_into(params, state, x, shape, y);
  });
}

template <class T>
void backward_child(const Child& child, const Tree<T>& params, const Cache& cache,
                    const arma::Mat<T>& dy, const Needs& needs, Tree<T>& grads,
                    BackwardResult<T>& work) {
  // The child writes into `grads` itself: swapped into its result for the call and back,
  // also when it throws.
  struct Lend {
    Tree<T>& a;
    Tree<T>& b;
    Lend(Tree<T>& x, Tree<T>& y) : a(x), b(y) {
      if (&a != &b) std::swap(a, b);
    }
    ~Lend() {
      if (&a != &b) std::swap(a, b);
    }
  } lend(grads, work.grads);
  in_child(child.name, [&] { child.layer->backward_into(params, cache, dy, needs, work); });
}

template <class T>
void gather_state(const std::vector<Child>& children, std::vector<ForwardResult<T>>& results,
                  Tree<T>& state) {
  bool any = false;
  for (std::size_t i = 0; i < children.size() && !any; ++i) any = !results[i].state.empty();
  if (!any) {
    if (!state.empty()) state = Tree<T>();
    return;
  }
  bool same = !state.is_leaf() && state.size() == children.size();
  for (std::size_t i = 0; same && i < children.size(); ++i) same = state.name(i) == children[i].name;
  if (!same) {
    state = Tree<T>();
    for (const auto& c : children) state.add(c.name, Tree<T>());
  }
  // The previous step's state goes back to the child's result, whose buffers its next
  // forward overwrites: no copy, and no allocation once shapes are steady.
  for (std::size_t i = 0; i < children.size(); ++i) std::swap(state.child(i), results[i].state);
}

template <class T>
bool wants_grads(const Tree<T>& params, const FrozenSet* frozen) noexcept {
  if (frozen && frozen->all()) return false;
  if (params.is_leaf()) return true;
  for (std::size_t i = 0; i < params.size(); ++i)
    if (wants_grads(params.child(i), frozen ? frozen->child(params.name(i)) : nullptr)) return true;
  return false;
}

#define LAYERCACHE_INSTANTIATE(T)                                                               \
  template const Tree<T>& child_node(const Tree<T>&, std::string_view);                          \
  template void forward_child(const Child&, const Tree<T>&, const Tree<T>&,                      \
                              const ConstBuffer<T>&, const Shape&, const Context&,               \
                              ForwardResult<T>&);                                                \
  template void infer_child(const Child&, const Tree<T>&, const Tree<T>&, const arma::Mat<T>&,   \
                            const Shape&, arma::Mat<T>&);                                        \
  template void backward_child(const Child&, const Tree<T>&, const Cache&, const arma::Mat<T>&,  \
                               const Needs&, Tree<T>&, BackwardResult<T>&);                      \
  template void gather_state(const std::vector<Child>&, std::vector<ForwardResult<T>>&,          \
                             Tree<T>&);                                                          \
  template bool wants_grads(const Tree<T>&, const FrozenSet*) noexcept;

LAYERCACHE_INSTANTIATE(float)
LAYERCACHE_INSTANTIATE(double)

}  // namespace layercache
