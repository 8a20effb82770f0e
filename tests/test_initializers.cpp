// Specification of the initializers: they draw only from the given stream, have the
// published scale, and reject bad hyper-parameters and names with a ConfigError.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

bool mentions(const std::exception& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(initializers_draw_only_from_the_given_rng) {
  const Dense layer(50, 40);
  Rng a(9), b(9);
  arma::arma_rng::set_seed(1);
  const auto p1 = layer.init(Shape{50}, he_normal(), a);
  arma::arma_rng::set_seed(2);
  const auto p2 = layer.init(Shape{50}, he_normal(), b);
  BOOST_TEST(p1.identical(p2));
}

BOOST_AUTO_TEST_CASE(initializers_have_the_published_scale) {
  const Dense layer(400, 300);
  Rng rng(3);
  auto stddev = [&](const Initializer& init) {
    const auto p = layer.init<double>(Shape{400}, init, rng);
    return arma::stddev(arma::vectorise(p.at("weight").value()));
  };
  BOOST_TEST(std::abs(stddev(he_normal()) - std::sqrt(2.0 / 400)) < 0.002);
  BOOST_TEST(std::abs(stddev(xavier_normal()) - std::sqrt(2.0 / 700)) < 0.002);
  BOOST_TEST(std::abs(stddev(xavier_uniform()) - std::sqrt(6.0 / 700) / std::sqrt(3.0)) < 0.002);
  BOOST_TEST(std::abs(stddev(lecun_normal()) - std::sqrt(1.0 / 400)) < 0.002);
  const auto p = layer.init<double>(Shape{400}, he_normal(), rng);
  BOOST_TEST(arma::accu(arma::abs(p.at("bias").value())) == 0.0);
}

BOOST_AUTO_TEST_CASE(orthogonal_initializer_gives_orthonormal_rows_or_columns) {
  Rng rng(4);
  const auto tall = Dense(5, 8).init<double>(Shape{5}, orthogonal(), rng).at("weight").value();
  BOOST_TEST(arma::norm(tall.t() * tall - arma::eye(5, 5), "inf") < 1e-12);
  const auto wide = Dense(8, 5).init<double>(Shape{8}, orthogonal(), rng).at("weight").value();
  BOOST_TEST(arma::norm(wide * wide.t() - arma::eye(5, 5), "inf") < 1e-12);
}

BOOST_AUTO_TEST_CASE(a_user_callable_is_an_initializer) {
  Initializer sevens = [](arma::mat& out, const TensorSpec& spec, Rng&) {
    out.fill(spec.fan_in == 3 ? 7.0 : 0.0);
  };
  Rng rng(1);
  const auto p = Dense(3, 2).init(Shape{3}, sevens, rng);
  BOOST_TEST(p.at("weight").value()(1, 2) == 7.0f);
}

BOOST_AUTO_TEST_CASE(initializers_reject_a_gain_or_value_that_would_give_nan_or_negated_weights) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  BOOST_CHECK_EXCEPTION(orthogonal(nan), ConfigError, [](const ConfigError& e) {
    return mentions(e, "orthogonal needs a finite gain > 0, got nan");
  });
  BOOST_CHECK_THROW(xavier_uniform(-1.0), ConfigError);
  BOOST_CHECK_THROW(xavier_normal(0.0), ConfigError);
  BOOST_CHECK_THROW(constant(nan), ConfigError);
  BOOST_CHECK_NO_THROW(constant(-0.5));
}

BOOST_AUTO_TEST_CASE(unknown_initializer_name_lists_the_valid_names) {
  BOOST_CHECK_EXCEPTION(Initializer::by_name("xavier"), ConfigError, [](const ConfigError& e) {
    return mentions(e, "unknown initializer 'xavier'") && mentions(e, "he_normal") &&
           mentions(e, "orthogonal");
  });
}
