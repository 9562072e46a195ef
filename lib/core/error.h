#pragma once
// One error type for every failure a user can cause (bad file, bad shape, bad flag value).
// The message is a single line naming what is wrong; apps/ prints it and exits non-zero.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace llmopt {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace llmopt
