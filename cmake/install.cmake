# `cmake --install BUILD --prefix DIR` puts in place:
#   lib/libcae.so*          the library, for programs that embed cae (include/cae/cae.h)
#   include/cae/*.h         the public headers (standard library only)
#   bin/cae                 the command-line program
#   share/cae/models/       the shipped models (models/*.cae) and their cards
#   lib/cmake/cae/          the package config: find_package(cae) gives the target cae::cae
#
# Why a shared libcae and not the static cae_lib: cae_lib links oneDNN, OpenMP, zlib, libpng,
# ONNX and protobuf (and MPI when built with it) privately, and a static library's private
# dependencies are still its consumers' link dependencies, so an installed libcae.a would make
# every consumer find and link all of them (and need their -dev packages). libcae.so is cae_lib
# linked whole into one shared object that records those libraries itself: a consumer needs
# the header and -lcae, nothing more. A version script exports only the public API (cae::version,
# cae::Shape, cae::Autoencoder, cae::Error), so the engine's internals are no part of the ABI and
# cannot clash with a consumer's own symbols. Extend the list when a public header grows.
#
# libcae.so also carries the edge's reader of the environment (cae_environment,
# tools/environment.cpp): EngineOptions::from_environment(), the API's default options, is
# defined there, so the engine itself (cae_lib) reads no variable.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CAE_EXPORT_MAP "${CMAKE_BINARY_DIR}/cae-exports.map")
file(WRITE "${CAE_EXPORT_MAP}" [=[{
  global:
    extern "C++" {
      cae::version*;
      cae::Shape::*;
      cae::EngineOptions::*;
      cae::Autoencoder::*;
      cae::Error::*;
      "typeinfo for cae::Error";
      "typeinfo name for cae::Error";
      "vtable for cae::Error";
    };
  local: *;
};
]=])
# add_library needs a source; all the code comes from cae_lib and cae_environment.
set(CAE_SHARED_STUB "${CMAKE_BINARY_DIR}/cae-shared-stub.cpp")
file(WRITE "${CAE_SHARED_STUB}"
     "// libcae.so is cae_lib and cae_environment linked whole (cmake/install.cmake).\n")

add_library(cae_shared SHARED "${CAE_SHARED_STUB}")
set_target_properties(cae_shared PROPERTIES
  OUTPUT_NAME cae
  EXPORT_NAME cae
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  LINK_DEPENDS "${CAE_EXPORT_MAP}")
target_link_libraries(cae_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,cae_environment>"
                      "$<LINK_LIBRARY:WHOLE_ARCHIVE,cae_lib>")
# cae_environment links cae_lib itself, without a feature: the whole archive wins.
set_property(TARGET cae_shared PROPERTY LINK_LIBRARY_OVERRIDE_cae_lib WHOLE_ARCHIVE)
target_link_options(cae_shared PRIVATE "LINKER:--version-script=${CAE_EXPORT_MAP}"
                    "LINKER:--no-undefined")
target_include_directories(cae_shared INTERFACE
  "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>"
  "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
target_compile_features(cae_shared INTERFACE cxx_std_20)  # the header uses std::span

install(TARGETS cae_shared EXPORT caeTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS cae RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The shipped models and their cards (docs/models.md), where src/io/model_store.cpp looks.
install(DIRECTORY models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/cae/models
        FILES_MATCHING PATTERN "*.cae" PATTERN "*.md")
install(DIRECTORY include/cae DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(EXPORT caeTargets NAMESPACE cae:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cae)

set(CAE_CONFIG_DIR "${CMAKE_BINARY_DIR}/cae-package")
file(WRITE "${CAE_CONFIG_DIR}/caeConfig.cmake"
  "# find_package(cae): the target cae::cae (libcae.so and include/cae). libcae.so records its\n"
  "# own dependencies, so there is nothing else to find.\n"
  "include(\"\${CMAKE_CURRENT_LIST_DIR}/caeTargets.cmake\")\n")
# 0.x: minor versions may change the API.
write_basic_package_version_file("${CAE_CONFIG_DIR}/caeConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CAE_CONFIG_DIR}/caeConfig.cmake" "${CAE_CONFIG_DIR}/caeConfigVersion.cmake"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cae)

# The install test installs this build tree into a temporary prefix, so everything installed
# must be built first.
if(TARGET test_install)
  add_dependencies(test_install cae_shared cae)
  target_compile_definitions(test_install PRIVATE CAE_CMAKE="${CMAKE_COMMAND}"
                             CAE_CXX_COMPILER="${CMAKE_CXX_COMPILER}")
endif()
