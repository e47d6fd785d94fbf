// Declarations only: see ../README.md. ProcessGroupGloo.hpp's inline `setTimeout` calls
// `Context::setTimeout`; archc never calls it, so the class declares that one member.
#pragma once

#include <chrono>

namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
