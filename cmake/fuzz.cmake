# CAE_FUZZ=ON: libFuzzer targets for every reader of outside input (fuzz/, docs/reliability.md).
# Needs clang (Debian: clang, libclang-rt-14-dev, libomp-14-dev), so it lives in a build
# directory of its own, next to the g++ one:
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCAE_FUZZ=ON -DCAE_BUILD_TESTS=OFF
#   cmake --build build-fuzz --target cae_fuzzers
#   build-fuzz/fuzz_idx -max_total_time=60 fuzz/corpus/fuzz_idx
# Every target of the build gets AddressSanitizer + UndefinedBehaviorSanitizer; the library and
# the CLI's sources also get libFuzzer's coverage instrumentation, so the fuzzer is steered by
# the readers' own branches.
option(CAE_FUZZ "Build the libFuzzer targets in fuzz/ (clang only)" OFF)

if(CAE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CAE_FUZZ needs clang (found ${CMAKE_CXX_COMPILER_ID}): configure a "
                        "separate build directory with CC=clang CXX=clang++")
  endif()
  set(cae_fuzz_sanitizers -fsanitize=address,undefined -fno-sanitize-recover=all
                          -fno-omit-frame-pointer -g)
  get_property(cae_fuzz_existing DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${cae_fuzz_existing})
    get_target_property(target_type ${target} TYPE)
    if(target_type MATCHES "^(STATIC_LIBRARY|EXECUTABLE)$")
      target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${cae_fuzz_sanitizers}>")
      target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    endif()
  endforeach()
  # -Wno-pass-failed: clang notes every `omp simd` loop it leaves scalar, which says nothing here.
  target_compile_options(cae_lib PRIVATE
                         "$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link;-Wno-pass-failed>")

  # One target per reader; the image readers of issue 4 join when their sources exist.
  set(cae_fuzz_targets fuzz_idx fuzz_png fuzz_model_file fuzz_spec fuzz_cli)
  if(EXISTS ${CMAKE_SOURCE_DIR}/src/data/jpeg_io.cpp)
    list(APPEND cae_fuzz_targets fuzz_jpeg)
  endif()
  if(EXISTS ${CMAKE_SOURCE_DIR}/src/data/image_io.cpp)
    list(APPEND cae_fuzz_targets fuzz_image)
  endif()

  # The CLI harness builds the same subcommands as tools/cae/main.cpp from the same sources.
  file(GLOB cae_fuzz_cli_sources CONFIGURE_DEPENDS tools/cae/*.cpp)
  list(FILTER cae_fuzz_cli_sources EXCLUDE REGEX "/main\\.cpp$")

  foreach(target ${cae_fuzz_targets})
    add_executable(${target} fuzz/${target}.cpp)
    target_include_directories(${target} PRIVATE src fuzz)
    target_compile_options(${target} PRIVATE -Wall -Wextra ${cae_fuzz_sanitizers}
                                             -fsanitize=fuzzer)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${target} PRIVATE cae_lib ZLIB::ZLIB)
  endforeach()
  # It takes whatever the cae_cli library links and defines (features add to it), and compiles
  # its sources itself, instrumented.
  get_target_property(cae_fuzz_cli_libs cae_cli LINK_LIBRARIES)
  get_target_property(cae_fuzz_cli_includes cae_cli INCLUDE_DIRECTORIES)
  get_target_property(cae_fuzz_cli_defs cae_cli COMPILE_DEFINITIONS)
  target_sources(fuzz_cli PRIVATE ${cae_fuzz_cli_sources})
  target_include_directories(fuzz_cli PRIVATE ${cae_fuzz_cli_includes})
  target_compile_definitions(fuzz_cli PRIVATE ${cae_fuzz_cli_defs})
  target_link_libraries(fuzz_cli PRIVATE ${cae_fuzz_cli_libs})

  add_custom_target(cae_fuzzers DEPENDS ${cae_fuzz_targets})
  # scripts/hardening.sh runs what was built, whatever the list grew to.
  string(REPLACE ";" " " cae_fuzz_targets_text "${cae_fuzz_targets}")
  file(WRITE ${CMAKE_BINARY_DIR}/fuzz_targets.txt "${cae_fuzz_targets_text}\n")
  message(STATUS "cae: fuzz targets: ${cae_fuzz_targets}")
endif()
