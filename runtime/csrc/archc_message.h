// An error message for Rust: a malloc'd copy of `what` (NULL when out of memory), which the
// Rust side reads and hands back to the library's own free function. Shared by
// libtorch_fused.cpp and libtorch_dist.cpp.
#pragma once

#include <cstdlib>
#include <cstring>

namespace archc {

inline char *message(const char *what) {
    char *m = static_cast<char *>(std::malloc(std::strlen(what) + 1));
    if (m != nullptr) {
        std::strcpy(m, what);
    }
    return m;
}

}  // namespace archc
