// CSV files, plain or gzip-compressed: a data set with a label column or target columns.
#include "layercache/data.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "gzip_reader.hpp"

namespace layercache {
namespace {

using detail::GzReader;

/// The whole (decompressed) file as text.
std::string read_text(const std::string& path) {
  GzReader in(path);
  std::string text;
  // Read in chunks that grow with the file (64 KiB to 16 MiB): a small file costs a small
  // buffer, a large one few reads.
  std::size_t chunk = std::size_t{1} << 16;
  for (;;) {
    const std::size_t old = text.size();
    text.resize(old + chunk);
    const std::size_t got = in.read(text.data() + old, chunk);
    text.resize(old + got);
    if (got < chunk) break;
    chunk = std::min(chunk * 2, std::size_t{1} << 24);
  }
  in.check_end();
  return text;
}

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

/// Where a CSV field is, for messages: "line 4, column 3 (index 2)".
std::string csv_place(std::size_t line, std::size_t column) {
  return "line " + std::to_string(line) + ", column " + std::to_string(column + 1) +
         " (index " + std::to_string(column) + ")";
}

/// The field parsed as a finite number of type T; DataError naming the place otherwise.
template <class T>
T parse_number(std::string_view field, const std::string& path, std::size_t line,
               std::size_t column) {
  const std::string_view text = trim(field);
  if (text.empty()) throw DataError(csv_place(line, column) + ": expected a number, found an empty field", path);
  std::string_view digits = text;
  if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-') digits.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) {
    throw DataError(csv_place(line, column) + ": the number \"" + std::string(text) +
                        "\" is out of range",
                    path);
  }
  if (ec != std::errc() || end != digits.data() + digits.size()) {
    throw DataError(csv_place(line, column) + ": expected a number, found \"" +
                        std::string(text) + "\"",
                    path);
  }
  const T converted = static_cast<T>(value);
  if (!std::isfinite(converted)) {
    throw DataError(csv_place(line, column) + ": expected a finite number, found \"" +
                        std::string(text) + "\"",
                    path);
  }
  return converted;
}

/// The field parsed as a class label (a non-negative integer, "3" or "3.0").
arma::uword parse_label(std::string_view field, const std::string& path, std::size_t line,
                        std::size_t column) {
  double value = -1;
  try {
    value = parse_number<double>(field, path, line, column);
  } catch (const DataError&) {
    value = -1;  // reported below with the label wording
  }
  if (value < 0 || value != std::floor(value)) {
    throw DataError(csv_place(line, column) +
                        ": expected a label (a non-negative integer), found \"" +
                        std::string(trim(field)) + "\"",
                    path);
  }
  if (value >= static_cast<double>(max_classes)) {
    throw DataError(csv_place(line, column) + ": label \"" + std::string(trim(field)) +
                        "\" is not below max_classes = " + std::to_string(max_classes) +
                        " (a damaged file, or a column that does not hold class labels?)",
                    path);
  }
  return static_cast<arma::uword>(value);
}

/// Splits `line` at `delimiter` into `fields` (reused between lines).
void split_fields(std::string_view line, char delimiter, std::vector<std::string_view>& fields) {
  fields.clear();
  for (;;) {
    const std::size_t at = line.find(delimiter);
    fields.push_back(line.substr(0, at));
    if (at == std::string_view::npos) return;
    line.remove_prefix(at + 1);
  }
}

void check_csv_options(const CsvOptions& options, const std::string& path) {
  if (options.n_classes > max_classes) {
    throw ConfigError("CsvOptions::n_classes is " + std::to_string(options.n_classes) +
                          ", more than max_classes = " + std::to_string(max_classes),
                      path);
  }
  if (options.label_column < -1) {
    throw ConfigError("CsvOptions::label_column must be -1 (no labels) or a 0-based column "
                      "index, found " + std::to_string(options.label_column),
                      path);
  }
  if (options.label_column >= 0 && !options.target_columns.empty()) {
    throw ConfigError("CsvOptions: a data set holds labels or targets, not both; set either "
                      "label_column or target_columns",
                      path);
  }
  auto sorted = options.target_columns;
  std::sort(sorted.begin(), sorted.end());
  const auto repeat = std::adjacent_find(sorted.begin(), sorted.end());
  if (repeat != sorted.end()) {
    throw ConfigError("CsvOptions::target_columns names column index " + std::to_string(*repeat) +
                          " twice",
                      path);
  }
}

// What a CSV column holds.
enum class ColumnRole { feature, label, target };

}  // namespace

template <class T>
Dataset<T> read_csv(const std::string& path, const CsvOptions& options) {
  check_csv_options(options, path);
  const std::string text = read_text(path);

  std::vector<ColumnRole> roles;         // (n_columns)
  std::vector<std::size_t> target_slot;  // (n_columns): position in the targets column
  std::vector<T> features;               // n × n_features, sample after sample
  std::vector<T> targets;                // n × n_targets, sample after sample
  std::vector<arma::uword> labels;       // (n)
  std::vector<std::size_t> label_lines;  // (n): line of each label, for messages
  std::vector<std::string_view> fields;  // reused for every line
  std::vector<T> row_targets(options.target_columns.size());
  std::size_t first_data_line = 0;
  bool header_pending = options.header;

  std::string_view rest = text;
  for (std::size_t line = 1; !rest.empty(); ++line) {
    const std::size_t newline = rest.find('\n');
    std::string_view current = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (!current.empty() && current.back() == '\r') current.remove_suffix(1);
    if (trim(current).empty()) continue;
    if (header_pending) {
      header_pending = false;
      continue;
    }
    split_fields(current, options.delimiter, fields);

    if (roles.empty()) {  // the first data row fixes the columns
      first_data_line = line;
      roles.assign(fields.size(), ColumnRole::feature);
      target_slot.assign(fields.size(), 0);
      if (options.label_column >= 0) {
        const auto column = static_cast<std::size_t>(options.label_column);
        if (column >= fields.size()) {
          throw ConfigError("CsvOptions::label_column is " + std::to_string(column) +
                                ", but line " + std::to_string(line) + " has only " +
                                std::to_string(fields.size()) + " columns (indices 0 to " +
                                std::to_string(fields.size() - 1) + ")",
                            path);
        }
        roles[column] = ColumnRole::label;
      }
      for (std::size_t k = 0; k < options.target_columns.size(); ++k) {
        const std::size_t column = options.target_columns[k];
        if (column >= fields.size()) {
          throw ConfigError("CsvOptions::target_columns names column index " +
                                std::to_string(column) + ", but line " + std::to_string(line) +
                                " has only " + std::to_string(fields.size()) + " columns",
                            path);
        }
        roles[column] = ColumnRole::target;
        target_slot[column] = k;
      }
      if (std::count(roles.begin(), roles.end(), ColumnRole::feature) == 0) {
        throw ConfigError("no feature columns: every column of line " + std::to_string(line) +
                              " is a label or target column",
                          path);
      }
    } else if (fields.size() != roles.size()) {
      throw DataError("ragged row: line " + std::to_string(line) + " has " +
                          std::to_string(fields.size()) + " fields, expected " +
                          std::to_string(roles.size()) + " as on line " +
                          std::to_string(first_data_line),
                      path);
    }

    for (std::size_t column = 0; column < fields.size(); ++column) {
      switch (roles[column]) {
        case ColumnRole::feature:
          features.push_back(parse_number<T>(fields[column], path, line, column));
          break;
        case ColumnRole::label:
          labels.push_back(parse_label(fields[column], path, line, column));
          label_lines.push_back(line);
          break;
        case ColumnRole::target:
          row_targets[target_slot[column]] = parse_number<T>(fields[column], path, line, column);
          break;
      }
    }
    targets.insert(targets.end(), row_targets.begin(), row_targets.end());
  }
  if (roles.empty()) throw DataError("expected at least one data row, found none", path);

  const std::size_t n_features = static_cast<std::size_t>(
      std::count(roles.begin(), roles.end(), ColumnRole::feature));
  const std::size_t n = features.size() / n_features;
  Dataset<T> data;
  data.x = arma::Mat<T>(features.data(), n_features, n);
  if (options.shape.rank() == 0) {
    data.shape = Shape{n_features};
  } else if (options.shape.size() != n_features) {
    throw ShapeError("CsvOptions::shape " + options.shape.str() + " has " +
                         std::to_string(options.shape.size()) + " elements, but the file has " +
                         std::to_string(n_features) + " feature columns",
                     path);
  } else {
    data.shape = options.shape;
  }
  if (!options.target_columns.empty())
    data.targets = arma::Mat<T>(targets.data(), options.target_columns.size(), n);
  if (options.label_column >= 0) {
    data.labels = arma::uvec(labels);
    if (options.n_classes == 0) {
      data.n_classes = static_cast<std::size_t>(data.labels.max()) + 1;
    } else {
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] >= options.n_classes) {
          throw DataError(csv_place(label_lines[i], static_cast<std::size_t>(options.label_column)) +
                              ": label " + std::to_string(labels[i]) + " of sample " +
                              std::to_string(i) + " is out of range: expected labels below " +
                              "n_classes = " + std::to_string(options.n_classes),
                          path);
        }
      }
      data.n_classes = options.n_classes;
    }
  }
  return data;
}

template Dataset<float> read_csv<float>(const std::string&, const CsvOptions&);
template Dataset<double> read_csv<double>(const std::string&, const CsvOptions&);

}  // namespace layercache
