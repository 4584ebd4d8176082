# Every dependency comes from a Debian 12 package (packaging/install-deps.sh).
find_package(Threads REQUIRED)
find_package(CLI11 REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(doctest REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBSSH REQUIRED IMPORTED_TARGET libssh)

# asio (standalone) is header-only and ships no CMake config.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(llmctl_asio INTERFACE)
target_include_directories(llmctl_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
target_compile_definitions(llmctl_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED)
target_link_libraries(llmctl_asio INTERFACE Threads::Threads)

# OpenBLAS: the pthread flavour's static archive, so the binary carries it.
find_library(OPENBLAS_STATIC NAMES libopenblas.a
  PATHS /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/x86_64-linux-gnu REQUIRED NO_DEFAULT_PATH)
find_path(OPENBLAS_INCLUDE_DIR cblas.h PATHS /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas REQUIRED)
add_library(llmctl_openblas INTERFACE)
target_include_directories(llmctl_openblas SYSTEM INTERFACE ${OPENBLAS_INCLUDE_DIR})
target_link_libraries(llmctl_openblas INTERFACE ${OPENBLAS_STATIC} Threads::Threads m)

# Gloo (TCP transport) for CPU collectives. Debian ships only the shared
# library (which also pulls libibverbs and hiredis, unused here); bundle.sh
# copies it and its closure beside the binary.
find_library(GLOO_LIBRARY NAMES gloo PATHS /usr/lib /usr/lib/x86_64-linux-gnu REQUIRED)
find_path(GLOO_INCLUDE_DIR gloo/context.h REQUIRED)
add_library(llmctl_gloo INTERFACE)
target_include_directories(llmctl_gloo SYSTEM INTERFACE ${GLOO_INCLUDE_DIR})
target_link_libraries(llmctl_gloo INTERFACE ${GLOO_LIBRARY} Threads::Threads)

# Header-only spdlog/fmt: nothing of theirs must be shipped beside the binary.
add_library(llmctl_logging_deps INTERFACE)
target_link_libraries(llmctl_logging_deps INTERFACE spdlog::spdlog_header_only fmt::fmt-header-only)
