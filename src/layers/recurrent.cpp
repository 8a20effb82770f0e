// What the recurrent layers share: option checks, shapes, lengths and param specs.
#include "recurrent.hpp"

namespace layercache::detail {

void check_recurrent_options(const RecurrentOptions& o, std::size_t gates, const char* kind) {
  if (o.n_in == 0 || o.n_hidden == 0)
    throw ConfigError(std::string(kind) + " needs positive sizes, got n_in = " +
                      std::to_string(o.n_in) + ", n_hidden = " + std::to_string(o.n_hidden));
  const std::size_t rows = checked_mul(gates, o.n_hidden, "rows of the weights gates × n_hidden");
  checked_mul(rows, checked_add(o.n_in, o.n_hidden, "n_in + n_hidden"),
              "values of the weights (gates × n_hidden) × (n_in + n_hidden)");
}

std::size_t recurrent_steps(const RecurrentOptions& o, std::size_t state, const Shape& input) {
  const std::size_t before = o.initial_state ? state : 0;
  const std::size_t size = input.size();
  if (size <= before || (size - before) % o.n_in != 0)
    throw ShapeError("expected input of " +
                     (before ? "the initial state (" + std::to_string(before) + ") and " : std::string()) +
                     "T ≥ 1 steps of " + std::to_string(o.n_in) + " features (" +
                     (before ? std::to_string(before) + " + " : std::string()) + "T × " +
                     std::to_string(o.n_in) + " values), got " + input.str());
  return (size - before) / o.n_in;
}

Shape recurrent_output_shape(const RecurrentOptions& o, std::size_t state, const Shape& input) {
  const std::size_t steps = recurrent_steps(o, state, input);
  const std::size_t out = o.return_sequences ? checked_mul(steps, o.n_hidden, "T × n_hidden") : o.n_hidden;
  if (o.return_state) return Shape{checked_add(out, state, "output + state rows")};
  if (o.return_sequences) return Shape{steps, o.n_hidden};
  return Shape{o.n_hidden};
}

void sequence_lengths(const Context& ctx, std::size_t batch, std::size_t steps,
                      std::vector<std::size_t>& lengths) {
  lengths.resize(batch);
  if (!ctx.lengths) {
    std::fill(lengths.begin(), lengths.end(), steps);
    return;
  }
  if (ctx.lengths->n_elem != batch)
    throw ShapeError("expected one length per sample (" + std::to_string(batch) +
                     ") in Context::lengths, got " + std::to_string(ctx.lengths->n_elem));
  for (std::size_t b = 0; b < batch; ++b) {
    const auto length = std::size_t((*ctx.lengths)[b]);
    if (length > steps)
      throw DataError("sample " + std::to_string(b) + " has length " + std::to_string(length) +
                      ", more than the " + std::to_string(steps) + " steps of the input");
    lengths[b] = length;
  }
}

std::vector<TensorSpec> recurrent_param_specs(const RecurrentOptions& o, std::size_t gates,
                                              bool hidden_bias) {
  const std::size_t rows = gates * o.n_hidden, H = o.n_hidden;
  std::vector<TensorSpec> specs{{"weight_input", rows, o.n_in, Role::weight, o.n_in, H},
                                {"weight_hidden", rows, H, Role::weight, H, H},
                                {"bias", rows, 1, Role::bias, o.n_in, H}};
  if (hidden_bias) specs.push_back({"bias_hidden", rows, 1, Role::bias, H, H});
  return specs;
}

}  // namespace layercache::detail
