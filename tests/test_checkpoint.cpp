// Specification of checkpoints: named trees saved to and loaded from HDF5 files.
#define BOOST_TEST_MODULE checkpoint
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "layercache/checkpoint.hpp"
#include "layercache/optimizers.hpp"
#include "support/temp_dir.hpp"

using namespace layercache;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed afterwards.
struct TempDir : testing_files::TempDir {
  TempDir() : testing_files::TempDir("layercache-ckpt") {}
};
using testing_files::read_bytes;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A matrix of reproducible values that also holds the awkward ones bit identity must keep.
template <class T>
arma::Mat<T> values(arma::uword rows, arma::uword cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  arma::Mat<T> m(rows, cols);
  for (auto& v : m) v = static_cast<T>(normal(gen));
  const std::array<T, 4> special = {T(-0.0), std::numeric_limits<T>::quiet_NaN(),
                                    std::numeric_limits<T>::infinity(),
                                    std::numeric_limits<T>::denorm_min()};
  for (std::size_t i = 0; i < special.size() && i < m.n_elem; ++i) m(i) = special[i];
  return m;
}

// A params tree like a small network's: nested branches, a parameter-free layer (an empty
// branch), children in non-alphabetical order, and empty leaves.
template <class T>
Tree<T> network_params() {
  Tree<T> params;
  auto& encoder = params.add("encoder", Tree<T>());
  auto& dense1 = encoder.add("dense1", Tree<T>());
  dense1.add("weight", Tree<T>(values<T>(4, 3, 1)));
  dense1.add("bias", Tree<T>(values<T>(4, 1, 2)));
  encoder.add("relu", Tree<T>());
  auto& head = params.add("head", Tree<T>());
  head.add("weight", Tree<T>(values<T>(2, 4, 3)));
  head.add("bias", Tree<T>(values<T>(2, 1, 4)));
  head.add("empty", Tree<T>(arma::Mat<T>()));
  head.add("no_rows", Tree<T>(arma::Mat<T>(0, 3)));
  params.add("row", Tree<T>(values<T>(1, 5, 5)));
  return params;
}

// An optimizer-like state tree: a step count, moments mirroring the params, a stateless entry.
template <class T>
Tree<T> optimizer_state(const Tree<T>& params) {
  Tree<T> state;
  state.add("count", Tree<T>(arma::Mat<T>(1, 1, arma::fill::value(T(7)))));
  auto& adam = state.add("scale_by_adam", Tree<T>());
  unsigned seed = 100;
  adam.add("mu", map(params, [&](const std::string&, const arma::Mat<T>& m) {
             return values<T>(m.n_rows, m.n_cols, seed++);
           }));
  adam.add("nu", map(params, [&](const std::string&, const arma::Mat<T>& m) {
             return values<T>(m.n_rows, m.n_cols, seed++);
           }));
  state.add("scale_by_learning_rate", Tree<T>());
  return state;
}

std::vector<std::string> child_names(const TreeF& tree) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < tree.size(); ++i) names.push_back(tree.name(i));
  return names;
}

// Runs a shell command and returns its standard output.
std::string command_output(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe.get()))
    out.append(buffer.data(), n);
  return out;
}

// Runs `load`, which must throw a DataError naming `file`; returns the error's message.
template <class Load>
std::string data_error_message(const std::string& file, Load load) {
  try {
    load();
  } catch (const DataError& e) {
    BOOST_TEST(e.path() == file);
    return e.what();
  }
  BOOST_ERROR("expected DataError");
  return "";
}

bool has_h5dump() { return std::system("command -v h5dump >/dev/null 2>&1") == 0; }

}  // namespace

using element_types = std::tuple<float, double>;

BOOST_AUTO_TEST_CASE_TEMPLATE(params_and_optimizer_state_round_trip_bit_identically, T,
                              element_types) {
  TempDir tmp;
  const Tree<T> params = network_params<T>();
  const Tree<T> state = optimizer_state(params);
  save_checkpoint(tmp.file("ckpt.h5"), {{"params", &params}, {"optimizer", &state}});

  const Checkpoint<T> loaded = load_checkpoint<T>(tmp.file("ckpt.h5"));
  BOOST_TEST(loaded.trees.size() == 2u);
  BOOST_TEST(loaded.trees.at("params").identical(params));
  BOOST_TEST(loaded.trees.at("optimizer").identical(state));
}

BOOST_AUTO_TEST_CASE(children_keep_their_saved_order_not_alphabetical) {
  TempDir tmp;
  TreeF params;
  for (const char* name : {"zeta", "alpha", "mid", "beta"})
    params.add(name, TreeF(arma::fmat(1, 1, arma::fill::ones)));
  const TreeF state;
  save_checkpoint(tmp.file("ckpt.h5"), {{"state", &state}, {"params", &params}});

  const Checkpoint<float> loaded = load_checkpoint<float>(tmp.file("ckpt.h5"));
  BOOST_TEST(child_names(loaded.trees) == (std::vector<std::string>{"state", "params"}));
  BOOST_TEST(child_names(loaded.trees.at("params")) ==
             (std::vector<std::string>{"zeta", "alpha", "mid", "beta"}));
}

BOOST_AUTO_TEST_CASE(empty_branches_and_empty_leaves_round_trip) {
  TempDir tmp;
  TreeF params;
  params.add("relu", TreeF());
  params.add("flatten", TreeF()).add("inner", TreeF());
  params.add("zero_by_zero", TreeF(arma::fmat()));
  params.add("zero_by_three", TreeF(arma::fmat(0, 3)));
  params.add("three_by_zero", TreeF(arma::fmat(3, 0)));
  save_params(tmp.file("p.h5"), params);

  const TreeF loaded = load_params<float>(tmp.file("p.h5"));
  BOOST_TEST(loaded.identical(params));
  BOOST_TEST(!loaded.at("relu").is_leaf());
  BOOST_TEST(loaded.at("flatten/inner").empty());
  BOOST_TEST(loaded.at("zero_by_zero").is_leaf());
  BOOST_TEST(loaded.at("three_by_zero").value().n_rows == 3u);
}

BOOST_AUTO_TEST_CASE(epoch_step_and_metadata_round_trip) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  const CheckpointInfo info{12, 3456, "run \"α\" {lr: 1e-3}\nline two"};
  save_params(tmp.file("p.h5"), params, info);

  const Checkpoint<float> loaded = load_checkpoint<float>(tmp.file("p.h5"));
  BOOST_TEST(loaded.info.epoch == 12);
  BOOST_TEST(loaded.info.step == 3456);
  BOOST_TEST(loaded.info.metadata == info.metadata);
}

BOOST_AUTO_TEST_CASE(training_resumes_exactly_from_a_saved_adam_state) {
  TempDir tmp;
  const Optimizer opt = adam({.learning_rate = 1e-2});
  TreeD params = network_params<double>();
  params = map(params, [](const std::string&, const arma::mat& m) {
    arma::mat finite = m;  // Adam needs finite values to stay comparable
    finite.replace(arma::datum::nan, 0.0);
    finite.replace(arma::datum::inf, 0.0);
    return finite;
  });
  const TreeD grads = map(params, [](const std::string&, const arma::mat& m) {
    return arma::mat(0.5 * m + 0.25);
  });
  OptStateD state = opt.init(params);
  for (int i = 0; i < 3; ++i) opt.update(params, grads, state);
  save_checkpoint(tmp.file("ckpt.h5"), {{"params", &params}, {"optimizer", &state.tree()}});

  Checkpoint<double> loaded = load_checkpoint<double>(tmp.file("ckpt.h5"));
  TreeD resumed_params = loaded.trees.at("params");
  OptStateD resumed_state(loaded.trees.at("optimizer"));
  opt.update(params, grads, state);
  opt.update(resumed_params, grads, resumed_state);
  BOOST_TEST(resumed_params.identical(params));
  BOOST_TEST(resumed_state.tree().identical(state.tree()));
}

BOOST_AUTO_TEST_CASE(an_optimizer_state_loaded_into_is_checked_by_the_next_update) {
  // A checkpoint whose Adam state holds a negative second moment (CRC-32s are fine: it was
  // saved that way). load_into accepts its structure; the next update refuses its values
  // before it changes params or state.
  TempDir tmp;
  const Optimizer opt = adam();
  TreeD params;
  params.add("w", TreeD(arma::mat({1.0, 2.0})));
  OptStateD state = opt.init(params);
  TreeD damaged = std::as_const(state).tree();
  damaged.at("scale_by_adam/nu/w").value()(1) = -1.0;
  save_checkpoint(tmp.file("ckpt.h5"), {{"optimizer", &damaged}});
  load_into(tmp.file("ckpt.h5"), "optimizer", state);
  const TreeD params_before = params;
  const TreeD state_before = std::as_const(state).tree();
  try {
    opt.update(params, params, state);
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "scale_by_adam/nu/w");
  }
  BOOST_TEST(params.identical(params_before));
  BOOST_TEST(std::as_const(state).tree().identical(state_before));
}

BOOST_AUTO_TEST_CASE(saving_the_same_trees_twice_writes_identical_bytes) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  save_params(tmp.file("a.h5"), params);
  save_params(tmp.file("b.h5"), params);
  BOOST_TEST(read_bytes(tmp.file("a.h5")) == read_bytes(tmp.file("b.h5")));
}

BOOST_AUTO_TEST_CASE(a_successful_save_replaces_the_old_file_and_leaves_no_temporary_file) {
  TempDir tmp;
  const TreeF old_params = network_params<float>();
  const TreeF new_params = zeros_like(old_params);
  save_params(tmp.file("p.h5"), old_params);
  save_params(tmp.file("p.h5"), new_params);
  BOOST_TEST(load_params<float>(tmp.file("p.h5")).identical(new_params));
  BOOST_TEST(tmp.listing() == (std::vector<std::string>{"p.h5"}));
}

// The h5dump tool (Debian package hdf5-tools) reads the file independently of layercache.
BOOST_AUTO_TEST_CASE(a_plain_hdf5_reader_sees_the_documented_attributes_and_datasets,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       return has_h5dump();
                     })) {
  TempDir tmp;
  TreeF params;
  auto& dense = params.add("dense1", TreeF());
  dense.add("weight", TreeF(arma::fmat({{1, 2, 3}, {4, 5, 6}})));  // (2 × 3)
  params.add("relu", TreeF());
  save_checkpoint(tmp.file("ckpt.h5"), {{"params", &params}}, {2, 40, "note"});

  const std::string header = command_output("h5dump -A '" + tmp.file("ckpt.h5") + "'");
  for (const char* expected :
       {"ATTRIBUTE \"format\"", "\"layercache-checkpoint\"", "ATTRIBUTE \"format_version\"",
        "ATTRIBUTE \"element_type\"", "\"float32\"", "ATTRIBUTE \"layout\"", "\"row-major\"",
        "ATTRIBUTE \"epoch\"", "ATTRIBUTE \"step\"", "ATTRIBUTE \"metadata\"", "GROUP \"params\"",
        "GROUP \"relu\"", "DATASET \"weight\"", "H5T_IEEE_F32LE", "SIMPLE { ( 2, 3 ) / ( 2, 3 ) }"})
    BOOST_TEST(header.find(expected) != std::string::npos, expected << " in\n" << header);

  // Row-major with the matrix's shape: element [0][1] is weight(0, 1) = 2.
  const std::string data = command_output("h5dump -d /params/dense1/weight -s 0,1 -c 1,1 -y '" +
                                          tmp.file("ckpt.h5") + "'");
  BOOST_TEST(std::regex_search(data, std::regex(R"(DATA \{\s*2\s*\})")), data);
}

BOOST_AUTO_TEST_CASE(a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file) {
  TempDir tmp;
  const TreeF old_params = network_params<float>();
  save_params(tmp.file("p.h5"), old_params);
  const std::string old_bytes = read_bytes(tmp.file("p.h5"));

  // A file size limit makes the write fail half-way, like a full disk.
  TreeF big;
  big.add("weight", TreeF(arma::fmat(1024, 1024, arma::fill::ones)));  // 4 MiB
  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = saved;
  limited.rlim_cur = 1 << 20;  // 1 MiB
  BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  bool threw_io_error = false;
  try {
    save_params(tmp.file("p.h5"), big);
  } catch (const IoError& e) {
    threw_io_error = e.path() == tmp.file("p.h5");
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);

  BOOST_TEST(threw_io_error);
  BOOST_TEST(read_bytes(tmp.file("p.h5")) == old_bytes);
  BOOST_TEST(tmp.listing() == (std::vector<std::string>{"p.h5"}));
}

BOOST_AUTO_TEST_CASE(a_failed_rename_leaves_no_temporary_file) {
  TempDir tmp;
  fs::create_directories(tmp.dir / "ckpt.h5" / "inside");  // a directory cannot be replaced
  const TreeF params = network_params<float>();
  BOOST_CHECK_THROW(save_params(tmp.file("ckpt.h5"), params), IoError);
  BOOST_TEST(fs::is_directory(tmp.dir / "ckpt.h5" / "inside"));
  BOOST_TEST(tmp.listing() == (std::vector<std::string>{"ckpt.h5"}));
}

BOOST_AUTO_TEST_CASE(saving_into_a_missing_directory_throws_io_error_naming_the_file) {
  TempDir tmp;
  const std::string path = tmp.file("missing/ckpt.h5");
  try {
    save_params(path, network_params<float>());
    BOOST_FAIL("expected IoError");
  } catch (const IoError& e) {
    BOOST_TEST(e.path() == path);
  }
  BOOST_TEST(tmp.listing().empty());
}

BOOST_AUTO_TEST_CASE(a_tree_that_cannot_be_stored_is_a_config_error_and_the_old_file_stays) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  save_params(tmp.file("p.h5"), params);
  const std::string old_bytes = read_bytes(tmp.file("p.h5"));

  TreeF dotted;
  dotted.add("layer", TreeF()).add(".", TreeF(arma::fmat(1, 1)));
  try {
    save_params(tmp.file("p.h5"), dotted);
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "params/layer/.");
  }
  BOOST_CHECK_THROW(save_checkpoint(tmp.file("p.h5"), {{"params", &params}, {"params", &params}}),
                    ConfigError);
  BOOST_CHECK_THROW(save_checkpoint(tmp.file("p.h5"), NamedTrees<float>{{"params", nullptr}}), ConfigError);
  BOOST_TEST(read_bytes(tmp.file("p.h5")) == old_bytes);
  BOOST_TEST(tmp.listing() == (std::vector<std::string>{"p.h5"}));
}

BOOST_AUTO_TEST_CASE(loading_a_missing_file_throws_io_error_naming_it) {
  TempDir tmp;
  try {
    load_checkpoint<float>(tmp.file("nothing.h5"));
    BOOST_FAIL("expected IoError");
  } catch (const IoError& e) {
    BOOST_TEST(e.path() == tmp.file("nothing.h5"));
  }
}

BOOST_AUTO_TEST_CASE(loading_a_truncated_file_throws_data_error_naming_it) {
  TempDir tmp;
  save_params(tmp.file("p.h5"), network_params<float>());
  const std::string bytes = read_bytes(tmp.file("p.h5"));
  write_bytes(tmp.file("p.h5"), bytes.substr(0, bytes.size() / 2));
  try {
    load_checkpoint<float>(tmp.file("p.h5"));
    BOOST_FAIL("expected DataError");
  } catch (const DataError& e) {
    BOOST_TEST(e.path() == tmp.file("p.h5"));
    BOOST_TEST(std::string(e.what()).find("truncated") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(loading_random_bytes_throws_data_error_naming_the_file) {
  TempDir tmp;
  std::mt19937 gen(42);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(gen());
  write_bytes(tmp.file("noise.h5"), bytes);
  data_error_message(tmp.file("noise.h5"), [&] { load_checkpoint<float>(tmp.file("noise.h5")); });
}

BOOST_AUTO_TEST_CASE(loading_float64_tensors_as_float_is_a_config_error) {
  TempDir tmp;
  save_params(tmp.file("d.h5"), network_params<double>());
  try {
    load_checkpoint<float>(tmp.file("d.h5"));
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == tmp.file("d.h5"));
    BOOST_TEST(std::string(e.what()).find("float64") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(load_into_overwrites_a_matching_tree_in_place) {
  TempDir tmp;
  const TreeF saved = network_params<float>();
  save_params(tmp.file("p.h5"), saved);
  TreeF into = zeros_like(saved);
  const float* weight = into.at("encoder/dense1/weight").value().memptr();

  load_into(tmp.file("p.h5"), "params", into);
  BOOST_TEST(into.identical(saved));
  BOOST_TEST(into.at("encoder/dense1/weight").value().memptr() == weight);
}

BOOST_AUTO_TEST_CASE(load_into_a_tree_with_other_names_is_a_config_error_and_changes_nothing) {
  TempDir tmp;
  save_params(tmp.file("p.h5"), network_params<float>());
  TreeF other;
  auto& encoder = other.add("encoder", TreeF());
  encoder.add("dense1", TreeF()).add("weight", TreeF(arma::fmat(4, 3, arma::fill::ones)));
  encoder.add("conv", TreeF());
  const TreeF before = other;
  try {
    load_into(tmp.file("p.h5"), "params", other);
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "encoder/dense1");
    BOOST_TEST(std::string(e.what()).find(tmp.file("p.h5")) != std::string::npos, e.what());
  }
  BOOST_TEST(other.identical(before));
}

BOOST_AUTO_TEST_CASE(load_into_a_tree_with_other_shapes_is_a_shape_error_and_changes_nothing) {
  TempDir tmp;
  save_params(tmp.file("p.h5"), network_params<float>());
  TreeF wider = zeros_like(network_params<float>());
  wider.at("head/weight").value() = arma::fmat(2, 8, arma::fill::ones);
  const TreeF before = wider;
  try {
    load_into(tmp.file("p.h5"), "params", wider);
    BOOST_FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    BOOST_TEST(e.path() == "head/weight");
  }
  BOOST_TEST(wider.identical(before));
}

BOOST_AUTO_TEST_CASE(load_into_a_tree_name_the_file_lacks_is_a_config_error_listing_the_names) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  const TreeF state;
  save_checkpoint(tmp.file("c.h5"), {{"params", &params}, {"state", &state}});
  TreeF into = params;
  try {
    load_into(tmp.file("c.h5"), "optimizer", into);
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(std::string(e.what()).find("params, state") != std::string::npos, e.what());
  }
}

namespace {

// Positions of every occurrence of `needle` in `haystack`.
std::vector<std::size_t> occurrences(const std::string& haystack, const std::string& needle) {
  std::vector<std::size_t> found;
  for (std::size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    found.push_back(at);
  return found;
}

// The bytes a dataset stores for a matrix: row-major, little-endian (the test host's order).
template <class T>
std::string stored_bytes(const arma::Mat<T>& m) {
  const arma::Mat<T> row_major = m.t();
  return std::string(reinterpret_cast<const char*>(row_major.memptr()), m.n_elem * sizeof(T));
}

// A Python interpreter with h5py (Debian: python3-h5py, which scripts/test installs): the one
// on PATH, else Debian's own; empty when neither has it.
std::string python_with_h5py() {
  for (const char* python : {"python3", "/usr/bin/python3"})
    if (std::system((std::string(python) + " -c 'import h5py' >/dev/null 2>&1").c_str()) == 0)
      return python;
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_flipped_bit_in_a_tensors_values_is_a_data_error_naming_the_file_and_tensor) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  save_params(tmp.file("p.h5"), params);
  const std::string bytes = read_bytes(tmp.file("p.h5"));
  const auto at = occurrences(bytes, stored_bytes(params.at("head/weight").value()));
  BOOST_REQUIRE(at.size() == 1u);
  std::string damaged = bytes;
  damaged[at[0] + 5] ^= 0x10;  // a mantissa bit of the second value
  write_bytes(tmp.file("p.h5"), damaged);

  const std::string message =
      data_error_message(tmp.file("p.h5"), [&] { load_checkpoint<float>(tmp.file("p.h5")); });
  BOOST_TEST(message.find("'params/head/weight'") != std::string::npos, message);
  TreeF into = zeros_like(params);
  const TreeF before = into;
  BOOST_CHECK_THROW(load_into(tmp.file("p.h5"), "params", into), DataError);
  BOOST_TEST(into.identical(before));
}

BOOST_AUTO_TEST_CASE(a_flipped_bit_in_a_trees_name_is_a_data_error) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  const TreeF state = optimizer_state(params);
  save_checkpoint(tmp.file("c.h5"), {{"params", &params}, {"optimizer", &state}});
  const std::string bytes = read_bytes(tmp.file("c.h5"));
  const auto at = occurrences(bytes, "params");
  BOOST_REQUIRE(!at.empty());
  for (std::size_t position : at) {
    std::string damaged = bytes;
    damaged[position] ^= 0x01;  // "params" becomes "qarams"
    write_bytes(tmp.file("c.h5"), damaged);
    BOOST_CHECK_THROW(load_checkpoint<float>(tmp.file("c.h5")), DataError);
    TreeF into = zeros_like(params);
    BOOST_CHECK_THROW(load_into(tmp.file("c.h5"), "params", into), DataError);
  }
}

// HDF5 itself sees nothing wrong with a tree renamed by another program; the checksum over
// the names and shapes does.
BOOST_AUTO_TEST_CASE(a_tree_renamed_by_another_program_is_a_data_error,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       return !python_with_h5py().empty();
                     })) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  save_params(tmp.file("p.h5"), params);
  BOOST_REQUIRE(std::system((python_with_h5py() + " -c \"import h5py; h5py.File('" + tmp.file("p.h5") +
                             "', 'r+').move('params/head', 'params/haed')\"")
                                .c_str()) == 0);
  BOOST_CHECK_THROW(load_checkpoint<float>(tmp.file("p.h5")), DataError);
}

// Any single flipped bit: the load either returns exactly what was saved or throws one of
// layercache's errors; it never crashes. The save first leaves HDF5 with state of its own,
// which once turned damaged variable-length strings into crashes inside HDF5.
BOOST_AUTO_TEST_CASE(every_flipped_bit_loads_identically_or_throws_a_layercache_error) {
  TempDir tmp;
  TreeF params;
  params.add("dense1", TreeF()).add("weight", TreeF(values<float>(3, 2, 1)));
  params.at("dense1").add("bias", TreeF(values<float>(3, 1, 2)));
  params.add("relu", TreeF());
  const TreeF state = optimizer_state(params);
  const CheckpointInfo info{2, 5, "run"};
  save_checkpoint(tmp.file("good.h5"), {{"params", &params}, {"optimizer", &state}}, info);
  const std::string bytes = read_bytes(tmp.file("good.h5"));

  std::size_t loaded = 0, refused = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const int bit = static_cast<int>(i % 8);  // each bit position in turn
    std::string damaged = bytes;
    damaged[i] ^= static_cast<char>(1 << bit);
    write_bytes(tmp.file("bad.h5"), damaged);
    try {
      const Checkpoint<float> c = load_checkpoint<float>(tmp.file("bad.h5"));
      const bool same = c.trees.size() == 2 && c.trees.at("params").identical(params) &&
                        c.trees.at("optimizer").identical(state) && c.info.epoch == 2 &&
                        c.info.step == 5 && c.info.metadata == "run";
      BOOST_TEST(same, "byte " << i << " bit " << bit << " loaded other contents");
      ++loaded;
    } catch (const Error&) {
      ++refused;
    }
  }
  BOOST_TEST_MESSAGE(bytes.size() << " bytes: " << loaded << " loads identical, " << refused
                                  << " refused");
  BOOST_TEST(refused > 0u);
}

// A damaged object header (or continuation chunk of one) is refused by layercache's own check,
// before libhdf5 reads it: libhdf5 1.10 would refuse it too, but leak memory doing so.
BOOST_AUTO_TEST_CASE(a_damaged_object_header_is_a_data_error_naming_the_object) {
  TempDir tmp;
  const TreeF params = network_params<float>();
  save_checkpoint(tmp.file("c.h5"), {{"params", &params}, {"optimizer", &params}});
  const std::string bytes = read_bytes(tmp.file("c.h5"));
  const auto headers = occurrences(bytes, "OHDR"), chunks = occurrences(bytes, "OCHK");
  BOOST_REQUIRE(headers.size() > 10u);
  BOOST_REQUIRE(!chunks.empty());
  BOOST_TEST(headers.front() == 48u);  // the root group's, right after the superblock
  for (const auto& [at, expected] :
       {std::pair{headers, std::string("does not match its checksum")},
        std::pair{chunks, std::string("has a continuation chunk that does not match")}}) {
    for (std::size_t position : at) {
      std::string damaged = bytes;
      damaged[position + 8] ^= 0x04;
      write_bytes(tmp.file("bad.h5"), damaged);
      const std::string message = data_error_message(
          tmp.file("bad.h5"), [&] { load_checkpoint<float>(tmp.file("bad.h5")); });
      BOOST_TEST(message.find("object header of ") != std::string::npos, message);
      BOOST_TEST(message.find(expected) != std::string::npos, message);
      if (position == 48u) BOOST_TEST(message.find("the root group") != std::string::npos, message);
    }
  }
}

// libhdf5 1.10 never frees an object header it refuses, and then cannot shut down: at exit it
// prints "HDF5: infinite loop closing library". The bit-flip sweep, run in a process of its
// own, must leave it nothing to complain about (under scripts/check_sanitizers, LeakSanitizer
// checks that process too: a leak makes its exit status non-zero).
BOOST_AUTO_TEST_CASE(hdf5_shuts_down_cleanly_after_the_bit_flip_sweep) {
  TempDir tmp;
  const std::string self = boost::unit_test::framework::master_test_suite().argv[0];
  const std::string errors = tmp.file("stderr.txt");
  const int status = std::system(
      ("'" + self + "' --run_test=every_flipped_bit_loads_identically_or_throws_a_layercache_error"
                    " --log_level=nothing --report_level=no >/dev/null 2>'" +
       errors + "'")
          .c_str());
  const std::string printed = read_bytes(errors);
  BOOST_TEST(status == 0, printed);
  BOOST_TEST(printed.find("infinite loop closing library") == std::string::npos, printed);
}
