// Specification of Graph: nodes by name, merges, values read twice, shared layers, several
// inputs and outputs, and the errors of a description that is not a DAG from the inputs to
// the outputs. Its gradient, cache-contract and float/double checks are rows of the table in
// test_layers.cpp.
#include <boost/test/unit_test.hpp>

#include "layer_test_support.hpp"
#include "layercache/layercache.hpp"
#include "layercache/testing.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(a_chain_written_as_a_graph_equals_the_network_bit_for_bit) {
  const Network net{named("a", Dense(4, 6)), named("b", Tanh()), named("c", Dense(6, 3))};
  const Graph graph({.inputs = {{"x", Shape{4}}},
                     .nodes = {{.name = "a", .layer = Dense(4, 6), .inputs = {"x"}},
                               {.name = "b", .layer = Tanh(), .inputs = {"a"}},
                               {.name = "c", .layer = Dense(6, 3), .inputs = {"b"}}},
                     .outputs = {"c"}});
  Rng rng(1);
  const auto params = net.init<double>(Shape{4}, he_normal(), rng);
  Rng rng2(1);
  BOOST_TEST(graph.init<double>(Shape{4}, he_normal(), rng2).identical(params));
  const arma::mat x = random_batch(4, 5, 2), dy = random_batch(3, 5, 3);
  const auto fn = net.forward(params, x);
  const auto fg = graph.forward(params, x);
  BOOST_TEST(arma::approx_equal(fg.y(), fn.y(), "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(graph.infer(params, x), net.infer(params, x), "absdiff", 0.0));
  const auto bn = net.backward(params, *fn.cache, dy);
  const auto bg = graph.backward(params, *fg.cache, dy);
  BOOST_TEST(arma::approx_equal(bg.dx, bn.dx, "absdiff", 0.0));
  BOOST_TEST(bg.grads.identical(bn.grads));
}

BOOST_AUTO_TEST_CASE(nodes_run_in_the_order_their_inputs_allow_whatever_order_they_are_given) {
  const Graph graph({.inputs = {{"x", Shape{3}}},
                     .nodes = {{.name = "late", .layer = Dense(2, 2), .inputs = {"early"}},
                               {.name = "early", .layer = Dense(3, 2), .inputs = {"x"}}},
                     .outputs = {"late"}});
  Rng rng(2);
  const auto params = graph.init<double>(Shape{3}, he_normal(), rng);
  BOOST_TEST(params.name(0) == "late");  // params follow the order given
  const arma::mat x = random_batch(3, 4, 4);
  const arma::mat expected = Dense(2, 2).infer(params.at("late"),
                                               Dense(3, 2).infer(params.at("early"), x));
  BOOST_TEST(arma::approx_equal(graph.forward(params, x).y(), expected, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(a_value_read_by_two_nodes_gets_the_sum_of_their_gradients) {
  // y = a(x) + b(a(x)): x's gradient flows through a twice.
  const Graph graph({.inputs = {{"x", Shape{3}}},
                     .nodes = {{.name = "a", .layer = Dense(3, 3), .inputs = {"x"}},
                               {.name = "b", .layer = Tanh(), .inputs = {"a"}},
                               {.name = "sum", .inputs = {"a", "b"}, .merge = Merge::add}},
                     .outputs = {"sum"}});
  const auto r = testing::check_gradients(graph, Shape{3});
  BOOST_TEST(r.passed, r.report());
  Rng rng(3);
  const auto params = graph.init<double>(Shape{3}, he_normal(), rng);
  const arma::mat x = random_batch(3, 4, 5);
  const arma::mat a = Dense(3, 3).infer(params.at("a"), x);
  BOOST_TEST(arma::abs(graph.forward(params, x).y() - (a + arma::tanh(a))).max() < 1e-15);
}

BOOST_AUTO_TEST_CASE(a_shared_layer_has_one_params_entry_and_the_sum_of_both_uses_gradients) {
  const Network encoder{Dense(3, 4), Tanh()};
  const Graph siamese({.inputs = {{"left", Shape{3}}, {"right", Shape{3}}},
                       .nodes = {{.name = "embed_left", .layer = encoder, .inputs = {"left"}},
                                 {.name = "embed_right", .inputs = {"right"},
                                  .shares = "embed_left"},
                                 {.name = "difference", .inputs = {"embed_left", "embed_right"},
                                  .merge = Merge::subtract}},
                       .outputs = {"difference"}});
  Rng rng(4);
  const auto params = siamese.init<double>(Shape{6}, he_normal(), rng);
  BOOST_TEST(params.size() == 1u);  // embed_left only: the weights are stored once
  BOOST_TEST(params.contains("embed_left/dense1/weight"));
  const arma::mat left = random_batch(3, 5, 6), right = random_batch(3, 5, 7);
  const arma::mat dy = random_batch(4, 5, 8);
  const arma::mat x = arma::join_cols(left, right);
  const auto out = siamese.forward(params, x);
  const TreeD& p = params.at("embed_left");
  BOOST_TEST(arma::abs(out.y() - (encoder.infer(p, left) - encoder.infer(p, right))).max() <
             1e-15);
  // The gradient of the shared weights is the sum of the two uses' gradients.
  const auto g = siamese.backward(params, *out.cache, dy);
  const auto gl = encoder.backward(p, *encoder.forward(p, left).cache, dy);
  const auto gr = encoder.backward(p, *encoder.forward(p, right).cache, arma::mat(-dy));
  g.grads.at("embed_left").for_each([&](const std::string& path, const arma::mat& grad) {
    const arma::mat expected = gl.grads.at(path).value() + gr.grads.at(path).value();
    BOOST_TEST(arma::abs(grad - expected).max() < 1e-12, path);
  });
  BOOST_TEST(arma::abs(g.dx.rows(0, 2) - gl.dx).max() < 1e-12);
  BOOST_TEST(arma::abs(g.dx.rows(3, 5) - gr.dx).max() < 1e-12);
  const auto r = testing::check_gradients(siamese, Shape{6});
  BOOST_TEST(r.passed, r.report());
}

BOOST_AUTO_TEST_CASE(several_outputs_are_one_after_another_in_each_sample) {
  const Graph graph({.inputs = {{"x", Shape{3}}},
                     .nodes = {{.name = "a", .layer = Dense(3, 2), .inputs = {"x"}},
                               {.name = "b", .layer = Dense(3, 4), .inputs = {"x"}}},
                     .outputs = {"b", "a"}});
  BOOST_TEST((graph.output_shape(Shape{3}) == Shape{6}));
  Rng rng(5);
  const auto params = graph.init<double>(Shape{3}, he_normal(), rng);
  const arma::mat x = random_batch(3, 4, 9);
  const arma::mat y = graph.forward(params, x).y();
  BOOST_TEST(arma::approx_equal(y.rows(0, 3), Dense(3, 4).infer(params.at("b"), x), "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(y.rows(4, 5), Dense(3, 2).infer(params.at("a"), x), "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(a_description_that_is_not_a_dag_from_inputs_to_outputs_is_a_config_error) {
  const auto bad = [](GraphSpec spec) { return error_of<ConfigError>([&] { Graph g(spec); }); };
  BOOST_TEST(contains(bad({.inputs = {{"x", Shape{2}}},
                           .nodes = {{.name = "a", .layer = Dense(2, 2), .inputs = {"b"}},
                                     {.name = "b", .layer = Dense(2, 2), .inputs = {"a"}}},
                           .outputs = {"a"}}),
                      "the graph has a cycle: nodes a, b"));
  BOOST_TEST(contains(bad({.inputs = {{"x", Shape{2}}},
                           .nodes = {{.name = "a", .layer = Dense(2, 2), .inputs = {"y"}}},
                           .outputs = {"a"}}),
                      "a: reads 'y', which is neither an input nor a node"));
  BOOST_TEST(contains(bad({.inputs = {{"x", Shape{2}}, {"unused", Shape{2}}},
                           .nodes = {{.name = "a", .layer = Dense(2, 2), .inputs = {"x"}}},
                           .outputs = {"a"}}),
                      "input 'unused' is not read"));
  BOOST_TEST(contains(bad({.inputs = {{"x", Shape{2}}},
                           .nodes = {{.name = "a", .layer = Dense(2, 2), .inputs = {"x"}},
                                     {.name = "dead", .layer = Dense(2, 2), .inputs = {"x"}}},
                           .outputs = {"a"}}),
                      "dead: node leads to no output"));
  BOOST_TEST(contains(bad({.inputs = {{"x", Shape{2}}},
                           .nodes = {{.name = "a", .layer = Dense(2, 2), .inputs = {"x"}}},
                           .outputs = {"x"}}),
                      "output 'x' is not a node"));
  BOOST_TEST(contains(bad({.inputs = {{"x", Shape{2}}},
                           .nodes = {{.name = "x", .layer = Dense(2, 2), .inputs = {"x"}}},
                           .outputs = {"x"}}),
                      "two inputs or nodes named 'x'"));
  BOOST_TEST(contains(bad({.inputs = {{"x", Shape{2}}},
                           .nodes = {{.name = "m", .inputs = {"x", "x"}, .merge = Merge::add},
                                     {.name = "s", .inputs = {"m"}, .shares = "m"}},
                           .outputs = {"s"}}),
                      "s: shares node 'm', which has no layer of its own"));
}

BOOST_AUTO_TEST_CASE(shapes_a_merge_cannot_join_are_a_shape_error_naming_the_node_and_values) {
  const Graph graph({.inputs = {{"x", Shape{3}}},
                     .nodes = {{.name = "a", .layer = Dense(3, 2), .inputs = {"x"}},
                               {.name = "b", .layer = Dense(3, 4), .inputs = {"x"}},
                               {.name = "sum", .inputs = {"a", "b"}, .merge = Merge::add}},
                     .outputs = {"sum"}});
  const std::string e = error_of<ShapeError>([&] { graph.output_shape(Shape{3}); });
  BOOST_TEST(contains(e, "sum: cannot add 'a' (2) with 'b' (4)"), e);
  const std::string wrong_input = error_of<ShapeError>([&] { graph.output_shape(Shape{4}); });
  BOOST_TEST(contains(wrong_input, "expected input (3) (the graph's input 'x'), got (4)"),
             wrong_input);
}

BOOST_AUTO_TEST_CASE(a_nan_inside_a_graph_names_the_node_and_the_layer_inside_it) {
  const Graph graph({.inputs = {{"x", Shape{3}}},
                     .nodes = {{.name = "stem", .layer = Network{Dense(3, 3), Tanh()},
                                .inputs = {"x"}},
                               {.name = "head", .layer = Dense(3, 2), .inputs = {"stem"}}},
                     .outputs = {"head"}});
  Rng rng(6);
  auto params = graph.init(Shape{3}, he_normal(), rng);
  params.at("stem/dense1/bias").value()(1, 0) = arma::datum::nan;
  Context ctx;
  ctx.check_finite = true;
  BOOST_CHECK_EXCEPTION(graph.forward(params, arma::fmat(3, 2, arma::fill::randn), ctx),
                        NumericError, [](const NumericError& e) {
                          return std::string(e.what()) == "stem/dense1: output contains NaN or Inf";
                        });
}
