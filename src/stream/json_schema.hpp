// JSON Schema helpers shared by the request parser and the engines that follow a schema.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string_view>

namespace spool {

// The subschema a local `$ref` names in `root` ("#", or a JSON pointer "#/$defs/Name" with ~0
// and ~1 escapes); nullptr when it names nothing, is not local, or is not a schema (an object
// or a boolean).
const boost::json::value* resolve_local_ref(const boost::json::value& root, std::string_view ref);

}  // namespace spool
