# The Python module `cae` (python/, docs/python.md): pybind11 bindings over cae_lib, for
# Debian's own /usr/bin/python3 (3.11), with NumPy arrays in and out. Needs Debian pybind11-dev
# and python3-dev; running it needs python3-numpy (its tests, python3-pytest).
#   build/python/cae/      the package, so that PYTHONPATH=build/python /usr/bin/python3 finds it
#   cmake --install        puts it in lib/python3.11/dist-packages under the prefix, where
#                          Debian's python3 looks for /usr/local and /usr alike
# -DCAE_PYTHON=OFF leaves it out (scripts/hardening.sh does: an instrumented extension cannot
# load into an uninstrumented interpreter).
#
# Nothing here runs the interpreter. Python's start-up reads every .pth file in its
# site-packages, whoever put them there, and scripts/check-deps.sh fails a build that reads
# files install-deps does not install: so the headers and the extension suffix come from
# python3.11-config (Development.Module without Interpreter), and pybind11 is told what it would
# otherwise ask the interpreter.
option(CAE_PYTHON "Build the Python module cae (pybind11, for /usr/bin/python3)" ON)

if(CAE_PYTHON)
  # Debian's Python, not whatever python3 comes first on PATH (a pyenv, a virtualenv).
  set(Python3_ROOT_DIR /usr)
  set(Python3_FIND_STRATEGY LOCATION)
  set(Python3_FIND_VIRTUALENV STANDARD)
  find_package(Python3 3.11 REQUIRED COMPONENTS Development.Module)
  set(CAE_PYTHON_EXECUTABLE /usr/bin/python3 CACHE FILEPATH
      "the interpreter the module is built for (tests and docs run it)")
  set(Python3_EXECUTABLE "${CAE_PYTHON_EXECUTABLE}")
  # What pybind11's NewTools would ask the interpreter (a release CPython: no Py_DEBUG).
  set(PYTHON_IS_DEBUG FALSE CACHE INTERNAL "")
  set(PYTHON_MODULE_EXTENSION ".${Python3_SOABI}.so" CACHE INTERNAL "")
  # ... and that it has asked this interpreter already (else it forgets the two answers above).
  set(PYBIND11_PYTHON_EXECUTABLE_LAST "${Python3_EXECUTABLE}" CACHE INTERNAL "")
  find_package(pybind11 2.10 CONFIG REQUIRED)

  file(GLOB CAE_PYTHON_SOURCES CONFIGURE_DEPENDS python/*.cpp)
  pybind11_add_module(cae_python MODULE NO_EXTRAS ${CAE_PYTHON_SOURCES})
  set(CAE_PYTHON_DIR "${CMAKE_BINARY_DIR}/python/cae")
  set_target_properties(cae_python PROPERTIES OUTPUT_NAME _cae
                        LIBRARY_OUTPUT_DIRECTORY "${CAE_PYTHON_DIR}")
  target_include_directories(cae_python PRIVATE src python)
  target_compile_options(cae_python PRIVATE -Wall -Wextra)
  target_compile_definitions(cae_python PRIVATE CAE_VERSION="${PROJECT_VERSION}")
  # cae_lib (and cae_cli, whose parser cae.train() and cae.evaluate() use, and cae_environment,
  # the edge's reader of the environment) are linked in whole;
  # their symbols stay inside the module, so they cannot meet those of another extension (or of
  # libcae.so) loaded into the same interpreter.
  target_link_libraries(cae_python PRIVATE cae_cli cae_lib)
  target_link_options(cae_python PRIVATE "LINKER:--exclude-libs,ALL")

  # The package's Python files next to the extension, on every build.
  file(GLOB CAE_PYTHON_FILES CONFIGURE_DEPENDS python/cae/*)
  set(cae_python_copies)
  foreach(file ${CAE_PYTHON_FILES})
    get_filename_component(name "${file}" NAME)
    add_custom_command(OUTPUT "${CAE_PYTHON_DIR}/${name}"
                       COMMAND ${CMAKE_COMMAND} -E copy "${file}" "${CAE_PYTHON_DIR}/${name}"
                       DEPENDS "${file}" VERBATIM)
    list(APPEND cae_python_copies "${CAE_PYTHON_DIR}/${name}")
  endforeach()
  add_custom_target(cae_python_files ALL DEPENDS ${cae_python_copies})
  add_dependencies(cae_python cae_python_files)

  set(CAE_PYTHON_INSTALL_DIR
      "lib/python${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}/dist-packages" CACHE STRING
      "where cmake --install puts the package cae, under the prefix")
  install(TARGETS cae_python LIBRARY DESTINATION "${CAE_PYTHON_INSTALL_DIR}/cae")
  install(FILES ${CAE_PYTHON_FILES} DESTINATION "${CAE_PYTHON_INSTALL_DIR}/cae")
  message(STATUS "cae: Python module for ${CAE_PYTHON_EXECUTABLE} (${Python3_VERSION}) in "
                 "${CAE_PYTHON_DIR}")
endif()
