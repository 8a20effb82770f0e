// Specification of the random stream: the same seed gives the same draws, and the draws
// have the moments of their distributions.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>

#include "layercache/layercache.hpp"
#include "support/temp_dir.hpp"

using namespace layercache;

BOOST_AUTO_TEST_CASE(same_seed_gives_the_same_random_stream) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) BOOST_TEST(a.next() == b.next());
  BOOST_TEST(Rng(42).next() != c.next());
}

BOOST_AUTO_TEST_CASE(rng_distributions_have_the_right_moments) {
  Rng rng(5);
  const int n = 200000;
  double sum = 0, sum_sq = 0, usum = 0;
  for (int i = 0; i < n; ++i) {
    const double v = rng.normal();
    sum += v;
    sum_sq += v * v;
    usum += rng.uniform();
  }
  BOOST_TEST(std::abs(sum / n) < 0.01);
  BOOST_TEST(std::abs(sum_sq / n - 1.0) < 0.01);
  BOOST_TEST(std::abs(usum / n - 0.5) < 0.005);
  for (int i = 0; i < 1000; ++i) BOOST_TEST(rng.below(7) < 7u);
}

BOOST_AUTO_TEST_CASE(a_stream_restored_from_its_state_continues_draw_for_draw) {
  Rng rng(7);
  for (int i = 0; i < 5; ++i) rng.normal();
  Rng restored = Rng::from_state(rng.state());
  for (int i = 0; i < 100; ++i) BOOST_TEST(restored.next() == rng.next());
  BOOST_CHECK_THROW(Rng::from_state(Rng::State{}), ConfigError);
}

BOOST_AUTO_TEST_CASE(the_rng_state_saved_in_a_checkpoint_by_path_continues_the_same_stream) {
  Rng rng(99);
  rng.next();
  const Rng::State before = rng.state();
  TreeF run;
  run.add("rng", rng_to_tree<float>(rng));
  const testing_files::TempDir tmp("layercache-rng");
  save_checkpoint(tmp.file("run.h5"), {{"run", &run}});
  const Checkpoint<float> loaded = load_checkpoint<float>(tmp.file("run.h5"));
  Rng restored = rng_from_tree(loaded.trees.at("run/rng"));
  BOOST_TEST((restored.state() == before));
  for (int i = 0; i < 100; ++i) BOOST_TEST(restored.next() == rng.next());
  // The same leaf in double, and converted between the element types.
  Rng twin = rng_from_tree(convert<double>(rng_to_tree<float>(rng)));
  BOOST_TEST(twin.next() == rng.next());
}

BOOST_AUTO_TEST_CASE(a_tree_that_is_not_an_rng_state_is_a_data_error_naming_the_bad_value) {
  BOOST_CHECK_THROW(rng_from_tree(TreeF(arma::fmat(3, 1, arma::fill::ones))), DataError);
  BOOST_CHECK_THROW(rng_from_tree(TreeF()), DataError);
  BOOST_CHECK_THROW(rng_from_tree(TreeD(arma::mat(16, 1, arma::fill::zeros))), DataError);
  arma::mat pieces = rng_to_tree<double>(Rng(3)).value();
  pieces(5, 0) = 0.5;
  try {
    rng_from_tree(TreeD(pieces));
    BOOST_FAIL("a fractional piece was accepted");
  } catch (const DataError& e) {
    BOOST_TEST(std::string(e.what()).find("row 5 holds 0.5") != std::string::npos);
  }
  pieces(5, 0) = 65536;
  BOOST_CHECK_THROW(rng_from_tree(TreeD(pieces)), DataError);
}
