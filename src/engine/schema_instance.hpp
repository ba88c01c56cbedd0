// A small JSON value valid against a JSON schema, for the mock engine's structured output.
#pragma once

#include "core/result.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <string>

namespace spool {

// Limits on making one instance: its nesting, and subschemas visited (failed attempts included).
inline constexpr std::size_t kMaxInstanceDepth = 16;
inline constexpr std::size_t kMaxInstanceSteps = 2000;

// A deterministic instance of `schema`: every listed property (an optional one left out when it
// cannot be made), arrays of max(minItems, 1) items (none when maxItems is 0), strings and
// numbers within their bounds and formats, the first enum value or branch that works, $refs
// followed. Covers object/properties/required/additionalProperties, array/items/prefixItems,
// string (formats, lengths), number/integer (bounds), boolean, null, enum, const,
// anyOf/oneOf/allOf and local $ref; patterns and multipleOf are not honoured.
// invalid_request when no instance fits within the limits (e.g. a required recursion).
// With `minimal`, only required properties and minItems items are made (a tool call's input:
// `{}` when nothing is required).
Result<boost::json::value> schema_instance(const boost::json::object& schema, bool minimal = false);

// `v` as JSON text with a space after each ',' and ':', so the mock streams it word by word.
std::string spaced_json(const boost::json::value& v);

}  // namespace spool
