// Specification of trees of tensors addressed by path.
#define BOOST_TEST_MODULE core
#include <boost/test/unit_test.hpp>

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
