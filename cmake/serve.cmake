# cae serve (src/serve/, docs/serve.md): the HTTP server, on cpp-httplib (Debian
# libcpp-httplib-dev 0.11), and the page (web/), built into the binary. Debian ships cpp-httplib
# compiled, with a pkg-config file and no CMake package; its Cflags (OpenSSL, zlib and Brotli
# support) change its classes' layout, so they come from pkg-config rather than by hand.
# cae_serve links httplib PRIVATE: no httplib type appears in a header under src/serve/.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib>=0.11)

set(CAE_WEB_ASSETS "${CMAKE_BINARY_DIR}/generated/web_assets.cpp")
file(GLOB CAE_WEB_FILES CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/web/*")
add_custom_command(
  OUTPUT "${CAE_WEB_ASSETS}"
  COMMAND "${CMAKE_COMMAND}" -DOUT=${CAE_WEB_ASSETS} -DWEB_DIR=${CMAKE_SOURCE_DIR}/web
          -P "${CMAKE_SOURCE_DIR}/cmake/embed_web.cmake"
  DEPENDS ${CAE_WEB_FILES} "${CMAKE_SOURCE_DIR}/cmake/embed_web.cmake"
  COMMENT "Embedding web/ into cae serve")

file(GLOB CAE_SERVE_SOURCES CONFIGURE_DEPENDS src/serve/*.cpp)
add_library(cae_serve STATIC ${CAE_SERVE_SOURCES} "${CAE_WEB_ASSETS}")
set_target_properties(cae_serve PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_include_directories(cae_serve PUBLIC src)
target_compile_options(cae_serve PRIVATE -Wall -Wextra)
target_link_libraries(cae_serve PUBLIC cae_lib PRIVATE PkgConfig::HTTPLIB nlohmann_json::nlohmann_json)
target_link_libraries(cae_cli PUBLIC cae_serve)

# The API tests talk to the server through httplib's client.
if(TARGET test_serve)
  target_link_libraries(test_serve PRIVATE cae_serve PkgConfig::HTTPLIB)
endif()

# The page in a real browser (tests/serve_browser.js): Debian's chromium driven by npm's
# playwright-core, which scripts/setup-playwright.sh installs into the build tree. The test says
# why and skips (exit 77) when chromium or playwright-core is missing.
if(CAE_BUILD_TESTS)
  find_program(CAE_NODE node)
  if(CAE_NODE)
    add_test(NAME serve_browser COMMAND "${CAE_NODE}" "${CMAKE_SOURCE_DIR}/tests/serve_browser.js")
  else()
    add_test(NAME serve_browser
             COMMAND sh -c "echo 'serve_browser: SKIPPED: node is missing'; exit 77")
  endif()
  set_tests_properties(serve_browser PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 300
    ENVIRONMENT "CAE_EXE=$<TARGET_FILE:cae>;CAE_PLAYWRIGHT=${CMAKE_BINARY_DIR}/playwright;CAE_TEST_OUT=${CMAKE_BINARY_DIR}/serve-browser;OMP_NUM_THREADS=2;CAE_KERNELS=fixed")
endif()
