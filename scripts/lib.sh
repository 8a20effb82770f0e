# shellcheck shell=bash disable=SC2034  # the arrays are used by the scripts that source this
# Shared by scripts/test, scripts/demo and scripts/check_docs (sourced, not run): install the
# Debian packages a step needs, configure the build directory and build.
#
# Environment knobs:
#   LC_JOBS     parallel compile and test jobs (default 2: the size of a CI machine)
#   LC_BUILD    the build directory scripts/test and scripts/demo share (default build)

LC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LC_JOBS="${LC_JOBS:-2}"
LC_BUILD="${LC_BUILD:-build}"

# What building and testing layercache needs, from Debian's packages.
LC_BUILD_PACKAGES=(
  g++ meson ninja-build pkg-config cmake
  libarmadillo-dev libopenblas-dev liblapack-dev libboost-test-dev zlib1g-dev libhdf5-dev
  libonnx-dev libprotobuf-dev
  libopenmpi-dev
)
# What the tests read or run besides: Fashion-MNIST files, doxygen for the docs check, and
# gnuplot for the main job's plot (scripts/check_demo), h5py to edit a checkpoint as another
# program would (the checkpoint tests), ONNX's checker (scripts/check_onnx, which installs
# ONNX Runtime with npm itself), PyTorch (scripts/check_torch), mpirun (scripts/check_mpi), the
# English word list examples/char_model learns from (scripts/check_char_model).
LC_TEST_PACKAGES=(dataset-fashion-mnist doxygen hdf5-tools gnuplot-nox python3-h5py python3-onnx
  python3-torch openmpi-bin wamerican)
# What scripts/fuzz adds: clang (libFuzzer and the sanitizers), h5py for the seed corpus.
LC_FUZZ_PACKAGES=(clang python3-h5py)
# What the demo adds: the data set it trains on and gnuplot to draw its curves.
LC_DEMO_PACKAGES=(dataset-fashion-mnist gnuplot-nox)

# How scripts/test and scripts/demo configure the shared build directory.
# Benchmarks are never built or run here (benchmarks/run does that), so a machine with
# libtorch installed does not spend minutes compiling the peer programs.
LC_SETUP_ARGS=(--buildtype=release -Dtests=enabled -Dexamples=enabled -Dbenchmarks=disabled)

lc_log() { printf '==> %s\n' "$*"; }

# Runs a command as root: directly when we are root, through sudo otherwise.
lc_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the packages that are not installed yet. Does no apt work at all when every
# package is already there; runs `apt-get update` at most once per script.
LC_APT_UPDATED=0
lc_install() {
  local missing=() p
  for p in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  lc_log "installing ${missing[*]}"
  if [ "$LC_APT_UPDATED" -eq 0 ]; then
    lc_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    LC_APT_UPDATED=1
  fi
  lc_as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

# Configures build directory $1 (relative to the repository root) unless it already is one;
# further arguments go to `meson setup`. Later meson.build changes reconfigure it by themselves
# when ninja runs.
lc_configure() {
  local dir="$1"; shift
  cd "$LC_ROOT" || return
  if [ -f "$dir/build.ninja" ] && [ -f "$dir/meson-private/coredata.dat" ]; then
    return 0
  fi
  lc_log "configuring $dir"
  if [ -d "$dir/meson-private" ]; then
    # A setup that was interrupted: start it again from scratch.
    meson setup --wipe "$dir" "$@"
  else
    meson setup "$dir" "$@"
  fi
}

# Builds the given targets (all when none) of build directory $1 with LC_JOBS jobs, keeping
# going past failures so that one broken file does not hide the state of the rest.
lc_build() {
  local dir="$1"; shift
  cd "$LC_ROOT" || return
  lc_log "building $dir${*:+ ($*)}"
  ninja -C "$dir" -j "$LC_JOBS" -k 0 "$@"
}

# True when the build directory defines the target (e.g. examples/fashion_mlp). The list is
# read whole before grep looks at it: with `ninja -t targets | grep -q` under pipefail, grep
# stops at the first match, ninja dies of SIGPIPE on its next write, and the check failed
# about one time in seven.
lc_has_target() {
  local targets
  targets=$(ninja -C "$1" -t targets all) || return 1
  grep -q "^$2:" <<<"$targets"
}
