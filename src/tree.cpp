// Trees of tensors addressed by path.
#include "layercache/tree.hpp"

#include <algorithm>
#include <cstring>

namespace layercache {
namespace {

std::string shape_str(std::size_t rows, std::size_t cols) {
  return "(" + std::to_string(rows) + " × " + std::to_string(cols) + ")";
}

template <class T>
std::string child_list(const Tree<T>& tree) {
  if (tree.is_leaf()) return "it is a tensor";
  if (tree.size() == 0) return "it has no children";
  std::string out = "it has: ";
  for (std::size_t i = 0; i < tree.size(); ++i) out += (i ? ", " : "") + tree.name(i);
  return out;
}

}  // namespace

template <class T>
Tree<T>::Tree(arma::Mat<T> value) : is_leaf_(true), value_(std::move(value)) {}

template <class T>
arma::Mat<T>& Tree<T>::value() {
  if (!is_leaf_) throw ConfigError("expected a tensor, found a branch (" + child_list(*this) + ")");
  return value_;
}

template <class T>
const arma::Mat<T>& Tree<T>::value() const {
  if (!is_leaf_) throw ConfigError("expected a tensor, found a branch (" + child_list(*this) + ")");
  return value_;
}

template <class T>
void Tree<T>::throw_no_child(std::size_t i) const {
  throw ConfigError("no child " + std::to_string(i) + " (of " + std::to_string(children_.size()) +
                    "): " + child_list(*this));
}

template <class T>
Tree<T>& Tree<T>::add(std::string name, Tree child) {
  if (is_leaf_) throw ConfigError("cannot add child '" + name + "' to a tensor");
  if (name.empty() || name.find('/') != std::string::npos)
    throw ConfigError("a child name must be non-empty and contain no '/', got '" + name + "'");
  if (find(name)) throw ConfigError("duplicate child name '" + name + "'");
  children_.push_back(Child{std::move(name), std::move(child)});
  return children_.back().tree;
}

template <class T>
Tree<T>* Tree<T>::find(std::string_view name) noexcept {
  for (auto& c : children_)
    if (c.name == name) return &c.tree;
  return nullptr;
}

template <class T>
const Tree<T>* Tree<T>::find(std::string_view name) const noexcept {
  for (const auto& c : children_)
    if (c.name == name) return &c.tree;
  return nullptr;
}

template <class T>
const Tree<T>& Tree<T>::at(std::string_view path) const {
  const Tree* node = this;
  std::string walked;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    const std::string_view segment = path.substr(0, slash);
    const Tree* next = node->find(segment);
    if (!next)
      throw ConfigError("no entry '" + std::string(segment) + "' here (" + child_list(*node) + ")",
                        walked);
    walked = join_path(walked, segment);
    node = next;
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  return *node;
}

template <class T>
Tree<T>& Tree<T>::at(std::string_view path) {
  return const_cast<Tree&>(static_cast<const Tree&>(*this).at(path));
}

template <class T>
bool Tree<T>::contains(std::string_view path) const noexcept {
  const Tree* node = this;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    node = node->find(path.substr(0, slash));
    if (!node) return false;
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  return true;
}

template <class T>
void Tree<T>::for_each(const std::function<void(const std::string&, const arma::Mat<T>&)>& f,
                       const std::string& prefix) const {
  if (is_leaf_) return f(prefix, value_);
  for (const auto& c : children_) c.tree.for_each(f, join_path(prefix, c.name));
}

template <class T>
void Tree<T>::for_each(const std::function<void(const std::string&, arma::Mat<T>&)>& f,
                       const std::string& prefix) {
  if (is_leaf_) return f(prefix, value_);
  for (auto& c : children_) c.tree.for_each(f, join_path(prefix, c.name));
}

template <class T>
std::vector<std::string> Tree<T>::paths() const {
  std::vector<std::string> out;
  for_each([&](const std::string& path, const arma::Mat<T>&) { out.push_back(path); });
  return out;
}

template <class T>
std::size_t Tree<T>::n_tensors() const noexcept {
  if (is_leaf_) return 1;
  std::size_t n = 0;
  for (const auto& c : children_) n += c.tree.n_tensors();
  return n;
}

template <class T>
std::size_t Tree<T>::count() const noexcept {
  if (is_leaf_) return value_.n_elem;
  std::size_t n = 0;
  for (const auto& c : children_) n += c.tree.count();
  return n;
}

template <class T>
bool Tree<T>::same_structure(const Tree& other) const noexcept {
  if (is_leaf_ != other.is_leaf_) return false;
  if (is_leaf_)
    return value_.n_rows == other.value_.n_rows && value_.n_cols == other.value_.n_cols;
  if (children_.size() != other.children_.size()) return false;
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].name != other.children_[i].name ||
        !children_[i].tree.same_structure(other.children_[i].tree))
      return false;
  return true;
}

template <class T>
void Tree<T>::check_same_structure(const Tree& other, std::string_view what,
                                   const std::string& prefix) const {
  const std::string in = " in the " + std::string(what);
  if (is_leaf_ != other.is_leaf_)
    throw ConfigError(std::string("expected a ") + (is_leaf_ ? "tensor" : "branch") +
                          ", found a " + (other.is_leaf_ ? "tensor" : "branch") + in,
                      prefix);
  if (is_leaf_) {
    if (value_.n_rows != other.value_.n_rows || value_.n_cols != other.value_.n_cols)
      throw ShapeError("expected " + shape_str(value_.n_rows, value_.n_cols) + ", found " +
                           shape_str(other.value_.n_rows, other.value_.n_cols) + in,
                       prefix);
    return;
  }
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (i >= other.children_.size() || children_[i].name != other.children_[i].name)
      throw ConfigError("expected entry '" + children_[i].name + "', found " +
                            (i < other.children_.size() ? "'" + other.children_[i].name + "'"
                                                        : std::string("nothing")) +
                            in,
                        prefix);
    children_[i].tree.check_same_structure(other.children_[i].tree, what,
                                           join_path(prefix, children_[i].name));
  }
  if (other.children_.size() > children_.size())
    throw ConfigError("unexpected entry '" + other.children_[children_.size()].name + "'" + in,
                      prefix);
}

template <class T>
bool Tree<T>::identical(const Tree& other) const noexcept {
  if (!same_structure(other)) return false;
  if (is_leaf_)
    return value_.n_elem == 0 ||
           std::equal(value_.begin(), value_.end(), other.value_.begin(),
                      [](T a, T b) { return std::memcmp(&a, &b, sizeof(T)) == 0; });
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (!children_[i].tree.identical(other.children_[i].tree)) return false;
  return true;
}

template <class T>
Tree<T> zeros_like(const Tree<T>& tree) {
  return map(tree, [](const std::string&, const arma::Mat<T>& m) {
    return arma::Mat<T>(m.n_rows, m.n_cols, arma::fill::zeros);
  });
}

template <class T>
std::vector<std::pair<std::string, const arma::Mat<T>*>> flatten(const Tree<T>& tree) {
  std::vector<std::pair<std::string, const arma::Mat<T>*>> out;
  tree.for_each([&](const std::string& path, const arma::Mat<T>& m) { out.emplace_back(path, &m); });
  return out;
}

namespace {

// Glob match of the whole of `path`, with single-star backtracking.
bool glob_matches(std::string_view pattern, std::string_view path) noexcept {
  std::size_t p = 0, s = 0, star = std::string_view::npos, mark = 0;
  while (s < path.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == path[s])) {
      ++p;
      ++s;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

bool path_matches(std::string_view pattern, std::string_view path) noexcept {
  if (glob_matches(pattern, path)) return true;
  // A pattern naming a whole branch (with or without wildcards) matches everything beneath it.
  for (std::size_t end = path.find('/'); end != std::string_view::npos;
       end = path.find('/', end + 1))
    if (glob_matches(pattern, path.substr(0, end))) return true;
  return false;
}

template class Tree<float>;
template class Tree<double>;
template Tree<float> zeros_like(const Tree<float>&);
template Tree<double> zeros_like(const Tree<double>&);
template std::vector<std::pair<std::string, const arma::Mat<float>*>> flatten(const Tree<float>&);
template std::vector<std::pair<std::string, const arma::Mat<double>*>> flatten(const Tree<double>&);

}  // namespace layercache
