// The exception hierarchy: messages are rebuilt as path segments are prepended.
#include "layercache/errors.hpp"

#include <utility>

namespace layercache {

Error::Error(std::string detail, std::string path)
    : detail_(std::move(detail)), path_(std::move(path)) {
  rebuild();
}

void Error::prepend_path(std::string_view segment) {
  path_ = join_path(segment, path_);
  rebuild();
}

void Error::rebuild() { message_ = path_.empty() ? detail_ : path_ + ": " + detail_; }

std::string join_path(std::string_view parent, std::string_view child) {
  if (parent.empty()) return std::string(child);
  if (child.empty()) return std::string(parent);
  std::string out;
  out.reserve(parent.size() + 1 + child.size());
  out.append(parent).append("/").append(child);
  return out;
}

}  // namespace layercache
