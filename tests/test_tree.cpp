// Specification of trees of tensors addressed by path.
#define BOOST_TEST_MODULE core
#include <boost/test/unit_test.hpp>
#include <utility>

#include "layercache/layercache.hpp"

using namespace layercache;

BOOST_AUTO_TEST_CASE(tree_finds_leaves_by_path) {
  TreeF t;
  t.add("enc", TreeF()).add("dense1", TreeF()).add("weight", TreeF(arma::fmat(2, 3, arma::fill::ones)));
  BOOST_TEST(t.at("enc/dense1/weight").value().n_cols == 3u);
  BOOST_TEST(t.contains("enc/dense1"));
  BOOST_TEST(!t.contains("enc/dense2"));
  BOOST_TEST(t.paths().front() == "enc/dense1/weight");
}

namespace {

TreeF two_layer_tree() {
  TreeF t;
  auto& d1 = t.add("dense1", TreeF());
  d1.add("weight", TreeF(arma::fmat(3, 2, arma::fill::ones)));
  d1.add("bias", TreeF(arma::fmat(3, 1, arma::fill::zeros)));
  t.add("relu1", TreeF());
  auto& d2 = t.add("dense2", TreeF());
  d2.add("weight", TreeF(arma::fmat(1, 3, arma::fill::ones)));
  return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(count_and_n_tensors_sum_over_leaves) {
  const TreeF t = two_layer_tree();
  BOOST_TEST(t.count() == 6u + 3u + 3u);
  BOOST_TEST(t.n_tensors() == 3u);
  BOOST_TEST(t.bytes() == 12u * sizeof(float));
}

BOOST_AUTO_TEST_CASE(zeros_like_keeps_structure_and_zeroes_values) {
  const TreeF t = two_layer_tree();
  const TreeF z = zeros_like(t);
  BOOST_TEST(z.same_structure(t));
  BOOST_TEST(arma::accu(arma::abs(z.at("dense1/weight").value())) == 0.0f);
}

BOOST_AUTO_TEST_CASE(map_applies_a_function_with_the_path) {
  const TreeF t = two_layer_tree();
  std::vector<std::string> seen;
  const TreeF doubled = map(t, [&](const std::string& path, const arma::fmat& m) {
    seen.push_back(path);
    return arma::fmat(2 * m);
  });
  BOOST_TEST(doubled.at("dense2/weight").value()(0, 1) == 2.0f);
  BOOST_TEST(seen == (std::vector<std::string>{"dense1/weight", "dense1/bias", "dense2/weight"}));
}

BOOST_AUTO_TEST_CASE(zip_combines_two_trees_leaf_by_leaf) {
  const TreeF a = two_layer_tree();
  const TreeF b = map(a, [](const std::string&, const arma::fmat& m) { return arma::fmat(m + 1); });
  const TreeF sum = zip(a, b, [](const std::string&, const arma::fmat& x, const arma::fmat& y) {
    return arma::fmat(x + y);
  });
  BOOST_TEST(sum.at("dense1/weight").value()(0, 0) == 3.0f);
  BOOST_TEST(sum.at("dense1/bias").value()(0, 0) == 1.0f);
}

BOOST_AUTO_TEST_CASE(zip_of_different_structures_names_the_first_difference) {
  const TreeF a = two_layer_tree();
  TreeF b = two_layer_tree();
  b.at("dense1/bias").value().set_size(4, 1);
  auto add = [](const std::string&, const arma::fmat& x, const arma::fmat& y) { return arma::fmat(x + y); };
  BOOST_CHECK_EXCEPTION(zip(a, b, add), ShapeError,
                        [](const ShapeError& e) { return e.path() == "dense1/bias"; });
}

BOOST_AUTO_TEST_CASE(flatten_lists_leaves_in_order) {
  const TreeF t = two_layer_tree();
  const auto flat = flatten(t);
  BOOST_TEST(flat.size() == 3u);
  BOOST_TEST(flat[1].first == "dense1/bias");
  BOOST_TEST(flat[1].second == &t.at("dense1/bias").value());
}

BOOST_AUTO_TEST_CASE(missing_path_lists_what_exists) {
  const TreeF t = two_layer_tree();
  BOOST_CHECK_EXCEPTION(t.at("dense1/kernel"), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()) == "dense1: no entry 'kernel' here (it has: weight, bias)";
  });
}

BOOST_AUTO_TEST_CASE(a_child_index_past_the_end_throws_config_error_listing_the_children) {
  TreeF t = two_layer_tree();
  BOOST_CHECK_EXCEPTION(t.at("dense1").child(2), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()) == "no child 2 (of 2): it has: weight, bias";
  });
  BOOST_CHECK_THROW(std::as_const(t).name(99), ConfigError);
  BOOST_CHECK_THROW(t.at("dense1/weight").child(0), ConfigError);
}

BOOST_AUTO_TEST_CASE(glob_patterns_match_paths) {
  BOOST_TEST(path_matches("dense1/*", "dense1/weight"));
  BOOST_TEST(!path_matches("dense1/*", "dense10/weight"));
  BOOST_TEST(path_matches("encoder", "encoder/block1/dense/weight"));
  BOOST_TEST(!path_matches("encoder", "encoder2/weight"));
  BOOST_TEST(path_matches("*/bias", "encoder/dense1/bias"));
  BOOST_TEST(path_matches("dense?/weight", "dense2/weight"));
}

BOOST_AUTO_TEST_CASE(a_pattern_with_wildcards_matching_a_branch_matches_everything_beneath_it) {
  BOOST_TEST(path_matches("*/dense1", "encoder/dense1/weight"));
  BOOST_TEST(path_matches("enc*der/dense?", "encoder/dense1/bias"));
  BOOST_TEST(!path_matches("*/dense1", "encoder/dense10/weight"));
  BOOST_TEST(!path_matches("*/dense1", "encoder/dense2/weight"));
}

BOOST_AUTO_TEST_CASE(freeze_marks_matching_leaves_and_rejects_unmatched_patterns) {
  const TreeF t = two_layer_tree();
  const FrozenSet frozen = freeze(t, {"dense1/*"});
  BOOST_TEST(frozen.contains("dense1/weight"));
  BOOST_TEST(frozen.contains("dense1/bias"));
  BOOST_TEST(!frozen.contains("dense2/weight"));
  BOOST_CHECK_EXCEPTION(freeze(t, {"dense3/*"}), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()).find("dense2/weight") != std::string::npos;
  });
}
