# Real test data (../shared/assets) beside the checkout; a checkout elsewhere
# (CI's clean clone) falls back to /work/shared. -DLLMCTL_SHARED_DIR overrides.
if(NOT LLMCTL_SHARED_DIR)
  foreach(_candidate ${CMAKE_SOURCE_DIR}/../shared /work/shared)
    if(EXISTS ${_candidate}/assets)
      get_filename_component(_candidate ${_candidate} ABSOLUTE)
      set(LLMCTL_SHARED_DIR ${_candidate} CACHE PATH "Folder holding the shared test assets")
      break()
    endif()
  endforeach()
  if(NOT LLMCTL_SHARED_DIR)
    message(WARNING "llmctl: no shared test assets found (../shared or /work/shared); tests that need them fail")
    set(LLMCTL_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared)
  endif()
endif()

# llmctl_unit_test(NAME SOURCES... LIBS ... [LABELS ...])
# One doctest executable; registered with ctest under the given labels (default: unit).
function(llmctl_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/doctest_main.cpp ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} doctest::doctest)
  target_compile_definitions(${name} PRIVATE
    LLMCTL_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    LLMCTL_SHARED_DIR="${LLMCTL_SHARED_DIR}")
  llmctl_set_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT 300)
endfunction()

# llmctl_script_test(NAME SCRIPT [LABELS ...] [TIMEOUT s])
# An integration test: a Python (stdlib only) or shell script that runs the
# real binary. It gets LLMCTL_BIN, LLMCTL_SOURCE_DIR and LLMCTL_SHARED_DIR.
function(llmctl_script_test name script)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS integration)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(script MATCHES "\\.py$")
    find_package(Python3 REQUIRED COMPONENTS Interpreter)
    set(cmd ${Python3_EXECUTABLE} ${script})
  else()
    set(cmd sh ${script})
  endif()
  add_test(NAME ${name} COMMAND ${cmd})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
    ENVIRONMENT "LLMCTL_BIN=$<TARGET_FILE:llmctl>;LLMCTL_SOURCE_DIR=${CMAKE_SOURCE_DIR};LLMCTL_SHARED_DIR=${LLMCTL_SHARED_DIR};LLMCTL_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
endfunction()
