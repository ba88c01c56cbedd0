// JSON of the Anthropic-format events of §3.2, compact, null fields omitted.
#pragma once

#include "stream/stream_info.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace spool::events {

// {"type":"message_start","message":{...,"usage":{"input_tokens":N,"output_tokens":0}}}
std::string message_start(std::string_view message_id, std::string_view model, std::int64_t input_tokens);

// {"type":"content_block_start","index":I,"block_id":B,"content_block":BLOCK}; `block` is the
// content block object without its start_timestamp, which is added here.
std::string content_block_start(int index, std::string_view block_id, boost::json::object block);

// content_block_delta with {"type":"text_delta","text":T}.
std::string text_delta(int index, std::string_view block_id, std::string_view text);

// content_block_delta with {"type":"thinking_delta","thinking":T}.
std::string thinking_delta(int index, std::string_view block_id, std::string_view thinking);
// content_block_delta with {"type":"signature_delta","signature":S}: a thinking block's
// signature, sent just before its content_block_stop (as Anthropic does).
std::string signature_delta(int index, std::string_view block_id, std::string_view signature);

// content_block_delta with {"type":"input_json_delta","partial_json":P}, plus "partial_json_obj":O
// when `parsed` is given (the block's last fragment: O is its whole input, parsed once).
std::string input_json_delta(int index, std::string_view block_id, std::string_view partial_json,
                             const boost::json::object* parsed);

// {"type":"content_block_stop","stop_timestamp":T,"index":I,"block_id":B}
std::string content_block_stop(int index, std::string_view block_id);

// {"type":"message_delta","delta":{"stop_reason":R,"stop_sequence":S},"usage":{...}}
std::string message_delta(std::string_view stop_reason, const std::optional<std::string>& stop_sequence, Usage usage);

// {"type":"message_stop"}
std::string message_stop();

// The SSE frame of a ping, never stored.
std::string_view ping_frame();

// Deepest nesting of a tool input that is parsed; deeper input is left unparsed ({}).
inline constexpr std::size_t kMaxInputDepth = 64;

// Parses as much of a possibly incomplete JSON object text as is complete: closes open
// strings, arrays and objects, drops a dangling key or partial literal. {} when nothing parses,
// or when it nests deeper than kMaxInputDepth. Linear in the text's length.
boost::json::object parse_partial_object(std::string_view text);

}  // namespace spool::events
