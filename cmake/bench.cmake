# CAE_BUILD_BENCH=ON: cae_bench, cae's side of the side-by-side benchmark (bench/run.py drives it
# against PyTorch). A benchmark is not a test: it is never part of ctest and off by default.
option(CAE_BUILD_BENCH "Build bench/cae_bench (the benchmark harness's C++ side)" OFF)

if(CAE_BUILD_BENCH)
  add_executable(cae_bench bench/cae_bench.cpp)
  target_include_directories(cae_bench PRIVATE src)
  target_compile_options(cae_bench PRIVATE -Wall -Wextra)
  target_link_libraries(cae_bench PRIVATE cae_environment cae_lib)
  # The C++ API's side of bench/python_api.py: only the public header, as an embedding program
  # (its default options, EngineOptions::from_environment(), come with cae_environment, as
  # libcae.so carries them).
  add_executable(cae_api_bench bench/api_bench.cpp)
  target_compile_options(cae_api_bench PRIVATE -Wall -Wextra)
  target_link_libraries(cae_api_bench PRIVATE cae_environment cae_lib)
endif()
