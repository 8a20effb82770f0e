// Specification of the temporary files of atomic saves (src/atomic_file.hpp): a save killed
// half-way leaves one behind; the next save of the same target removes those no live process
// owns, and a temporary file exists only once there is something to write.
#include <boost/test/unit_test.hpp>

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../src/atomic_file.hpp"
#include "layercache/checkpoint.hpp"
#include "support/temp_dir.hpp"

using namespace layercache;

namespace {

struct TempDir : testing_files::TempDir {
  TempDir() : testing_files::TempDir("layercache-temporaries") {}
};

void touch(const std::string& path) { std::ofstream(path) << "left over"; }

// The id of a process that has exited (and been reaped).
pid_t dead_process() {
  const pid_t child = ::fork();
  if (child == 0) std::_Exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TreeF tensor(arma::uword rows) {
  TreeF params;
  params.add("weight", TreeF(arma::fmat(rows, 256, arma::fill::ones)));
  return params;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_temporaries)

// What 100 kills during saves used to leave: dozens of *.tmp-* files, never removed.
BOOST_AUTO_TEST_CASE(a_save_removes_the_temporaries_that_killed_saves_left) {
  TempDir tmp;
  const std::string target = tmp.file("p.h5");
  const TreeF params = tensor(1024);  // 1 MiB
  for (int kill = 0; kill < 5; ++kill) {
    const pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
      for (;;) save_params(target, params);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + 37 * kill));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
  }
  save_params(target, params);
  BOOST_TEST(tmp.listing() == std::vector<std::string>{"p.h5"});
  BOOST_TEST(load_params<float>(target).identical(params));
}

BOOST_AUTO_TEST_CASE(a_save_keeps_the_temporaries_of_live_processes_and_other_files) {
  TempDir tmp;
  const std::string dead = std::to_string(dead_process());
  const std::string alive = std::to_string(::getppid());
  touch(tmp.file("p.h5.tmp-" + dead + "-abc123"));   // a dead writer's: removed
  touch(tmp.file("p.h5.tmp-" + alive + "-abc123"));  // a live process's: kept
  touch(tmp.file("p.h5.tmp-" + dead + "-locked"));   // locked by its writer: kept
  const int lock = ::open(tmp.file("p.h5.tmp-" + dead + "-locked").c_str(), O_RDONLY);
  BOOST_REQUIRE(lock >= 0 && ::flock(lock, LOCK_EX) == 0);
  touch(tmp.file("p.h5.tmp-old123"));  // an earlier version's, an hour old: removed
  const timespec hour_ago[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  BOOST_REQUIRE(::utimensat(AT_FDCWD, tmp.file("p.h5.tmp-old123").c_str(), hour_ago, 0) == 0);
  touch(tmp.file("p.h5.tmp-new123"));                // an earlier version's, just written: kept
  touch(tmp.file("q.h5.tmp-" + dead + "-abc123"));   // another target's: kept
  touch(tmp.file("p.h5.tmp-notes.txt"));             // not a temporary name: kept

  save_params(tmp.file("p.h5"), tensor(2));
  ::close(lock);
  // listing() is sorted by name, and where the two process ids sort depends on their digits
  // (a parent 9998 sorts after a child 10002): the expectation is sorted the same way.
  std::vector<std::string> kept{"p.h5", "p.h5.tmp-" + alive + "-abc123",
                                "p.h5.tmp-" + dead + "-locked", "p.h5.tmp-new123",
                                "p.h5.tmp-notes.txt", "q.h5.tmp-" + dead + "-abc123"};
  std::sort(kept.begin(), kept.end());
  BOOST_TEST(tmp.listing() == kept, boost::test_tools::per_element());
}

// A save killed while it builds the file in memory (most of its time) used to leave an empty
// temporary file: it was created first.
BOOST_AUTO_TEST_CASE(the_temporary_file_is_created_only_when_there_is_something_to_write) {
  TempDir tmp;
  {
    detail::AtomicFile file(tmp.file("model.onnx"), "ONNX model");
    BOOST_TEST(tmp.listing().empty());
    BOOST_TEST(file.name().find(tmp.file("model.onnx.tmp-" + std::to_string(::getpid()) + "-")) ==
               0u);
    file.write("abc", 3);
    BOOST_TEST(tmp.listing().size() == 1u);
  }
  BOOST_TEST(tmp.listing().empty());  // not committed: removed
  detail::AtomicFile file(tmp.file("model.onnx"), "ONNX model");
  file.write("abc", 3);
  file.commit();
  BOOST_TEST(tmp.listing() == std::vector<std::string>{"model.onnx"});
  BOOST_TEST(testing_files::read_bytes(tmp.file("model.onnx")) == "abc");
}

BOOST_AUTO_TEST_SUITE_END()
