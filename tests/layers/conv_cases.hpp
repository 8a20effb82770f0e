// The small Conv2D configurations every convolution test runs on: the shared checks of
// test_layers.cpp and the direct-convolution comparison of test_conv2d.cpp.
#pragma once

#include <vector>

#include "layercache/layercache.hpp"

namespace layer_tests {

struct ConvCase {
  const char* name;
  layercache::Conv2DOptions options;
  layercache::Shape input;
};

// Small shapes covering stride 1 and 2, padding 0 and 1, with and without bias.
inline std::vector<ConvCase> conv_cases() {
  return {
      {"stride1_pad0", {.in_channels = 2, .out_channels = 3, .kernel = 3}, layercache::Shape{2, 6, 5}},
      {"stride1_pad1", {.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1},
       layercache::Shape{2, 6, 5}},
      {"stride2_pad0", {.in_channels = 2, .out_channels = 3, .kernel = 3, .stride = 2},
       layercache::Shape{2, 6, 5}},
      {"stride2_pad1", {.in_channels = 2, .out_channels = 3, .kernel = 3, .stride = 2, .padding = 1},
       layercache::Shape{2, 6, 5}},
      {"kernel2_no_bias", {.in_channels = 2, .out_channels = 3, .kernel = 2, .bias = false},
       layercache::Shape{2, 6, 5}},
      {"kernel1", {.in_channels = 2, .out_channels = 3, .kernel = 1}, layercache::Shape{2, 4, 3}},
      {"stride1_padding_wider_than_kernel",
       {.in_channels = 1, .out_channels = 2, .kernel = 2, .padding = 2}, layercache::Shape{1, 3, 4}},
      {"padding_wider_than_kernel", {.in_channels = 1, .out_channels = 2, .kernel = 2, .stride = 3, .padding = 3},
       layercache::Shape{1, 3, 4}},
  };
}

// Rectangular kernels, strides, paddings and dilations per axis, "same" padding and groups,
// compared with a direct convolution in test_conv2d.cpp (a row each in test_layers.cpp's table
// runs the shared checks on the same options).
inline std::vector<ConvCase> conv_option_cases() {
  using layercache::Padding2D;
  using layercache::Shape;
  return {
      {"rectangular_kernel", {.in_channels = 2, .out_channels = 3, .kernel = {2, 3}}, Shape{2, 6, 5}},
      {"strides_and_paddings_per_axis",
       {.in_channels = 2, .out_channels = 3, .kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 2}},
       Shape{2, 6, 5}},
      {"same_padding_odd_kernel",
       {.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = Padding2D::same_size()},
       Shape{2, 6, 5}},
      {"same_padding_even_kernel_stride2",
       {.in_channels = 2, .out_channels = 2, .kernel = {4, 2}, .stride = 2,
        .padding = Padding2D::same_size()},
       Shape{2, 7, 5}},
      {"dilation2", {.in_channels = 2, .out_channels = 3, .kernel = 3, .dilation = 2}, Shape{2, 7, 6}},
      {"dilation_per_axis_with_padding",
       {.in_channels = 1, .out_channels = 2, .kernel = {2, 3}, .padding = {1, 2}, .dilation = {3, 2}},
       Shape{1, 6, 5}},
      {"dilation_wider_than_the_output",
       {.in_channels = 1, .out_channels = 1, .kernel = 2, .padding = 1, .dilation = 4},
       Shape{1, 4, 4}},
      {"groups2", {.in_channels = 4, .out_channels = 6, .kernel = 3, .padding = 1, .groups = 2},
       Shape{4, 5, 4}},
      {"depthwise", {.in_channels = 3, .out_channels = 3, .kernel = 3, .stride = 2, .groups = 3},
       Shape{3, 6, 7}},
      {"depthwise_multiplier2_same_dilated",
       {.in_channels = 2, .out_channels = 4, .kernel = 3, .padding = Padding2D::same_size(),
        .dilation = 2, .groups = 2, .bias = false},
       Shape{2, 5, 6}},
  };
}

}  // namespace layer_tests
