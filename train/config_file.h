// performer-train's config file (`--config FILE`): TOML, read by toml++ (Debian: libtomlplusplus-dev)
// and held to the flag list (train_config.h visit_fields): every key is a flag name without "--", at the
// top level (no tables), at most once, of the field's type (a list of strings, a string, true / false,
// an integer, a number), within the field's range. Anything else is refused with
// std::invalid_argument naming the file, the line and the key: unknown or misspelled keys, duplicates,
// sections, wrong types, out-of-range values, text that is not TOML. A UTF-8 byte order mark is
// accepted. to_config_file (below) writes files this reader takes back unchanged.
#pragma once

#include <map>
#include <string>

namespace pf {

// key -> the value's text form (as field_text gives it), for set_field.
std::map<std::string, std::string> read_config_file(const std::string& path);

struct TrainConfig;

// The config file of a run: "# comment" lines and "key = value" lines in TOML (strings quoted, lists
// in brackets), in the order of visit_fields. Empty values are written commented out.
std::string to_config_file(const TrainConfig& c);

// A string as a TOML basic string ("..." with \" \\ and control characters escaped).
std::string toml_quote(const std::string& s);

}  // namespace pf
