#include "lib/core/json.h"

#include <cmath>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"

namespace llmopt {
using nlohmann::json;

json parse_json(std::string_view text, const std::string& what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail("{}: malformed JSON ({})", what, e.what());
  }
}

json read_json_file(const std::filesystem::path& p) { return parse_json(read_file(p), p.string()); }

std::string json_kind(const json& v) {
  std::string d = v.dump();
  if (d.size() > 40) d = d.substr(0, 37) + "...";
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string " + d;
    case json::value_t::boolean: return "a boolean " + d;
    default: return "the number " + d;
  }
}

int64_t json_integer(const json& v, const std::string& what, int64_t lo, int64_t hi) {
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail("{} must be between {} and {}, got {}", what, lo, hi, v.dump());
    x = v.get<int64_t>();
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) && std::abs(v.get<double>()) < 9.2e18 &&
             v.get<double>() == std::trunc(v.get<double>())) {
    x = int64_t(v.get<double>());
  } else {
    fail("{} must be an integer, got {}", what, json_kind(v));
  }
  if (x < lo || x > hi) {
    if (lo == 1 && hi == std::numeric_limits<int64_t>::max()) fail("{} must be positive, got {}", what, x);
    fail("{} must be between {} and {}, got {}", what, lo, hi, x);
  }
  return x;
}

double json_number(const json& v, const std::string& what) {
  if (!v.is_number()) fail("{} must be a number, got {}", what, json_kind(v));
  return v.get<double>();
}

bool json_boolean(const json& v, const std::string& what) {
  if (!v.is_boolean()) fail("{} must be true or false, got {}", what, json_kind(v));
  return v.get<bool>();
}

std::string json_string(const json& v, const std::string& what) {
  if (!v.is_string()) fail("{} must be a string, got {}", what, json_kind(v));
  return v.get<std::string>();
}

const json& json_array(const json& v, const std::string& what) {
  if (!v.is_array()) fail("{} must be an array, got {}", what, json_kind(v));
  return v;
}

JsonObject::JsonObject(const json& j, std::string what) : j_(j), what_(std::move(what)) {
  if (!j_.is_object()) fail("{}: expected a JSON object, got {}", what_, json_kind(j_));
}

std::string JsonObject::path(std::string_view key) const { return what_ + ": " + std::string(key); }

namespace {
std::string field(const std::string& what, std::string_view key) { return fmt::format("{}: field \"{}\"", what, key); }
}  // namespace

bool JsonObject::has(std::string_view key) const {
  auto it = j_.find(std::string(key));
  return it != j_.end() && !it->is_null();
}

const json& JsonObject::get(std::string_view key) const {
  auto it = j_.find(std::string(key));
  if (it == j_.end() || it->is_null()) fail("{}: missing required field \"{}\"", what_, key);
  return *it;
}

int64_t JsonObject::integer(std::string_view key, int64_t lo, int64_t hi) const {
  return json_integer(get(key), field(what_, key), lo, hi);
}
int64_t JsonObject::integer_or(std::string_view key, int64_t dflt, int64_t lo, int64_t hi) const {
  return has(key) ? integer(key, lo, hi) : dflt;
}
double JsonObject::number(std::string_view key) const { return json_number(get(key), field(what_, key)); }
double JsonObject::number_or(std::string_view key, double dflt) const { return has(key) ? number(key) : dflt; }
bool JsonObject::boolean(std::string_view key) const { return json_boolean(get(key), field(what_, key)); }
bool JsonObject::boolean_or(std::string_view key, bool dflt) const { return has(key) ? boolean(key) : dflt; }
std::string JsonObject::string(std::string_view key) const { return json_string(get(key), field(what_, key)); }
std::string JsonObject::string_or(std::string_view key, std::string dflt) const {
  return has(key) ? string(key) : std::move(dflt);
}
const json& JsonObject::array(std::string_view key) const { return json_array(get(key), field(what_, key)); }
const json& JsonObject::array_or_empty(std::string_view key) const {
  static const json empty = json::array();
  return has(key) ? array(key) : empty;
}
JsonObject JsonObject::object(std::string_view key) const {
  const json& v = get(key);
  if (!v.is_object()) fail("{} must be an object, got {}", field(what_, key), json_kind(v));
  return JsonObject(v, path(key));
}
std::optional<JsonObject> JsonObject::object_or_null(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return object(key);
}

}  // namespace llmopt
