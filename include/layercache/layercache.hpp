// layercache: a neural-network library in functional style on Armadillo.
//
// Data layout: one sample per column. A batch is an arma::Mat<T> of (features × batch);
// a dense weight is (n_out × n_in) and y = W x + b. An image sample is one column holding the
// channels one after another, each channel an (height × width) matrix in Armadillo's
// column-major order (the memory order of arma::Cube<T>(h, w, c)). A sequence sample of T
// steps of F features is one column too, step t at rows [t·F, (t+1)·F) (docs/sequences.md).
//
// Layers hold hyper-parameters only. forward(params, x, ctx) returns the output and a cache;
// backward(params, cache, dy, needs) returns dx and the parameter gradients. Params, grads,
// state and optimizer state are trees of tensors addressed by path ("encoder/dense1/weight").
// See docs/contract.md.
#pragma once

#include "layercache/blas.hpp"
#include "layercache/checkpoint.hpp"
#include "layercache/combinator.hpp"
#include "layercache/data.hpp"
#include "layercache/errors.hpp"
#include "layercache/initializers.hpp"
#include "layercache/layer.hpp"
#include "layercache/layer_impl.hpp"
#include "layercache/layers/activations.hpp"
#include "layercache/layers/avg_pool2d.hpp"
#include "layercache/layers/conv2d.hpp"
#include "layercache/layers/dense.hpp"
#include "layercache/layers/elementwise.hpp"
#include "layercache/layers/flatten.hpp"
#include "layercache/layers/graph.hpp"
#include "layercache/layers/identity.hpp"
#include "layercache/layers/max_pool2d.hpp"
#include "layercache/layers/parallel.hpp"
#include "layercache/layers/reshape.hpp"
#include "layercache/layers/residual.hpp"
#include "layercache/layers/softmax.hpp"
#include "layercache/layers/window2d.hpp"
#include "layercache/layers/batch_norm.hpp"
#include "layercache/layers/layer_norm.hpp"
#include "layercache/layers/dropout.hpp"
#include "layercache/layers/simple_rnn.hpp"
#include "layercache/layers/lstm.hpp"
#include "layercache/layers/gru.hpp"
#include "layercache/layers/embedding.hpp"
#include "layercache/layers/time_distributed.hpp"
#include "layercache/layers/bidirectional.hpp"
#include "layercache/layout.hpp"
#include "layercache/losses.hpp"
#include "layercache/network.hpp"
#include "layercache/onnx.hpp"
#include "layercache/optimizers.hpp"
#include "layercache/rng.hpp"
#include "layercache/shape.hpp"
#include "layercache/sizes.hpp"
#include "layercache/summary.hpp"
#include "layercache/train_state.hpp"
#include "layercache/training.hpp"
#include "layercache/tree.hpp"
#include "layercache/tree_surgery.hpp"
#include "layercache/distributed.hpp"
#include "layercache/sequence_losses.hpp"
