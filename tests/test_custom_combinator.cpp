// The custom combinator of docs/combinators.md, compiled and tested exactly as the page shows
// it: the mean of several branches, y = (1/n) Σᵢ fᵢ(x), on the public combinator machinery.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"

using namespace layercache;

// [custom-combinator]
// y = (1/n) Σᵢ fᵢ(x);  dyᵢ = dy / n;  dx = Σᵢ dxᵢ.
class Mean : public CombinatorImpl<Mean, ChildrenCache> {
 public:
  static constexpr const char* kind_name = "mean";
  explicit Mean(std::vector<AnyLayer> branches) : children_(name_children(branches)) {}

  Shape output_shape(const Shape& input) const override {
    const Shape first = children_[0].layer->declaration(input)->output;
    for (const Child& c : children_)
      if (!(c.layer->declaration(input)->output == first))
        throw ShapeError("branch " + c.name + " gives another shape than " + children_[0].name);
    return first;
  }
  std::vector<Part> parts(const Shape& input) const override {
    std::vector<Part> out;
    for (const Child& c : children_) out.push_back({c.name, c.layer.get(), input});
    return out;
  }
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const LayerCall<T>& call, ChildrenCache<T>& cache, ForwardResult<T>& out) const {
    cache.prepare(children_);
    arma::Mat<T>& y = out.write_output(call.output().size(), call.batch());
    y.zeros();
    for (std::size_t i = 0; i < children_.size(); ++i) {
      const Child& c = children_[i];
      forward_child(c, child_node(params, c.name), child_node(state, c.name), x, call.input(),
                    call.context(), cache.steps[i]);
      y += cache.steps[i].y();
    }
    y /= T(children_.size());
    gather_state(children_, cache.steps, out.state);
  }
  template <class T>
  void backward_t(const Tree<T>& params, const ChildrenCache<T>& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const {
    out.parts.resize(children_.size());
    out.workspace = dy / T(children_.size());
    for (std::size_t i = 0; i < children_.size(); ++i) {
      const Child& c = children_[i];
      backward_child(c, child_node(params, c.name), *cache.steps[i].cache, out.workspace,
                     needs.child(c.name, needs.input), *out.grads.find(c.name), out.parts[i]);
      if (!needs.input) continue;
      if (i == 0)
        out.dx.swap(out.parts[0].dx);
      else
        out.dx += out.parts[i].dx;
    }
  }
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const LayerCall<T>& call, arma::Mat<T>& y) const {
    arma::Mat<T> branch;
    y.zeros(call.output().size(), call.batch());
    for (const Child& c : children_) {
      infer_child(c, child_node(params, c.name), child_node(state, c.name), x, call.input(), branch);
      y += branch;
    }
    y /= T(children_.size());
  }

 private:
  std::vector<Child> children_;
};
// [custom-combinator]

BOOST_AUTO_TEST_CASE(a_user_combinator_passes_every_layer_check_nested_both_ways) {
  const Mean mean({Dense(4, 3), Network{Dense(4, 3), Tanh()}});
  LAYERCACHE_CHECK_GRADIENTS(mean, Shape{4});
  LAYERCACHE_CHECK_CACHE_CONTRACT(mean, Shape{4});
  LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(mean, Shape{4});
  const Network outer{Dense(5, 4), named("mean", mean), Dense(3, 2)};
  LAYERCACHE_CHECK_GRADIENTS(outer, Shape{5});
}

BOOST_AUTO_TEST_CASE(a_user_combinator_gets_the_machinerys_paths_and_entry_checks) {
  const Network outer{named("mean", Mean({Dense(4, 3), Network{Dense(4, 3), Tanh()}}))};
  Rng rng(1);
  auto params = outer.init(Shape{4}, he_normal(), rng);
  BOOST_TEST(params.contains("mean/network1/dense1/weight"));
  params.at("mean/network1/dense1").add("extra", TreeF(arma::fmat(1, 1)));
  BOOST_CHECK_EXCEPTION(outer.forward(params, arma::fmat(4, 2, arma::fill::randn)), ConfigError,
                        [](const ConfigError& e) {
                          return e.path() == "mean/network1/dense1" &&
                                 std::string(e.what()).find("unexpected entry 'extra'") !=
                                     std::string::npos;
                        });
  BOOST_CHECK_EXCEPTION(Mean({Dense(4, 3), Dense(4, 2)}).output_shape(Shape{4}), ShapeError,
                        [](const ShapeError& e) {
                          return std::string(e.what()) ==
                                 "branch dense2 gives another shape than dense1";
                        });
}
