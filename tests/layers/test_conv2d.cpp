// Specification of Conv2D: agreement with a plain direct convolution, a worked example, its
// declarations and errors. The shared checks run on conv_cases() in test_layers.cpp.
#include <boost/test/unit_test.hpp>

#include <tuple>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "conv_cases.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

// ---- plain reference implementations, written straight from the definitions -------------

// Value of pixel (h, w) of channel c in a sample column of shape (channels, height, width).
std::size_t at(std::size_t c, std::size_t h, std::size_t w, std::size_t height, std::size_t width) {
  return c * height * width + w * height + h;
}

// A direct convolution written from the definition, for any options: taps (kh, kw) dilated,
// strides and padding per axis (where "same" padding falls is taken from the layer), groups.
struct Naive {
  Conv2DOptions o;
  Shape in;  // (c, h, w)
  WindowAxis rows, cols;

  Naive(const Conv2DOptions& options, const Shape& input) : o(options), in(input) {
    std::tie(rows, cols) = Conv2D(options).windows(input);
  }
  std::size_t ho() const { return rows.output; }
  std::size_t wo() const { return cols.output; }

  // Weight column of tap (kh, kw) of input channel ci, counted within its group.
  std::size_t kernel_at(std::size_t ci, std::size_t kh, std::size_t kw) const {
    const std::size_t local = ci % (o.in_channels / o.groups);
    return (local * o.kernel.width + kw) * o.kernel.height + kh;
  }

  // Calls f(oc, i, j, ci, kh, kw, h, w) for every product of a direct convolution whose input
  // pixel (h, w) lies inside the image.
  template <class F>
  void each_term(F f) const {
    const std::size_t per_group_in = o.in_channels / o.groups;
    const std::size_t per_group_out = o.out_channels / o.groups;
    for (std::size_t oc = 0; oc < o.out_channels; ++oc)
      for (std::size_t i = 0; i < ho(); ++i)
        for (std::size_t j = 0; j < wo(); ++j)
          for (std::size_t c = 0; c < per_group_in; ++c)
            for (std::size_t kh = 0; kh < o.kernel.height; ++kh)
              for (std::size_t kw = 0; kw < o.kernel.width; ++kw) {
                const std::size_t ci = oc / per_group_out * per_group_in + c;
                const long h = long(i * o.stride.height + kh * o.dilation.height) -
                               long(rows.pad_before);
                const long w = long(j * o.stride.width + kw * o.dilation.width) -
                               long(cols.pad_before);
                if (h < 0 || w < 0 || h >= long(in[1]) || w >= long(in[2])) continue;
                f(oc, i, j, ci, kh, kw, std::size_t(h), std::size_t(w));
              }
  }

  arma::mat forward(const arma::mat& weight, const arma::mat* bias, const arma::mat& x) const {
    arma::mat y(o.out_channels * ho() * wo(), x.n_cols, arma::fill::zeros);
    for (std::size_t n = 0; n < x.n_cols; ++n) {
      each_term([&](auto oc, auto i, auto j, auto ci, auto kh, auto kw, auto h, auto w) {
        y(at(oc, i, j, ho(), wo()), n) +=
            weight(oc, kernel_at(ci, kh, kw)) * x(at(ci, h, w, in[1], in[2]), n);
      });
      if (bias)
        for (std::size_t oc = 0; oc < o.out_channels; ++oc)
          for (std::size_t p = 0; p < ho() * wo(); ++p) y(oc * ho() * wo() + p, n) += (*bias)(oc);
    }
    return y;
  }

  // dW, db and dx of Σ dy ⊙ y, term by term.
  void backward(const arma::mat& weight, const arma::mat& x, const arma::mat& dy, arma::mat& dw,
                arma::mat& db, arma::mat& dx) const {
    dw.zeros(weight.n_rows, weight.n_cols);
    db.zeros(o.out_channels, 1);
    dx.zeros(x.n_rows, x.n_cols);
    for (std::size_t n = 0; n < x.n_cols; ++n) {
      each_term([&](auto oc, auto i, auto j, auto ci, auto kh, auto kw, auto h, auto w) {
        const double g = dy(at(oc, i, j, ho(), wo()), n);
        dw(oc, kernel_at(ci, kh, kw)) += g * x(at(ci, h, w, in[1], in[2]), n);
        dx(at(ci, h, w, in[1], in[2]), n) += g * weight(oc, kernel_at(ci, kh, kw));
      });
      for (std::size_t oc = 0; oc < o.out_channels; ++oc)
        for (std::size_t p = 0; p < ho() * wo(); ++p) db(oc) += dy(oc * ho() * wo() + p, n);
    }
  }
};

}  // namespace

// ---- Conv2D -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(conv2d_equals_direct_convolution) {
  // The last case is large enough that samples are processed in blocks of several samples,
  // with a remainder block of one, so every path of the blocked im2col is compared.
  std::vector<ConvCase> cases = conv_cases();
  for (const auto& c : conv_option_cases()) cases.push_back(c);
  cases.push_back({"blocked", {.in_channels = 3, .out_channels = 8, .kernel = 3, .padding = 1},
                   Shape{3, 30, 30}});
  // runs of 11 rows, no padding: im2col's plain copies with a remainder (the benchmark CNN's)
  cases.push_back({"odd_runs", {.in_channels = 2, .out_channels = 3, .kernel = 3}, Shape{2, 13, 9}});
  cases.push_back({"blocked_stride2", {.in_channels = 3, .out_channels = 5, .kernel = 4, .stride = 2},
                   Shape{3, 41, 37}});
  cases.push_back({"blocked_groups_dilated_same",
                   {.in_channels = 4, .out_channels = 6, .kernel = {3, 5},
                    .padding = Padding2D::same_size(), .dilation = {1, 2}, .groups = 2},
                   Shape{4, 20, 22}});
  Rng rng(11);
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      const Conv2D conv(c.options);
      const Naive naive(c.options, c.input);
      const auto params = conv.init<double>(c.input, xavier_normal(), rng);
      arma::mat bias = random_matrix(c.options.out_channels, 1, rng);
      auto with_bias = params;
      if (c.options.bias) with_bias.at("bias").value() = bias;
      const arma::mat x = random_matrix(c.input.size(), 9, rng);
      const arma::mat& w = params.at("weight").value();
      const arma::mat expected = naive.forward(w, c.options.bias ? &bias : nullptr, x);

      const auto out = conv.forward(with_bias, x, c.input);
      BOOST_TEST(max_relative_difference(out.y(), expected) <= 1e-13);
      BOOST_TEST(max_relative_difference(conv.infer(with_bias, x, c.input), expected) <= 1e-13);

      const arma::mat dy = random_matrix(expected.n_rows, expected.n_cols, rng);
      arma::mat dw, db, dx;
      naive.backward(w, x, dy, dw, db, dx);
      const auto grads = conv.backward(with_bias, *out.cache, dy);
      BOOST_TEST(max_relative_difference(grads.dx, dx) <= 1e-13);
      BOOST_TEST(max_relative_difference(grads.grads.at("weight").value(), dw) <= 1e-13);
      if (c.options.bias)
        BOOST_TEST(max_relative_difference(grads.grads.at("bias").value(), db) <= 1e-13);
    }
  }
}

BOOST_AUTO_TEST_CASE(conv2d_float_large_batch_matches_double) {
  // Float through the blocked path, against double: accumulations stay accurate in blocks.
  const Conv2DOptions o{.in_channels = 4, .out_channels = 6, .kernel = 3};
  const Shape in{4, 16, 16};
  const Conv2D conv(o);
  Rng rng(5);
  const auto params = conv.init<double>(in, xavier_normal(), rng);
  const arma::mat x = random_matrix(in.size(), 37, rng);
  const arma::mat y = conv.forward(params, x, in).y();
  const arma::fmat yf = conv.forward(convert<float>(params), arma::fmat(arma::conv_to<arma::fmat>::from(x)), in).y();
  BOOST_TEST(max_relative_difference(arma::conv_to<arma::mat>::from(yf), y) <= 1e-5);
}

BOOST_AUTO_TEST_CASE(conv2d_worked_example) {
  // Image [1 2 3; 4 5 6; 7 8 9] (rows h, columns w), stored column by column; kernel
  // [1 2; 3 4] (rows kh, columns kw), weight row [1 3 2 4] (kernel stored column by column).
  const arma::mat x = arma::vec{1, 4, 7, 2, 5, 8, 3, 6, 9};
  Tree<double> params;
  params.add("weight", Tree<double>(arma::mat{{1, 3, 2, 4}}));
  params.add("bias", Tree<double>(arma::mat{0.5}));
  const Conv2D conv({.in_channels = 1, .out_channels = 1, .kernel = 2});
  const arma::mat y = conv.forward(params, x, Shape{1, 3, 3}).y();
  // y(i, j) = x(i, j) + 2 x(i, j+1) + 3 x(i+1, j) + 4 x(i+1, j+1) + 0.5; column by column.
  const arma::mat expected = arma::mat{37.5, 67.5, 47.5, 77.5}.t();
  BOOST_TEST(arma::approx_equal(y, expected, "absdiff", 1e-12), "got\n" << y);

  // Stride 2 and padding 1: only the kernel entries that land inside the image count.
  Tree<double> no_bias;
  no_bias.add("weight", Tree<double>(arma::mat{{1, 3, 2, 4}}));
  const Conv2D strided({.in_channels = 1, .out_channels = 1, .kernel = 2, .stride = 2,
                        .padding = 1, .bias = false});
  const arma::mat ys = strided.forward(no_bias, x, Shape{1, 3, 3}).y();
  // y(0,0) = 4·1, y(1,0) = 2·4 + 4·7, y(0,1) = 3·2 + 4·3, y(1,1) = 5 + 2·6 + 3·8 + 4·9
  const arma::mat expected_s = arma::mat{4, 36, 18, 77}.t();
  BOOST_TEST(arma::approx_equal(ys, expected_s, "absdiff", 1e-12), "got\n" << ys);
}

// The image [1 2 3; 4 5 6; 7 8 9] (rows h, columns w), stored column by column.
const arma::mat image_1_to_9 = arma::vec{1, 4, 7, 2, 5, 8, 3, 6, 9};

BOOST_AUTO_TEST_CASE(conv2d_same_padding_worked_example) {
  // Kernel [1 2; 3 4] (weight row [1 3 2 4]); "same" with an even kernel pads 0 above and left,
  // 1 below and right: y(i, j) = x(i, j) + 2 x(i, j+1) + 3 x(i+1, j) + 4 x(i+1, j+1).
  Tree<double> params;
  params.add("weight", Tree<double>(arma::mat{{1, 3, 2, 4}}));
  const Conv2D conv({.in_channels = 1, .out_channels = 1, .kernel = 2,
                     .padding = Padding2D::same_size(), .bias = false});
  BOOST_TEST((conv.output_shape(Shape{1, 3, 3}) == Shape{1, 3, 3}));
  const arma::mat y = conv.forward(params, image_1_to_9, Shape{1, 3, 3}).y();
  const arma::mat expected = arma::vec{37, 67, 23, 47, 77, 26, 21, 33, 9};
  BOOST_TEST(arma::approx_equal(y, expected, "absdiff", 1e-12), "got\n" << y);
  // stride 2: ⌈3 / 2⌉ = 2 outputs per axis
  const Conv2D strided({.in_channels = 1, .out_channels = 1, .kernel = 3, .stride = 2,
                        .padding = Padding2D::same_size()});
  BOOST_TEST((strided.output_shape(Shape{1, 5, 4}) == Shape{1, 3, 2}));
}

BOOST_AUTO_TEST_CASE(conv2d_dilation_worked_example) {
  // Kernel [1 2; 3 4] dilated by 2 reads the four corners of the 3 × 3 image:
  // y = 1·1 + 2·3 + 3·7 + 4·9 = 64.
  Tree<double> params;
  params.add("weight", Tree<double>(arma::mat{{1, 3, 2, 4}}));
  const Conv2D conv({.in_channels = 1, .out_channels = 1, .kernel = 2, .dilation = 2,
                     .bias = false});
  const auto out = conv.forward(params, image_1_to_9, Shape{1, 3, 3});
  BOOST_TEST((out.shape == Shape{1, 1, 1}));
  BOOST_TEST(out.y()(0) == 64.0);
  // dW is each tap's pixel (weight order), dx puts each tap's weight on its pixel.
  const auto grads = conv.backward(params, *out.cache, arma::mat{1.0});
  BOOST_TEST(arma::approx_equal(grads.grads.at("weight").value(), arma::mat{{1, 7, 3, 9}},
                                "absdiff", 1e-12));
  const arma::mat dx = arma::vec{1, 0, 3, 0, 0, 0, 2, 0, 4};
  BOOST_TEST(arma::approx_equal(grads.dx, dx, "absdiff", 1e-12), "got\n" << grads.dx);
}

BOOST_AUTO_TEST_CASE(conv2d_strides_and_paddings_per_axis_worked_example) {
  // A 1 × 1 kernel of weight 1 with stride (2, 1) and padding (0, 1) picks rows 0 and 2 and
  // adds a column of zeros on each side.
  Tree<double> params;
  params.add("weight", Tree<double>(arma::mat{1.0}));
  const Conv2D conv({.in_channels = 1, .out_channels = 1, .kernel = 1, .stride = {2, 1},
                     .padding = {0, 1}, .bias = false});
  const arma::mat y = conv.forward(params, image_1_to_9, Shape{1, 3, 3}).y();
  BOOST_TEST((conv.output_shape(Shape{1, 3, 3}) == Shape{1, 2, 5}));
  const arma::mat expected = arma::vec{0, 0, 1, 7, 2, 8, 3, 9, 0, 0};
  BOOST_TEST(arma::approx_equal(y, expected, "absdiff", 0.0), "got\n" << y);
}

BOOST_AUTO_TEST_CASE(conv2d_depthwise_worked_example) {
  // Two channels, both the image; groups = 2 with a 1 × 2 kernel: filter 0 = [1 −1] sees only
  // channel 0 (x(i, j) − x(i, j+1) = −1), filter 1 = [2 3] only channel 1.
  Tree<double> params;
  params.add("weight", Tree<double>(arma::mat{{1, -1}, {2, 3}}));
  const Conv2D conv({.in_channels = 2, .out_channels = 2, .kernel = {1, 2}, .groups = 2,
                     .bias = false});
  BOOST_TEST(conv.param_specs(Shape{2, 3, 3})[0].cols == 2u);  // (c / groups)·kh·kw
  const arma::mat x = arma::join_cols(image_1_to_9, image_1_to_9);
  const arma::mat y = conv.forward(params, x, Shape{2, 3, 3}).y();
  const arma::mat expected = arma::vec{-1, -1, -1, -1, -1, -1, 8, 23, 38, 13, 28, 43};
  BOOST_TEST(arma::approx_equal(y, expected, "absdiff", 1e-12), "got\n" << y);
}

BOOST_AUTO_TEST_CASE(conv2d_rejects_groups_that_do_not_divide_the_channels) {
  const std::string e = error_of<ConfigError>(
      [] { Conv2D({.in_channels = 4, .out_channels = 6, .groups = 4}); });
  BOOST_TEST(contains(e, "groups = 4"), e);
  BOOST_CHECK_THROW(Conv2D({.in_channels = 1, .out_channels = 1, .dilation = {1, 0}}), ConfigError);
  BOOST_CHECK_THROW(Conv2D({.in_channels = 1, .out_channels = 1, .kernel = {3, 0}}), ConfigError);
}

BOOST_AUTO_TEST_CASE(conv2d_declares_weight_and_bias_with_fans) {
  const Conv2D conv({.in_channels = 3, .out_channels = 8, .kernel = 5});
  const auto specs = conv.param_specs(Shape{3, 12, 12});
  BOOST_REQUIRE(specs.size() == 2u);
  BOOST_TEST(specs[0].name == "weight");
  BOOST_TEST(specs[0].rows == 8u);
  BOOST_TEST(specs[0].cols == 75u);
  BOOST_TEST(specs[0].fan_in == 75u);
  BOOST_TEST(specs[0].fan_out == 200u);
  BOOST_TEST(specs[1].name == "bias");
  BOOST_TEST(specs[1].rows == 8u);
  BOOST_TEST((conv.output_shape(Shape{3, 12, 12}) == Shape{8, 8, 8}));
  const Conv2D strided({.in_channels = 3, .out_channels = 8, .kernel = 3, .stride = 2, .padding = 1});
  BOOST_TEST((strided.output_shape(Shape{3, 28, 27}) == Shape{8, 14, 14}));
}

BOOST_AUTO_TEST_CASE(conv2d_skips_gradients_nobody_asked_for) {
  const Shape in{2, 6, 5};
  const Network net{named("conv", Conv2D({.in_channels = 2, .out_channels = 3})),
                    named("head", Dense(3 * 4 * 3, 2))};
  Rng rng(3);
  const auto params = net.init<double>(in, xavier_normal(), rng);
  const arma::mat x = random_matrix(in.size(), 4, rng);
  const auto out = net.forward(params, x, in);
  const arma::mat dy = random_matrix(2, 4, rng);
  const auto full = net.backward(params, *out.cache, dy);

  Needs frozen_weight;
  const FrozenSet frozen = freeze(params, {"conv/weight"});
  frozen_weight.frozen = &frozen;
  const auto partial = net.backward(params, *out.cache, dy, frozen_weight);
  BOOST_TEST(partial.grads.at("conv/weight").value().is_empty());
  BOOST_TEST(arma::approx_equal(partial.grads.at("conv/bias").value(),
                                full.grads.at("conv/bias").value(), "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(partial.dx, full.dx, "absdiff", 0.0));

  Needs no_input;
  no_input.input = false;
  const auto first_layer = net.backward(params, *out.cache, dy, no_input);
  BOOST_TEST(first_layer.dx.is_empty());
  BOOST_TEST(arma::approx_equal(first_layer.grads.at("conv/weight").value(),
                                full.grads.at("conv/weight").value(), "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(conv2d_cache_shares_the_input_instead_of_copying_it) {
  const Shape in{1, 6, 6};
  const Network net{Conv2D({.in_channels = 1, .out_channels = 2}), ReLU(),
                    Conv2D({.in_channels = 2, .out_channels = 2})};
  Rng rng(1);
  const auto params = net.init<double>(in, xavier_normal(), rng);
  const auto out = net.forward(params, random_matrix(in.size(), 2, rng), in);
  const auto& steps = dynamic_cast<const NetworkCache<double>&>(*out.cache).steps;
  const auto& conv2 = dynamic_cast<const Conv2DCache<double>&>(*steps[2].cache);
  BOOST_TEST(conv2.x.get() == steps[1].output.get());
}

BOOST_AUTO_TEST_CASE(conv2d_rejects_flat_input_and_names_the_image_shape) {
  const Conv2D conv({.in_channels = 1, .out_channels = 4});
  const std::string flat = shape_error_of([&] { conv.output_shape(Shape{784}); });
  BOOST_TEST(contains(flat, "expected input (1, height, width)"), flat);
  BOOST_TEST(contains(flat, "got (784)"), flat);
  BOOST_TEST(contains(flat, "Shape{1, 28, 28}"), flat);

  const std::string channels = shape_error_of([&] { conv.output_shape(Shape{3, 8, 8}); });
  BOOST_TEST(contains(channels, "expected input (1, height, width)"), channels);
  BOOST_TEST(contains(channels, "got (3, 8, 8)"), channels);

  const std::string small = shape_error_of([&] { conv.output_shape(Shape{1, 2, 8}); });
  BOOST_TEST(contains(small, "at least 3 × 3"), small);
  BOOST_TEST(contains(small, "got (1, 2, 8)"), small);
}

BOOST_AUTO_TEST_CASE(conv2d_shape_error_in_a_network_names_the_layer_path) {
  const Network net{Conv2D({.in_channels = 1, .out_channels = 4}), ReLU(),
                    Conv2D({.in_channels = 3, .out_channels = 4})};
  const std::string e = shape_error_of([&] { net.output_shape(Shape{1, 8, 8}); });
  BOOST_TEST(contains(e, "conv2d2: expected input (3, height, width)"), e);
  BOOST_TEST(contains(e, "got (4, 6, 6)"), e);
}

BOOST_AUTO_TEST_CASE(conv2d_rejects_zero_sizes) {
  BOOST_CHECK_THROW(Conv2D({.in_channels = 0, .out_channels = 4}), ConfigError);
  BOOST_CHECK_THROW(Conv2D({.in_channels = 1, .out_channels = 4, .stride = 0}), ConfigError);
}

// Sizes whose products or sums do not fit are refused when the layer is made, naming the
// value; before, kernel² wrapped to 0, every check passed and infer crashed in im2col.
BOOST_AUTO_TEST_CASE(conv2d_refuses_a_kernel_whose_square_overflows) {
  const std::string e = error_of<ConfigError>([] {
    const Conv2D conv({.in_channels = 1, .out_channels = 1, .kernel = 1ULL << 32,
                       .padding = 1ULL << 31});
    Rng rng(1);
    conv.infer(conv.init<double>(Shape{1, 8, 8}, he_uniform(), rng), arma::mat(64, 1),
               Shape{1, 8, 8});
  });
  BOOST_TEST(contains(e, "kernel"), e);
  BOOST_TEST(contains(e, "4294967296"), e);
}

// Before, 2 × padding wrapped to 2: output_shape reported (2, 8, 8) and infer returned zeros.
BOOST_AUTO_TEST_CASE(conv2d_refuses_a_padding_whose_double_overflows) {
  const std::string e = error_of<ConfigError>([] {
    const Conv2D conv({.in_channels = 1, .out_channels = 2, .kernel = 3,
                       .padding = (1ULL << 63) + 1});
    conv.output_shape(Shape{1, 8, 8});
  });
  BOOST_TEST(contains(e, "padding"), e);
  BOOST_TEST(contains(e, "9223372036854775809"), e);
}

BOOST_AUTO_TEST_CASE(conv2d_refuses_an_input_whose_padded_side_overflows) {
  const Conv2D conv({.in_channels = 1, .out_channels = 1, .kernel = 3, .padding = 1ULL << 61});
  const std::string e = shape_error_of([&] { conv.output_shape(Shape{1, max_size, 1}); });
  BOOST_TEST(contains(e, "height"), e);
}
