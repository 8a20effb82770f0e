// Library-internal (not installed): reading a data file through zlib, decompressed when it
// is gzip data and as it is otherwise; the IDX and CSV readers share it.
//
// A file that starts with the gzip magic bytes is decompressed with zlib's inflate; any other
// file is read as it is. A gzip file must be complete gzip members and nothing else, so a
// cut-off trailer or data after the last member is an error rather than silently ignored.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "layercache/errors.hpp"

namespace layercache::detail {

/// An open file, decompressed when it is gzip data and read as it is otherwise; closes itself.
///
/// Gzip data must be one or more complete gzip members, back to back, up to the end of the
/// file. inflate checks each member's CRC-32 and length against the decompressed data when it
/// reads the member's 8-byte trailer, so a member counts as complete only once its trailer
/// has been read and checked.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), buffer_(std::size_t{1} << 17) {
    errno = 0;
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (file_ == nullptr) {
      throw IoError(std::string("cannot open for reading: ") +
                        (errno != 0 ? std::strerror(errno) : "out of memory"),
                    path);
    }
    refill();
    gzip_ = starts_a_member();
    if (gzip_) {
      // 16 + 15: a gzip wrapper (header and trailer checked) around a 32 KiB window.
      if (inflateInit2(&stream_, 16 + 15) != Z_OK) throw std::bad_alloc();
      inflating_ = true;
    }
  }
  ~GzReader() {
    if (inflating_) inflateEnd(&stream_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  /// Reads up to n bytes into buf; returns fewer only when the data ends. Throws DataError
  /// for corrupt gzip data or data after the last gzip member, and IoError for a failing read.
  std::size_t read(void* buf, std::size_t n) {
    auto* out = static_cast<unsigned char*>(buf);
    return gzip_ ? inflate_into(out, n) : copy_into(out, n);
  }

  /// Why the data ended early: empty for a plain end of file, or a note that the gzip
  /// stream itself is cut off.
  std::string end_note() const {
    if (!cut_off_) return {};
    return " (the gzip stream is cut off: the file ends before the CRC-32 and length that close "
           "its last gzip member)";
  }

  /// Throws DataError when the data ended because the gzip stream is cut off; call once
  /// read has returned fewer bytes than asked for.
  void check_end() const {
    const std::string note = end_note();
    if (!note.empty()) throw DataError("truncated file" + note, path_);
  }

 private:
  /// Plain data: the buffered bytes first, then straight from the file.
  std::size_t copy_into(unsigned char* out, std::size_t n) {
    const std::size_t buffered = std::min<std::size_t>(n, stream_.avail_in);
    if (buffered > 0) std::memcpy(out, stream_.next_in, buffered);
    stream_.next_in += buffered;
    stream_.avail_in -= static_cast<uInt>(buffered);
    return buffered + read_file(out + buffered, n - buffered);
  }

  std::size_t inflate_into(unsigned char* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      if (stream_.avail_in == 0 && refill() == 0) {
        cut_off_ = !member_done_;
        break;
      }
      if (member_done_) next_member();
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(n - got, 1u << 30));
      stream_.next_out = out + got;
      stream_.avail_out = chunk;
      const int r = inflate(&stream_, Z_NO_FLUSH);
      got += chunk - stream_.avail_out;
      if (r == Z_STREAM_END) {
        member_done_ = true;  // its CRC-32 and length matched
      } else if (r == Z_MEM_ERROR) {
        throw std::bad_alloc();
      } else if (r != Z_OK && r != Z_BUF_ERROR) {  // Z_BUF_ERROR: inflate needs more input
        throw DataError(std::string("corrupt gzip data: ") +
                            (stream_.msg != nullptr ? stream_.msg : "unknown error"),
                        path_);
      }
    }
    return got;
  }

  /// After a complete member, anything that follows must be another gzip member.
  void next_member() {
    if (stream_.avail_in < 2) refill();
    if (!starts_a_member()) {
      throw DataError("unexpected data after the gzip stream, at byte " +
                          std::to_string(file_offset_ - stream_.avail_in) +
                          ": expected the end of the file or another gzip member",
                      path_);
    }
    inflateReset(&stream_);
    member_done_ = false;
  }

  bool starts_a_member() const {
    return stream_.avail_in >= 2 && stream_.next_in[0] == 0x1f && stream_.next_in[1] == 0x8b;
  }

  /// Moves the unread input to the front of the buffer and tops it up from the file;
  /// returns the number of buffered input bytes (0 only at the end of the file).
  std::size_t refill() {
    if (stream_.avail_in > 0) std::memmove(buffer_.data(), stream_.next_in, stream_.avail_in);
    stream_.next_in = buffer_.data();
    const std::size_t got = read_file(buffer_.data() + stream_.avail_in,
                                      buffer_.size() - stream_.avail_in);
    file_offset_ += got;
    stream_.avail_in += static_cast<uInt>(got);
    return stream_.avail_in;
  }

  std::size_t read_file(unsigned char* out, std::size_t n) {
    const std::size_t got = std::fread(out, 1, n, file_.get());
    if (got < n && std::ferror(file_.get())) {
      throw IoError(std::string("read failed: ") + std::strerror(errno), path_);
    }
    return got;
  }

  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };

  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::vector<unsigned char> buffer_;  // input not yet used: stream_.next_in, .avail_in
  std::uint64_t file_offset_ = 0;      // bytes read from the file into buffer_
  z_stream stream_{};
  bool gzip_ = false;         // the file starts with the gzip magic bytes
  bool inflating_ = false;    // stream_ holds inflate state to free
  bool member_done_ = false;  // inflate finished a member and checked its trailer
  bool cut_off_ = false;      // the file ended inside a gzip member
};

}  // namespace layercache::detail
