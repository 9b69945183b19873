# CAE_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer on every target of this build
# (the library, the CLI, the tests), for scripts/hardening.sh. Use a build directory of its own:
#   cmake -S . -B build-sanitize -DCAE_SANITIZE=ON
# Undefined behaviour aborts instead of printing and going on (-fno-sanitize-recover), so a
# finding fails the test that triggers it. oneDNN and libpng themselves stay uninstrumented
# (Debian's builds); their calls into our code and our buffers handed to them are still checked.
option(CAE_SANITIZE "Build every target with -fsanitize=address,undefined" OFF)

if(CAE_SANITIZE)
  set(cae_sanitize_flags -fsanitize=address,undefined -fno-sanitize-recover=all
                         -fno-omit-frame-pointer -g)
  # This file is included after the targets exist, so the flags go onto each one rather than
  # into add_compile_options (which only reaches targets created later).
  get_property(cae_sanitize_targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${cae_sanitize_targets})
    get_target_property(target_type ${target} TYPE)
    if(target_type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
      target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${cae_sanitize_flags}>")
      target_link_options(${target} PRIVATE -fsanitize=address,undefined)
      # The test programs themselves build at -O1 (it comes after the build type's -O3, so it
      # wins): the tree then builds in 802 s instead of 1,180 on 2 cores, and what the tests run
      # is mostly the library, which stays at -O3 (at -O1 its reference kernels made the
      # batch-200 parity tests run past ctest's limit; docs/reliability.md, "Time").
      if(target MATCHES "^test_")
        target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-O1>")
      endif()
    endif()
  endforeach()
  message(STATUS "cae: sanitizers on (address, undefined) for: ${cae_sanitize_targets}")
endif()
