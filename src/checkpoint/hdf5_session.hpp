// Library-internal (not installed): the HDF5 plumbing the checkpoint reader and writer share.
//
// Every HDF5 call goes through an Hdf5Session, which serializes layercache's use of the
// library and silences HDF5's own printing to stderr; failures become IoError (writing) or
// DataError (reading) naming the file, with HDF5's most specific reason (hdf5_reason)
// appended.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>

namespace layercache::detail {

inline std::mutex hdf5_mutex;

// Holds the lock on HDF5 and turns off its automatic error printing for the duration.
class Hdf5Session {
 public:
  Hdf5Session() : lock_(hdf5_mutex) {
    H5Eget_auto2(H5E_DEFAULT, &old_func_, &old_data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Hdf5Session() { H5Eset_auto2(H5E_DEFAULT, old_func_, old_data_); }
  Hdf5Session(const Hdf5Session&) = delete;
  Hdf5Session& operator=(const Hdf5Session&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
  H5E_auto2_t old_func_ = nullptr;
  void* old_data_ = nullptr;
};

// One HDF5 identifier, closed when the handle dies.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Handle() { close(); }
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) {
    other.id_ = H5I_INVALID_HID;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;

  bool valid() const noexcept { return id_ >= 0; }
  operator hid_t() const noexcept { return id_; }
  // Closes now; false when HDF5 reports a failure (for a file: the final flush failed).
  bool close() noexcept {
    if (id_ < 0) return true;
    const herr_t status = close_(id_);
    id_ = H5I_INVALID_HID;
    return status >= 0;
  }

 private:
  hid_t id_;
  Closer close_;
};

// The most specific message on HDF5's error stack, as " (HDF5: ...)", or "" when empty.
inline std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* error, void* out) -> herr_t {
        if (n == 0 && error->desc) *static_cast<std::string*>(out) = error->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? std::string() : " (HDF5: " + reason + ")";
}

inline std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

}  // namespace layercache::detail
