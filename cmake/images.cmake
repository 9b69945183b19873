# Images beyond 8-bit PNG, and the classical baselines cae is measured against (issue 4):
#   libjpeg (Debian libjpeg-dev, libjpeg-turbo) reads and writes JPEG files;
#   OpenCV (Debian libopencv-dev) resizes folder images to the working size and runs the
#   median-filter, Gaussian-blur and non-local-means baselines of `cae eval`.
# Both are private to cae_lib: no OpenCV or libjpeg type appears in a header under src/.
find_package(JPEG REQUIRED)
find_package(OpenCV REQUIRED COMPONENTS core imgproc photo)
target_include_directories(cae_lib SYSTEM PRIVATE ${OpenCV_INCLUDE_DIRS})
target_link_libraries(cae_lib PRIVATE JPEG::JPEG ${OpenCV_LIBS})
# The patch tests take cv::resize as the reference for the zoom augmentation's crops.
if(TARGET test_patches)
  target_include_directories(test_patches SYSTEM PRIVATE ${OpenCV_INCLUDE_DIRS})
  target_link_libraries(test_patches PRIVATE ${OpenCV_LIBS})
endif()
