// The schema side of the chat parser: issues in the pydantic-like shape of §5, each with the
// loc of the field it is about, and typed reads of optional or required fields.
#pragma once

#include "core/result.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// Collects schema errors: the first kMaxIssues, then a count.
class Issues {
 public:
  static constexpr std::size_t kMaxIssues = 50;

  // Records {type, loc, msg}; past the cap an issue costs a count, not an entry.
  void add(std::string_view type, const boost::json::array& loc, std::string_view msg);
  // Whether nothing was recorded.
  bool empty() const { return list_.empty(); }
  // The error, with an entry "and N more" when more than kMaxIssues were found; consumes the list.
  Error error();

 private:
  boost::json::array list_;
  std::size_t more_ = 0;  // issues found past the cap
};

// `base` with `key` appended: the loc of a field or element below `base`.
boost::json::array at(const boost::json::array& base, boost::json::value key);

// The value of `key` in `o`; nullptr when it is absent or null.
const boost::json::value* field(const boost::json::object& o, std::string_view key);

// The typed reads of field `key` of `o` (at `loc`): nullopt when it is absent or null, and when
// it has another type, with the issue pydantic reports (for a missing field only when `required`).
std::optional<std::string> get_string(const boost::json::object& o, std::string_view key, const boost::json::array& loc,
                                      Issues& is, bool required);
// A number: an integer is read as a double.
std::optional<double> get_number(const boost::json::object& o, std::string_view key, const boost::json::array& loc,
                                 Issues& is);
// An integer: a whole double is accepted, an integer past int64 reads as its maximum.
std::optional<std::int64_t> get_int(const boost::json::object& o, std::string_view key, const boost::json::array& loc,
                                    Issues& is);
// A boolean.
std::optional<bool> get_bool(const boost::json::object& o, std::string_view key, const boost::json::array& loc,
                             Issues& is);

}  // namespace spool
