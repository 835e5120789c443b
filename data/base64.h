// Standard base64 (RFC 4648, alphabet A-Z a-z 0-9 + /, '=' padding): binary data in text formats
// (the SentencePiece model in JSON archives and in safetensors metadata).
#pragma once

#include <string>
#include <string_view>

namespace pf {

std::string base64_encode(std::string_view bytes);
// Throws std::invalid_argument on a length that is not a multiple of 4, a character outside the
// alphabet, or misplaced padding.
std::string base64_decode(std::string_view text);

}  // namespace pf
