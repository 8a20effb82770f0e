// Specification of checkpoints against hostile files: valid HDF5, made by another program
// (tests/checkpoint/hostile_checkpoints.py, with h5py), whose structure would make a naive
// reader hang, blow up or read out of bounds; and of the save refusing every tree the load
// would refuse. Each load runs in a child process with a time limit, so a hang is a failure.
#include <boost/test/unit_test.hpp>

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "layercache/checkpoint.hpp"
#include "support/temp_dir.hpp"

using namespace layercache;

namespace {

struct TempDir : testing_files::TempDir {
  TempDir() : testing_files::TempDir("layercache-hostile") {}
};

// Debian's Python with h5py (python3-h5py, which scripts/test installs), or empty.
std::string python_with_h5py() {
  for (const char* python : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(python) + " -c 'import h5py' >/dev/null 2>&1").c_str()) == 0)
      return python;
  return {};
}

// The precondition of the cases that make their checkpoints with h5py.
bool has_h5py(boost::unit_test::test_unit_id) { return !python_with_h5py().empty(); }

// Writes the hostile checkpoint of that kind (see hostile_checkpoints.py) to `file`.
void make_checkpoint(const std::string& kind, const std::string& file) {
  const std::string command = python_with_h5py() + " '" LAYERCACHE_TESTS_DIR
                              "/checkpoint/hostile_checkpoints.py' " + kind + " '" + file + "'";
  BOOST_REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
}

// How a load in a child process ended: "loaded", "DataError: <message>", "<other error>: ...",
// "timed out" or "killed by signal N". The child's malloc fills new memory with garbage, so
// that reading or freeing memory never written fails there as it would by bad luck elsewhere.
std::string outcome_of_loading(const std::string& file, unsigned seconds = 20) {
  int report[2];
  BOOST_REQUIRE(::pipe(report) == 0);
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::close(report[0]);
    // Boost.Test's handlers would turn a crash into a failed check and carry on in the child.
    for (const int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM})
      std::signal(signal, SIG_DFL);
    ::alarm(seconds);
    ::mallopt(M_PERTURB, 0xbe);
    std::string outcome;
    try {
      load_checkpoint<float>(file);
      outcome = "loaded";
    } catch (const DataError& e) {
      outcome = std::string("DataError: ") + e.what();
    } catch (const std::exception& e) {
      outcome = std::string("other error: ") + e.what();
    }
    const ssize_t written = ::write(report[1], outcome.data(), outcome.size());
    std::_Exit(written == static_cast<ssize_t>(outcome.size()) ? 0 : 1);
  }
  ::close(report[1]);
  std::string outcome;
  char buffer[4096];
  for (ssize_t n; (n = ::read(report[0], buffer, sizeof buffer)) != 0;) {
    if (n > 0) outcome.append(buffer, static_cast<std::size_t>(n));
    else if (errno != EINTR) break;
  }
  ::close(report[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    return WTERMSIG(status) == SIGALRM ? "timed out"
                                       : "killed by signal " + std::to_string(WTERMSIG(status));
  return outcome;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// A tree nested `depth` levels deep below its root (a chain of branches ending in a tensor).
TreeF nested(int depth) {
  TreeF leaf(arma::fmat(1, 1, arma::fill::ones));
  for (int i = 0; i < depth; ++i) {
    TreeF branch;
    branch.add("n", std::move(leaf));
    leaf = std::move(branch);
  }
  return leaf;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hostile_checkpoints)

// 40 levels of groups that each hard-link the next twice: 2^40 paths to one dataset in a
// 7 KB file. Each object is read once; the second path to it is refused.
BOOST_AUTO_TEST_CASE(groups_that_hard_link_the_next_group_twice_are_a_data_error_at_once,
                     *boost::unit_test::precondition(has_h5py)) {
  TempDir tmp;
  make_checkpoint("diamond", tmp.file("c.h5"));
  const std::string outcome = outcome_of_loading(tmp.file("c.h5"));
  BOOST_TEST(starts_with(outcome, "DataError: "), outcome);
  BOOST_TEST(outcome.find("'params/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/"
                          "a/a/a/a/a/a/a/a/a/a/a/b' is a hard link to an object reached before") !=
                 std::string::npos,
             outcome);
}

BOOST_AUTO_TEST_CASE(a_dataset_hard_linked_from_two_trees_is_a_data_error,
                     *boost::unit_test::precondition(has_h5py)) {
  TempDir tmp;
  make_checkpoint("shared", tmp.file("c.h5"));
  const std::string outcome = outcome_of_loading(tmp.file("c.h5"));
  BOOST_TEST(outcome.find("DataError: ") == 0u, outcome);
  BOOST_TEST(outcome.find("'params/weight' is a hard link to an object reached before") !=
                 std::string::npos,
             outcome);
}

BOOST_AUTO_TEST_CASE(a_group_that_hard_links_its_parent_is_a_data_error,
                     *boost::unit_test::precondition(has_h5py)) {
  TempDir tmp;
  make_checkpoint("cycle", tmp.file("c.h5"));
  const std::string outcome = outcome_of_loading(tmp.file("c.h5"));
  BOOST_TEST(outcome.find("'params/inner/back' is a hard link to an object reached before") !=
                 std::string::npos,
             outcome);
}

// Chunked datasets that were never written take no room in the file, yet read as their fill
// value: together they may not claim more bytes than the file has.
BOOST_AUTO_TEST_CASE(datasets_claiming_more_bytes_together_than_the_file_are_a_data_error,
                     *boost::unit_test::precondition(has_h5py)) {
  TempDir tmp;
  make_checkpoint("unwritten", tmp.file("c.h5"));
  const std::string outcome = outcome_of_loading(tmp.file("c.h5"));
  BOOST_TEST(starts_with(outcome, "DataError: "), outcome);
  BOOST_TEST(outcome.find("more than the file holds") != std::string::npos, outcome);
}

// What h5py writes for a Python str, and what earlier versions of layercache wrote.
BOOST_AUTO_TEST_CASE(variable_length_string_attributes_are_read_after_their_heap_is_checked,
                     *boost::unit_test::precondition(has_h5py)) {
  TempDir tmp;
  make_checkpoint("vlen", tmp.file("c.h5"));
  const Checkpoint<float> checkpoint = load_checkpoint<float>(tmp.file("c.h5"));
  BOOST_TEST(checkpoint.trees.at("params/weight").value().n_elem == 4u);
  BOOST_TEST(outcome_of_loading(tmp.file("c.h5")) == "loaded");
}

// Two zeroed bytes (the size of the heap's free space) made libhdf5 loop forever.
BOOST_AUTO_TEST_CASE(a_global_heap_whose_free_space_has_size_zero_is_a_data_error_not_a_hang,
                     *boost::unit_test::precondition(has_h5py)) {
  TempDir tmp;
  make_checkpoint("vlen_zeroed", tmp.file("c.h5"));
  const std::string outcome = outcome_of_loading(tmp.file("c.h5"));
  BOOST_TEST(starts_with(outcome, "DataError: "), outcome);
  BOOST_TEST(outcome.find("the global heap that attribute 'format' refers to has an object "
                          "that runs past its end") != std::string::npos,
             outcome);
}

BOOST_AUTO_TEST_CASE(a_string_naming_an_object_its_heap_lacks_is_a_data_error,
                     *boost::unit_test::precondition(has_h5py)) {
  TempDir tmp;
  make_checkpoint("vlen_index", tmp.file("c.h5"));
  const std::string outcome = outcome_of_loading(tmp.file("c.h5"));
  BOOST_TEST(starts_with(outcome, "DataError: "), outcome);
  BOOST_TEST(outcome.find("lacks the object it names") != std::string::npos, outcome);
}

// A group of more than 8 entries keeps its links in a fractal heap. libhdf5 1.10 crashed when
// a link there could not be read while it listed them in creation order (found by the
// checkpoint fuzzer: fuzz/regressions/checkpoint/dense_links_damaged_heap.h5).
BOOST_AUTO_TEST_CASE(a_damaged_link_heap_of_a_large_group_is_a_data_error_not_a_crash) {
  TempDir tmp;
  TreeF params;
  for (int i = 0; i < 12; ++i)
    params.add("layer" + std::to_string(i), TreeF(arma::fmat(2, 2, arma::fill::ones)));
  save_params(tmp.file("p.h5"), params);
  std::string bytes = testing_files::read_bytes(tmp.file("p.h5"));
  const std::size_t heap = bytes.find("FRHP");
  BOOST_REQUIRE(heap != std::string::npos);
  bytes[heap + 3] = 'Q';
  std::ofstream(tmp.file("p.h5"), std::ios::binary | std::ios::trunc) << bytes;
  const std::string outcome = outcome_of_loading(tmp.file("p.h5"));
  BOOST_TEST(starts_with(outcome, "DataError: "), outcome);
  BOOST_TEST(outcome.find("group 'params'") != std::string::npos, outcome);
}

// The inputs the checkpoint fuzzer (fuzz/fuzz_checkpoint.cpp) found a crash or a leak with.
std::vector<std::string> fuzzer_findings() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(
           LAYERCACHE_TESTS_DIR "/../fuzz/regressions/checkpoint"))
    files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

BOOST_AUTO_TEST_CASE(the_inputs_the_checkpoint_fuzzer_found_are_data_errors) {
  const std::vector<std::string> files = fuzzer_findings();
  BOOST_TEST(files.size() >= 2u);
  for (const std::string& file : files) {
    const std::string outcome = outcome_of_loading(file);
    BOOST_TEST(starts_with(outcome, "DataError: "), file << ": " << outcome);
    BOOST_CHECK_THROW(load_checkpoint<float>(file), DataError);
  }
}

// libhdf5 1.10 leaks what it refuses in a damaged object header, and then cannot shut down:
// at exit it prints "HDF5: infinite loop closing library". The root group's header is checked
// before HDF5 opens the file (a fuzzer finding: it used to be checked after).
BOOST_AUTO_TEST_CASE(hdf5_shuts_down_cleanly_after_loading_the_fuzzers_inputs) {
  TempDir tmp;
  const std::string self = boost::unit_test::framework::master_test_suite().argv[0];
  const std::string errors = tmp.file("stderr.txt");
  const std::string test =
      "hostile_checkpoints/the_inputs_the_checkpoint_fuzzer_found_are_data_errors";
  const int status = std::system(("'" + self + "' --run_test=" + test +
                                  " --log_level=nothing --report_level=no >/dev/null 2>'" +
                                  errors + "'")
                                     .c_str());
  const std::string printed = testing_files::read_bytes(errors);
  BOOST_TEST(status == 0, printed);
  BOOST_TEST(printed.find("infinite loop closing library") == std::string::npos, printed);
}

// The save refuses what the load would refuse, before the disk is touched.
BOOST_AUTO_TEST_CASE(a_tree_nested_deeper_than_the_load_accepts_is_refused_by_the_save) {
  TempDir tmp;
  const TreeF deepest = nested(255), too_deep = nested(256);  // the tree itself is level 1
  save_params(tmp.file("deepest.h5"), deepest);
  BOOST_TEST(load_params<float>(tmp.file("deepest.h5")).identical(deepest));
  try {
    save_params(tmp.file("too_deep.h5"), too_deep);
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(std::string(e.what()).find("nested deeper than 256 levels") != std::string::npos,
               e.what());
  }
  TreeF three_hundred = nested(300);
  BOOST_CHECK_THROW(save_checkpoint(tmp.file("too_deep.h5"), {{"params", &three_hundred}}),
                    ConfigError);
  BOOST_TEST(tmp.listing() == std::vector<std::string>{"deepest.h5"});
}

// HDF5 would cut the name at the NUL: the saved file would not hold the tree's names.
BOOST_AUTO_TEST_CASE(an_entry_name_with_a_nul_character_is_refused_by_the_save) {
  TempDir tmp;
  TreeF params;
  params.add(std::string("dense\0x", 7), TreeF(arma::fmat(1, 1, arma::fill::ones)));
  BOOST_CHECK_THROW(save_params(tmp.file("p.h5"), params), ConfigError);
  BOOST_CHECK_THROW(save_checkpoint(tmp.file("p.h5"), {{std::string("par\0ams", 7), &params}}),
                    ConfigError);
  BOOST_TEST(tmp.listing().empty());
}

BOOST_AUTO_TEST_SUITE_END()
