# The CUDA backend (src/ops/cuda, docs/gpu.md): cuDNN convolutions and our own kernels, for
# training on an NVIDIA GPU. On by default whenever a CUDA compiler and cuDNN are found, so CI
# compiles it and it cannot rot; -DCAE_CUDA=OFF turns it off. Building needs no GPU and no
# driver: the CUDA runtime is linked statically and finds the driver (libcuda.so.1) only when the
# cuda backend is first asked for, and cuDNN's own libraries load nothing from the driver at
# start, so cae runs on machines without one and says so when --device cuda is asked for.
include(CheckLanguage)

# nvcc is rarely on PATH; the toolkit's usual place is where CMake would not look by itself.
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
   AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
check_language(CUDA)

set(_cae_cuda_found OFF)
if(CMAKE_CUDA_COMPILER)
  get_filename_component(_cae_cuda_root "${CMAKE_CUDA_COMPILER}" DIRECTORY)
  get_filename_component(_cae_cuda_root "${_cae_cuda_root}" DIRECTORY)
  set(CUDAToolkit_ROOT "${_cae_cuda_root}")
  find_package(CUDAToolkit QUIET)
  find_path(CAE_CUDNN_INCLUDE_DIR cudnn.h
            HINTS ${CUDAToolkit_INCLUDE_DIRS} "${_cae_cuda_root}/include")
  find_library(CAE_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} "${_cae_cuda_root}/lib64")
  if(CUDAToolkit_FOUND AND CAE_CUDNN_INCLUDE_DIR AND CAE_CUDNN_LIBRARY)
    set(_cae_cuda_found ON)
  endif()
endif()

option(CAE_CUDA "Build the CUDA backend (needs the CUDA toolkit and cuDNN 9)" ${_cae_cuda_found})

if(NOT CAE_CUDA)
  message(STATUS "cae: CUDA backend off (CUDA compiler: '${CMAKE_CUDA_COMPILER}', cuDNN: "
                 "'${CAE_CUDNN_LIBRARY}'); --device cuda will say 'built without CUDA'")
  return()
endif()
if(NOT _cae_cuda_found)
  message(FATAL_ERROR "CAE_CUDA=ON needs nvcc, the CUDA toolkit and cuDNN 9 (cudnn.h, libcudnn); "
                      "found compiler '${CMAKE_CUDA_COMPILER}', cudnn.h in "
                      "'${CAE_CUDNN_INCLUDE_DIR}', library '${CAE_CUDNN_LIBRARY}'")
endif()

# Hopper (H100, H200) by default: the machines the backend is measured on. The default also
# embeds PTX, which the driver compiles for newer GPUs at first use; older ones need
# -DCMAKE_CUDA_ARCHITECTURES=<their capability>, and the backend says so when it finds one.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)

add_library(cae_cuda STATIC
  src/ops/cuda/cuda_executor.cpp
  src/ops/cuda/buffers.cpp
  src/ops/cuda/conv_plans.cpp
  src/ops/cuda/op_kernels.cpp
  src/ops/cuda/fused_step.cpp
  src/ops/cuda/kernels.cu)
set_target_properties(cae_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_STANDARD 17
                                          CUDA_STANDARD_REQUIRED ON)
target_include_directories(cae_cuda PRIVATE include src ${CAE_CUDNN_INCLUDE_DIR})
target_compile_options(cae_cuda PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
                       $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
target_link_libraries(cae_cuda PUBLIC CUDA::cudart_static ${CAE_CUDNN_LIBRARY})

target_link_libraries(cae_lib PRIVATE cae_cuda)
target_compile_definitions(cae_lib PRIVATE CAE_HAVE_CUDA)
message(STATUS "cae: CUDA backend on (CUDA ${CUDAToolkit_VERSION}, architectures "
               "${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${CAE_CUDNN_LIBRARY})")
