# outpost_add_test(<name> SOURCES <src>... [LIBRARIES <lib>...] [PLUGINS <plugin>...]
#                  [LABELS <label>...] [TIMEOUT <s>])
# A Catch2 test executable registered with CTest. PLUGINS are built first; the test finds them
# in OUTPOST_TEST_PLUGIN_DIR and the engine binary at OUTPOST_TEST_BINARY.
find_package(Catch2 REQUIRED)
if(NOT TARGET outpost_test_main)
  add_library(outpost_test_main STATIC ${CMAKE_CURRENT_LIST_DIR}/../tests/support/test_main.cpp)
  target_link_libraries(outpost_test_main PUBLIC Catch2::Catch2 outpost_sdk Threads::Threads)
  # gcc 12 at -O2 under ASan warns falsely inside <regex>, which Catch2's main pulls in.
  target_compile_options(outpost_test_main PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
  target_include_directories(outpost_test_main PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../tests/support)
  target_compile_definitions(outpost_test_main PUBLIC
    OUTPOST_TEST_PLUGIN_DIR="${OUTPOST_PLUGIN_OUTPUT_DIR}"
    OUTPOST_TEST_BINARY="${CMAKE_BINARY_DIR}/outpost"
    OUTPOST_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    OUTPOST_TEST_BUILD_DIR="${CMAKE_BINARY_DIR}")
endif()

function(outpost_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBRARIES;PLUGINS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE outpost_test_main ${ARG_LIBRARIES} ${CMAKE_DL_LIBS})
  foreach(p ${ARG_PLUGINS})
    add_dependencies(${name} outpost_plugin_${p})
  endforeach()
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
