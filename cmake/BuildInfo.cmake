# Build facts shown by `llmctl version`. The git revision is read at build time
# so a rebuild after a commit reports the new revision.
add_custom_target(llmctl_build_info_gen
  COMMAND ${CMAKE_COMMAND}
    -DSRC_DIR=${CMAKE_SOURCE_DIR}
    -DOUT=${CMAKE_BINARY_DIR}/generated/build_info.cpp
    -DVERSION=${PROJECT_VERSION}
    -DBUILD_TYPE=${CMAKE_BUILD_TYPE}
    -DHAVE_CUDA=${LLMCTL_HAVE_CUDA}
    -P ${CMAKE_SOURCE_DIR}/cmake/WriteBuildInfo.cmake
  BYPRODUCTS ${CMAKE_BINARY_DIR}/generated/build_info.cpp
  COMMENT "llmctl build info")
