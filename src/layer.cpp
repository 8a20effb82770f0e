// The layer contract's shared machinery: caches, frozen sets, grads preparation, the
// generic init from declared tensors, and the convenience entry points.
#include "layercache/layer.hpp"

#include <unordered_set>

#include "layercache/initializers.hpp"
#include "layercache/sizes.hpp"

namespace layercache {

// ----- caches and results -----------------------------------------------------------------

void Cache::for_each_child(const std::function<void(const std::string&, const Cache&)>&) const {}

std::size_t Cache::bytes() const {
  std::unordered_set<const void*> seen;
  std::size_t total = 0;
  for_each_buffer([&](const void* address, std::size_t n) {
    if (address && seen.insert(address).second) total += n;
  });
  return total;
}

template <class T>
arma::Mat<T>& ForwardResult<T>::write_output(std::size_t rows, std::size_t cols) {
  if (!storage) storage = std::make_shared<arma::Mat<T>>();
  storage->set_size(rows, cols);
  output = storage;
  return *storage;
}

// ----- frozen sets and needs --------------------------------------------------------------

const FrozenSet* FrozenSet::child(std::string_view name) const noexcept {
  for (const auto& e : entries_)
    if (e.name == name) return &e.set;
  return nullptr;
}

void FrozenSet::insert(std::string_view path) {
  if (all_) return;
  if (path.empty()) {
    all_ = true;
    entries_.clear();
    return;
  }
  const std::size_t slash = path.find('/');
  const std::string_view head = path.substr(0, slash);
  const std::string_view rest = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  for (auto& e : entries_)
    if (e.name == head) return e.set.insert(rest);
  entries_.push_back(Entry{std::string(head), FrozenSet{}});
  entries_.back().set.insert(rest);
}

bool FrozenSet::contains(std::string_view path) const noexcept {
  const FrozenSet* node = this;
  while (node && !node->all_) {
    if (path.empty()) return false;
    const std::size_t slash = path.find('/');
    node = node->child(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  return node != nullptr;
}

template <class T>
FrozenSet freeze(const Tree<T>& params, const std::vector<std::string>& patterns) {
  FrozenSet set;
  const auto paths = params.paths();
  for (const auto& pattern : patterns) {
    bool matched = false;
    for (const auto& path : paths)
      if (path_matches(pattern, path)) {
        set.insert(path);
        matched = true;
      }
    if (!matched) {
      std::string listing;
      for (std::size_t i = 0; i < paths.size() && i < 20; ++i) listing += (i ? ", " : "") + paths[i];
      if (paths.size() > 20) listing += ", ...";
      throw ConfigError("freeze pattern '" + pattern + "' matches no parameter; the params are: " +
                        listing);
    }
  }
  return set;
}

bool Needs::param(std::string_view name) const noexcept {
  if (!frozen) return true;
  if (frozen->all()) return false;
  const FrozenSet* c = frozen->child(name);
  return !(c && c->all());
}

Needs Needs::child(std::string_view name, bool child_input) const noexcept {
  Needs n;
  n.input = child_input;
  n.executor = executor;
  n.batch_reduction = batch_reduction;
  if (frozen) n.frozen = frozen->all() ? frozen : frozen->child(name);
  return n;
}


namespace {

template <class T>
void prepare_node(const Tree<T>& params, const FrozenSet* frozen, Tree<T>& grads) {
  if (params.is_leaf()) {
    if (!grads.is_leaf()) grads = Tree<T>(arma::Mat<T>());
    if (frozen && frozen->all())
      grads.value().reset();
    else
      grads.value().set_size(params.value().n_rows, params.value().n_cols);
    return;
  }
  bool same_names = !grads.is_leaf() && grads.size() == params.size();
  for (std::size_t i = 0; same_names && i < params.size(); ++i) same_names = grads.name(i) == params.name(i);
  if (!same_names) {
    grads = Tree<T>();
    for (std::size_t i = 0; i < params.size(); ++i)
      grads.add(params.name(i), params.child(i).is_leaf() ? Tree<T>(arma::Mat<T>()) : Tree<T>());
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const FrozenSet* sub = frozen ? (frozen->all() ? frozen : frozen->child(params.name(i))) : nullptr;
    prepare_node(params.child(i), sub, grads.child(i));
  }
}

std::string dims(std::size_t rows, std::size_t cols) {
  return "(" + std::to_string(rows) + " × " + std::to_string(cols) + ")";
}

}  // namespace

template <class T>
void prepare_grads(const Tree<T>& params, const Needs& needs, Tree<T>& grads) {
  prepare_node(params, needs.frozen, grads);
}

template <class T>
const arma::Mat<T>& param(const Tree<T>& params, std::string_view name, std::size_t rows,
                          std::size_t cols) {
  const Tree<T>* node = params.is_leaf() ? nullptr : params.find(name);
  if (!node || !node->is_leaf()) {
    std::string have;
    for (std::size_t i = 0; i < params.size(); ++i) have += (i ? ", " : "") + params.name(i);
    throw ConfigError("missing parameter '" + std::string(name) + "' (the params given have: " +
                      (have.empty() ? std::string("nothing") : have) +
                      "); were these params made by this layer's init?");
  }
  const arma::Mat<T>& m = node->value();
  if (m.n_rows != rows || m.n_cols != cols)
    throw ShapeError("expected " + dims(rows, cols) + ", got " + dims(m.n_rows, m.n_cols) +
                         "; were these params made by this layer's init?",
                     std::string(name));
  return m;
}

void check_rows(std::size_t got_rows, const Shape& expected, const char* what) {
  if (got_rows != expected.size())
    throw ShapeError(std::string("expected ") + what + " " + expected.str() + " (" +
                     std::to_string(expected.size()) + " rows per sample column), got " +
                     std::to_string(got_rows) + " rows");
}

// ----- Layer defaults and generic entry points --------------------------------------------

std::vector<TensorSpec> Layer::param_specs(const Shape&) const { return {}; }
std::vector<TensorSpec> Layer::state_specs(const Shape&) const { return {}; }
std::vector<Part> Layer::parts(const Shape&) const { return {}; }

namespace detail {

// Enough for every input shape a layer meets in practice (a recurrent layer sees one per
// sequence length); past it, declarations are computed afresh instead of kept.
constexpr std::size_t max_memo_entries = 256;

// Holds a memo's spin lock for one scope.
class MemoLock {
 public:
  explicit MemoLock(std::atomic<bool>& busy) noexcept : busy_(busy) {
    while (busy_.exchange(true, std::memory_order_acquire))
      while (busy_.load(std::memory_order_relaxed)) {
      }
  }
  ~MemoLock() { busy_.store(false, std::memory_order_release); }
  MemoLock(const MemoLock&) = delete;
  MemoLock& operator=(const MemoLock&) = delete;

 private:
  std::atomic<bool>& busy_;
};

std::shared_ptr<const Declaration> DeclarationMemo::find(const Shape& input) const {
  const MemoLock lock(busy_);
  for (const auto& d : entries_)
    if (d->input == input) return d;
  return nullptr;
}

std::shared_ptr<const Declaration> DeclarationMemo::keep(
    std::shared_ptr<const Declaration> declaration) const {
  const MemoLock lock(busy_);
  for (const auto& d : entries_)
    if (d->input == declaration->input) return d;  // another thread was first
  if (entries_.size() < max_memo_entries) entries_.push_back(declaration);
  return declaration;
}

}  // namespace detail

std::shared_ptr<const Declaration> Layer::declaration(const Shape& input) const {
  if (auto known = memo_.find(input)) return known;
  auto d = std::make_shared<Declaration>();
  d->input = input;
  d->output = output_shape(input);  // throws for an input the layer rejects
  d->params = param_specs(input);
  d->state = state_specs(input);
  d->parts = parts(input);
  return memo_.keep(std::move(d));
}

namespace {

// A zeroed (rows × cols) staging matrix for a tensor of T, or a ConfigError naming the tensor
// when it cannot be allocated: a size that overflows, more bytes than the machine has (the
// staging double and the T copy), or an allocator that refuses.
template <class T>
arma::mat allocate_tensor(const TensorSpec& spec) {
  const std::string what = "values of the tensor " + spec.name + " (rows × cols)";
  const std::size_t n = checked_mul(spec.rows, spec.cols, what);
  const std::size_t bytes =
      checked_bytes(n, sizeof(double) + sizeof(T), "bytes of the tensor " + spec.name);
  const std::size_t memory = physical_memory_bytes();
  auto refuse = [&](const std::string& why) {
    return ConfigError("cannot allocate the tensor " + spec.name + " of " +
                           std::to_string(spec.rows) + " × " + std::to_string(spec.cols) +
                           " values (" + std::to_string(bytes) + " bytes): " + why,
                       spec.name);
  };
  if (memory && bytes > memory)
    throw refuse("this machine has " + std::to_string(memory) + " bytes of memory");
  try {
    return arma::mat(spec.rows, spec.cols, arma::fill::zeros);
  } catch (const std::bad_alloc&) {
    throw refuse("out of memory");
  }
}

template <class T>
Tree<T> tensors_from_specs(const std::vector<TensorSpec>& specs, const Initializer* initializer,
                           Rng* rng) {
  Tree<T> out;
  for (const auto& spec : specs) {
    arma::mat m = allocate_tensor<T>(spec);
    if (spec.role == Role::scale || spec.role == Role::running_variance)
      m.ones();
    else if (initializer && (spec.role == Role::weight || spec.role == Role::other))
      (*initializer)(m, spec, *rng);
    out.add(spec.name, Tree<T>(arma::conv_to<arma::Mat<T>>::from(m)));
  }
  return out;
}

// Walks parts (combinators) and declared tensors alike; `make` builds a leaf layer's node.
template <class T, class Make>
Tree<T> build_tree(const Layer& layer, const Shape& input, Make make) {
  const auto d = layer.declaration(input);  // validates the input
  Tree<T> out;
  for (const auto& part : d->parts) {
    try {
      out.add(part.name, build_tree<T>(*part.layer, part.input, make));
    } catch (Error& e) {
      e.prepend_path(part.name);
      throw;
    }
  }
  Tree<T> own = make(*d);
  for (std::size_t i = 0; i < own.size(); ++i) out.add(own.name(i), std::move(own.child(i)));
  return out;
}

}  // namespace

template <class T>
Tree<T> Layer::init(const Shape& input, const Initializer& initializer, Rng& rng) const {
  return build_tree<T>(*this, input, [&](const Declaration& d) {
    return tensors_from_specs<T>(d.params, &initializer, &rng);
  });
}

template <class T>
Tree<T> Layer::init_state(const Shape& input) const {
  return build_tree<T>(*this, input, [](const Declaration& d) {
    return tensors_from_specs<T>(d.state, nullptr, nullptr);
  });
}

template <class T>
ForwardResult<T> Layer::forward(const Tree<T>& params, const arma::Mat<T>& x, const Context& ctx) const {
  ForwardResult<T> out;
  forward(params, x, Shape{x.n_rows}, ctx, out);
  return out;
}

template <class T>
ForwardResult<T> Layer::forward(const Tree<T>& params, const arma::Mat<T>& x, const Shape& x_shape,
                                const Context& ctx, const Tree<T>& state) const {
  ForwardResult<T> out;
  forward(params, x, x_shape, ctx, out, state);
  return out;
}

template <class T>
void Layer::forward(const Tree<T>& params, const arma::Mat<T>& x, const Shape& x_shape,
                    const Context& ctx, ForwardResult<T>& reuse, const Tree<T>& state) const {
  const Shape shape = x_shape.rank() ? x_shape : Shape{x.n_rows};
  check_rows(x.n_rows, shape);
  // The caches may keep the input, so it is copied once into a buffer this result owns.
  if (!reuse.input) reuse.input = std::make_shared<arma::Mat<T>>();
  if (reuse.input.get() != &x) *reuse.input = x;
  forward_into(params, state, reuse.input, shape, ctx, reuse);
}

template <class T>
BackwardResult<T> Layer::backward(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                                  const Needs& needs) const {
  BackwardResult<T> out;
  backward(params, cache, dy, needs, out);
  return out;
}

template <class T>
void Layer::backward(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                     const Needs& needs, BackwardResult<T>& reuse) const {
  prepare_grads(params, needs, reuse.grads);
  backward_into(params, cache, dy, needs, reuse);
}

template <class T>
arma::Mat<T> Layer::infer(const Tree<T>& params, const arma::Mat<T>& x, const Shape& x_shape,
                          const Tree<T>& state) const {
  const Shape shape = x_shape.rank() ? x_shape : Shape{x.n_rows};
  check_rows(x.n_rows, shape);
  arma::Mat<T> y;
  infer_into(params, state, x, shape, y);
  return y;
}

// ----- handles ----------------------------------------------------------------------------

AnyLayer::AnyLayer(std::shared_ptr<const Layer> layer, std::string name)
    : layer_(std::move(layer)), name_(std::move(name)) {
  if (!layer_) throw ConfigError("AnyLayer needs a layer, got a null pointer");
}

AnyLayer AnyLayer::named(std::string name) const { return AnyLayer(layer_, std::move(name)); }

AnyLayer named(std::string name, AnyLayer layer) { return layer.named(std::move(name)); }

// ----- explicit instantiations ------------------------------------------------------------

#define LAYERCACHE_INSTANTIATE(T)                                                                \
  template struct ForwardResult<T>;                                                              \
  template FrozenSet freeze(const Tree<T>&, const std::vector<std::string>&);                    \
  template void prepare_grads(const Tree<T>&, const Needs&, Tree<T>&);                           \
  template const arma::Mat<T>& param(const Tree<T>&, std::string_view, std::size_t, std::size_t); \
  template Tree<T> Layer::init<T>(const Shape&, const Initializer&, Rng&) const;                 \
  template Tree<T> Layer::init_state<T>(const Shape&) const;                                     \
  template ForwardResult<T> Layer::forward(const Tree<T>&, const arma::Mat<T>&, const Context&) const; \
  template ForwardResult<T> Layer::forward(const Tree<T>&, const arma::Mat<T>&, const Shape&,   \
                                           const Context&, const Tree<T>&) const;                \
  template void Layer::forward(const Tree<T>&, const arma::Mat<T>&, const Shape&, const Context&, \
                               ForwardResult<T>&, const Tree<T>&) const;                         \
  template BackwardResult<T> Layer::backward(const Tree<T>&, const Cache&, const arma::Mat<T>&,  \
                                             const Needs&) const;                                \
  template void Layer::backward(const Tree<T>&, const Cache&, const arma::Mat<T>&, const Needs&, \
                                BackwardResult<T>&) const;                                       \
  template arma::Mat<T> Layer::infer(const Tree<T>&, const arma::Mat<T>&, const Shape&,         \
                                     const Tree<T>&) const;

LAYERCACHE_INSTANTIATE(float)
LAYERCACHE_INSTANTIATE(double)

}  // namespace layercache
