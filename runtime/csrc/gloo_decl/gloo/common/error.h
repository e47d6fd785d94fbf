// Declarations only: see ../README.md. c10d's ProcessGroupGloo.hpp includes this header but
// names nothing from it that archc uses.
#pragma once
