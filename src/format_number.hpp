// A number in an error message or description, printed the shortest way that reads back
// ("0.001", "1e-08", "-1") rather than std::to_string's fixed six decimals (internal).
#pragma once

#include <sstream>
#include <string>

namespace layercache::detail {

inline std::string format_number(double value) {
  std::ostringstream out;
  out.precision(6);
  out << value;
  return out.str();
}

}  // namespace layercache::detail
