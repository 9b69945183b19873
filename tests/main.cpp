// The test programs' main, their edge: it sets the process's instruction-set cap from the
// environment (CAE_MAX_ISA, as CI's second run of the suite sets it; core/isa.h) before any test
// runs, as the cae program does at its start. The tests that build executors the way the cae
// program does read the executor variables themselves (executor_options_from_environment()).
#include <gtest/gtest.h>

#include "environment.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  cae::apply_isa_cap_from_environment();
  return RUN_ALL_TESTS();
}
