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

}  // namespace layer_tests
