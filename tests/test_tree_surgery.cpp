// Specification of tree surgery by path: select, merge and graft, and moving a trained
// encoder into a new network.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

// encoder/{dense1/{weight, bias}, relu1}, head/dense1/{weight, bias}, with distinct values.
TreeF encoder_and_head() {
  TreeF t;
  auto& encoder = t.add("encoder", TreeF());
  auto& dense = encoder.add("dense1", TreeF());
  dense.add("weight", TreeF(arma::fmat(4, 3, arma::fill::value(1.0f))));
  dense.add("bias", TreeF(arma::fmat(4, 1, arma::fill::value(2.0f))));
  encoder.add("relu1", TreeF());
  auto& head = t.add("head", TreeF()).add("dense1", TreeF());
  head.add("weight", TreeF(arma::fmat(2, 4, arma::fill::value(3.0f))));
  head.add("bias", TreeF(arma::fmat(2, 1, arma::fill::value(4.0f))));
  return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tree_surgery)

BOOST_AUTO_TEST_CASE(select_keeps_the_matching_leaves_and_the_branches_leading_to_them) {
  const TreeF t = encoder_and_head();
  const TreeF biases = select(t, {"*/bias"});
  BOOST_TEST(biases.paths() == (std::vector<std::string>{"encoder/dense1/bias", "head/dense1/bias"}));
  BOOST_TEST(biases.at("head/dense1/bias").value()(0, 0) == 4.0f);
  const TreeF encoder = select(t, {"encoder"});  // a branch takes everything beneath it
  BOOST_TEST(encoder.paths() ==
             (std::vector<std::string>{"encoder/dense1/weight", "encoder/dense1/bias"}));
  BOOST_TEST(!encoder.contains("encoder/relu1"));  // branches without a selected leaf are left out
}

BOOST_AUTO_TEST_CASE(select_with_a_pattern_matching_nothing_throws_config_error_listing_the_paths) {
  const TreeF t = encoder_and_head();
  BOOST_CHECK_EXCEPTION(select(t, {"*/bias", "decoder"}), ConfigError, [](const ConfigError& e) {
    const std::string what = e.what();
    return what.find("'decoder'") != std::string::npos &&
           what.find("head/dense1/weight") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(merge_of_disjoint_selections_gives_the_tree_back) {
  const TreeF t = encoder_and_head();
  const TreeF merged = merge(select(t, {"encoder"}), select(t, {"head"}));
  BOOST_TEST(merged.paths() == select(t, {"*"}).paths());
  BOOST_TEST(merged.identical(select(t, {"*"})));
  // Leaves of the same branch from both sides are merged into one branch.
  const TreeF by_kind = merge(select(t, {"*/weight"}), select(t, {"*/bias"}));
  BOOST_TEST(by_kind.at("encoder/dense1").size() == 2u);
  BOOST_TEST(by_kind.at("encoder/dense1").name(0) == "weight");
}

BOOST_AUTO_TEST_CASE(merge_of_a_leaf_in_both_trees_throws_config_error_naming_the_path) {
  const TreeF t = encoder_and_head();
  BOOST_CHECK_EXCEPTION(merge(select(t, {"encoder"}), select(t, {"*/bias"})), ConfigError,
                        [](const ConfigError& e) { return e.path() == "encoder/dense1/bias"; });
}

BOOST_AUTO_TEST_CASE(merge_resolves_a_conflict_when_asked) {
  const TreeF t = encoder_and_head();
  const TreeF ones = map(t, [](const std::string&, const arma::fmat& m) {
    return arma::fmat(m.n_rows, m.n_cols, arma::fill::ones);
  });
  const TreeF first = merge(t, ones, {.on_conflict = MergeConflict::keep_first});
  const TreeF second = merge(t, ones, {.on_conflict = MergeConflict::take_second});
  BOOST_TEST(first.identical(t));
  BOOST_TEST(second.identical(ones));
}

BOOST_AUTO_TEST_CASE(merge_of_a_leaf_and_a_branch_at_one_path_throws_even_when_conflicts_are_allowed) {
  TreeF a;
  a.add("encoder", TreeF(arma::fmat(1, 1)));
  const TreeF b = encoder_and_head();
  BOOST_CHECK_EXCEPTION(merge(a, b, {.on_conflict = MergeConflict::take_second}), ConfigError,
                        [](const ConfigError& e) { return e.path() == "encoder"; });
}

BOOST_AUTO_TEST_CASE(graft_replaces_a_subtree_of_the_same_structure) {
  TreeF target = encoder_and_head();
  TreeF source = encoder_and_head();
  source.at("encoder/dense1/weight").value().fill(7.0f);
  graft(target, "encoder", source.at("encoder"));
  BOOST_TEST(target.at("encoder").identical(source.at("encoder")));
  BOOST_TEST(target.at("head/dense1/weight").value()(0, 0) == 3.0f);  // the rest untouched
}

BOOST_AUTO_TEST_CASE(graft_of_another_shape_throws_shape_error_naming_the_full_path_and_changes_nothing) {
  TreeF target = encoder_and_head();
  TreeF source = encoder_and_head();
  source.at("encoder/dense1/weight").value().set_size(5, 3);
  source.at("encoder/dense1/bias").value().fill(9.0f);
  const TreeF before = target;
  BOOST_CHECK_EXCEPTION(graft(target, "encoder", source.at("encoder")), ShapeError,
                        [](const ShapeError& e) {
                          return e.path() == "encoder/dense1/weight" &&
                                 std::string(e.what()).find("(4 × 3)") != std::string::npos;
                        });
  BOOST_TEST(target.identical(before));
}

BOOST_AUTO_TEST_CASE(graft_of_other_entries_throws_config_error_naming_the_path) {
  TreeF target = encoder_and_head();
  const TreeF source = encoder_and_head();
  const TreeF before = target;
  BOOST_CHECK_EXCEPTION(graft(target, "head", source.at("encoder/dense1")), ConfigError,
                        [](const ConfigError& e) {
                          return e.path() == "head" &&
                                 e.detail() == "expected entry 'dense1', found 'weight' in the "
                                               "grafted subtree";
                        });
  BOOST_TEST(target.identical(before));
  BOOST_CHECK_EXCEPTION(graft(target, "decoder", source.at("head")), ConfigError,
                        [](const ConfigError& e) { return e.path().empty(); });
}

BOOST_AUTO_TEST_CASE(a_trained_encoder_moves_into_a_classifier_and_computes_the_same_features) {
  // [graft-encoder]
  const Network encoder{Dense(6, 4), Tanh(), Dense(4, 3)};
  const Network autoencoder{named("encoder", encoder), named("decoder", Network{Dense(3, 6)})};
  const Network classifier{named("encoder", encoder), named("head", Network{Dense(3, 2)})};
  const Shape input{6};
  Rng rng(3);
  const TreeF trained = autoencoder.init(input, he_normal(), rng);
  TreeF params = classifier.init(input, he_normal(), rng);
  graft(params, "encoder", trained.at("encoder"));
  // [graft-encoder]
  const arma::fmat x(6, 5, arma::fill::randn);
  BOOST_TEST(arma::approx_equal(encoder.infer(params.at("encoder"), x, input),
                                encoder.infer(trained.at("encoder"), x, input), "absdiff", 0.0f));
  // The decoder's (6 × 3) weight does not fit where the head's (2 × 3) one is.
  BOOST_CHECK_EXCEPTION(graft(params, "head", trained.at("decoder")), ShapeError,
                        [](const ShapeError& e) { return e.path() == "head/dense1/weight"; });
}

BOOST_AUTO_TEST_SUITE_END()
