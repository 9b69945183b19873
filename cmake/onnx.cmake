# ONNX export (src/export/onnx_export.cpp, `cae export`), written with the ONNX project's own protobuf
# types and checker (Debian libonnx-dev, which needs libprotobuf-dev). Its imported target brings
# the defines its headers need (ONNX_NAMESPACE=onnx, ONNX_ML=1); it is linked PRIVATE so no
# ONNX or protobuf type reaches a public header.
find_package(Protobuf REQUIRED)  # ONNX's onnx_proto target links protobuf::libprotobuf
find_package(ONNX REQUIRED)
target_link_libraries(cae_lib PRIVATE onnx)
# The version stamped into exported models and returned by cae::version().
target_compile_definitions(cae_lib PRIVATE CAE_VERSION="${PROJECT_VERSION}")

# OpenCV's DNN module is an independent ONNX runtime: the export tests run every exported model
# with it and compare with cae. Only the test links it (Debian libopencv-dev).
if(TARGET test_onnx)
  find_package(OpenCV REQUIRED COMPONENTS core dnn)
  target_link_libraries(test_onnx PRIVATE onnx ${OpenCV_LIBS})  # onnx: the test reads the graph back
endif()
