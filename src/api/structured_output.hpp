// The structured-output fields of the chat request (§2): Anthropic's output_config.format and
// older output_format, OpenAI's response_format, each a JSON schema checked to be bounded.
#pragma once

#include "api/chat_schema.hpp"
#include "stream/chat_request.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstddef>

namespace spool {

// Limits on a schema the reply must follow: nesting of subschemas, and subschemas in all.
inline constexpr std::size_t kMaxSchemaDepth = 32;
inline constexpr std::size_t kMaxSchemaNodes = 2000;

// Reads output_config, output_format and response_format of `o` (at `loc`) into
// req.output_config and req.output_format; a bad shape, a schema past the limits or an output
// format given twice is an issue naming the field.
void parse_structured_output(const boost::json::object& o, const boost::json::array& loc, ChatRequest& req, Issues& is);

// Checks that `schema` (at `loc`) is a JSON schema within the limits whose keywords have the
// types JSON Schema gives them and whose local $refs resolve; issues name the offending keyword.
void check_json_schema(const boost::json::object& schema, const boost::json::array& loc, Issues& is);

}  // namespace spool
