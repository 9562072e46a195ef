#pragma once
// Checked reads of untrusted JSON (config.json, tokenizer.json, tokenizer_config.json, safetensors headers,
// quantization_config, ...). Every failure is an llmopt::Error, one line naming the source (a file, or a
// file and the path to the object: "config.json: rope_scaling"), the key and what is wrong: missing, of the
// wrong type, or out of range.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace llmopt {

// Parses text; Error "<what>: malformed JSON (<parser's message>)".
nlohmann::json parse_json(std::string_view text, const std::string& what);
// read_file + parse_json, naming the file.
nlohmann::json read_json_file(const std::filesystem::path& p);

// A value's JSON type in words for messages: "a string \"abc\"", "an array", "null", ...
std::string json_kind(const nlohmann::json& v);

// Checks on one value (an array element, a top-level document); `what` names it in the message.
int64_t json_integer(const nlohmann::json& v, const std::string& what,
                     int64_t lo = std::numeric_limits<int64_t>::min(), int64_t hi = std::numeric_limits<int64_t>::max());
double json_number(const nlohmann::json& v, const std::string& what);
bool json_boolean(const nlohmann::json& v, const std::string& what);
std::string json_string(const nlohmann::json& v, const std::string& what);
const nlohmann::json& json_array(const nlohmann::json& v, const std::string& what);

// Typed access to the fields of one JSON object. A field that is absent or null counts as missing: the
// required forms fail, the _or forms return the default. Integers given as integral floats (2048.0) are
// accepted; anything else of the wrong type fails.
class JsonObject {
 public:
  static constexpr int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();

  JsonObject(const nlohmann::json& j, std::string what);  // Error unless j is an object

  const std::string& what() const { return what_; }
  const nlohmann::json& raw() const { return j_; }
  std::string path(std::string_view key) const;  // what: key, for nested objects' messages

  bool has(std::string_view key) const;
  const nlohmann::json& get(std::string_view key) const;  // required, any type

  int64_t integer(std::string_view key, int64_t lo = kMin, int64_t hi = kMax) const;
  int64_t integer_or(std::string_view key, int64_t dflt, int64_t lo = kMin, int64_t hi = kMax) const;
  double number(std::string_view key) const;
  double number_or(std::string_view key, double dflt) const;
  bool boolean(std::string_view key) const;
  bool boolean_or(std::string_view key, bool dflt) const;
  std::string string(std::string_view key) const;
  std::string string_or(std::string_view key, std::string dflt) const;
  const nlohmann::json& array(std::string_view key) const;       // required array
  const nlohmann::json& array_or_empty(std::string_view key) const;
  JsonObject object(std::string_view key) const;                 // required object
  std::optional<JsonObject> object_or_null(std::string_view key) const;  // missing → nullopt

 private:
  const nlohmann::json& j_;
  std::string what_;
};

}  // namespace llmopt
