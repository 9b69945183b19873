# Data-parallel training across processes and machines (docs/distributed.md). The communicator
# interface and its single-process form are always built; the MPI implementation only when MPI
# is found (Debian: libopenmpi-dev, openmpi-bin), so a machine without MPI still builds cae and
# passes the tests, and the same binary runs without mpirun as one process.
find_package(MPI COMPONENTS CXX QUIET)
option(CAE_MPI "Build data-parallel training on MPI" ${MPI_CXX_FOUND})
if(CAE_MPI AND NOT MPI_CXX_FOUND)
  message(FATAL_ERROR "CAE_MPI is ON but no MPI was found (Debian: apt install libopenmpi-dev openmpi-bin)")
endif()

target_sources(cae_lib PRIVATE src/dist/communicator.cpp)
if(CAE_MPI)
  target_sources(cae_lib PRIVATE src/dist/mpi_communicator.cpp)
  target_link_libraries(cae_lib PRIVATE MPI::MPI_CXX)
  set_source_files_properties(src/dist/communicator.cpp PROPERTIES COMPILE_DEFINITIONS CAE_WITH_MPI)
  message(STATUS "cae: data-parallel training on MPI (${MPIEXEC_EXECUTABLE})")
else()
  message(STATUS "cae: built without MPI: training runs as one process")
endif()

# The multi-process tests launch the cae binary under mpirun; without MPI they skip.
if(TARGET test_mpi AND CAE_MPI)
  target_compile_definitions(test_mpi PRIVATE CAE_MPIRUN="${MPIEXEC_EXECUTABLE}")
endif()
