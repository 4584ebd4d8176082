# `cpack -G DEB` (or `cmake --build --preset release --target package`): the
# binary, completions, example configs and systemd units.
install(FILES completions/llmctl.bash DESTINATION share/bash-completion/completions RENAME llmctl)
install(FILES completions/_llmctl DESTINATION share/zsh/vendor-completions)
install(FILES completions/llmctl.fish DESTINATION share/fish/vendor_completions.d)
install(DIRECTORY configs/ DESTINATION share/doc/llmctl/examples FILES_MATCHING PATTERN "*.toml")
install(FILES packaging/systemd/llmctl-head.service packaging/systemd/llmctl-agent.service
        DESTINATION lib/systemd/system)
install(FILES README.md DESTINATION share/doc/llmctl)

set(CPACK_PACKAGE_NAME llmctl)
set(CPACK_PACKAGE_VENDOR "llmctl")
set(CPACK_PACKAGE_CONTACT "llmctl maintainers <llmctl@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Bootstrap and run a multi-node LLM inference cluster from one binary")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg-shlibdeps must find the package's own private library (libllmctl_gloo.so, issue #9).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/lib)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/llmctl")
if(LLMCTL_HAVE_CUDA)
  # cuBLAS and NCCL come from the GPU host's CUDA install, not from Debian.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  # Without dpkg-shlibdeps, name the Debian libraries the binary links (up/exec need libssh; Gloo for CPU ranks).
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.34), libssh-4, libssl3, libgloo0, zlib1g")
endif()
include(CPack)
