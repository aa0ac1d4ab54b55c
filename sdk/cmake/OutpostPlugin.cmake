# outpost_add_plugin(<name> SOURCES <src>... [LIBRARIES <lib>...] [NO_INSTALL])
#
# Builds an Outpost plugin: a MODULE library named outpost_<name>.so that exports exactly one
# symbol (outpost_plugin_entry), links against nothing in the host (--no-undefined) and installs
# as component plugin-<name>. Used in-tree and by out-of-tree authors after
# find_package(OutpostSDK).
set(_OUTPOST_PLUGIN_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(outpost_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "" "SOURCES;LIBRARIES" ${ARGN})
  set(target outpost_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME outpost_${name}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED OUTPOST_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${OUTPOST_PLUGIN_OUTPUT_DIR})
  endif()
  if(TARGET outpost_sdk)
    target_link_libraries(${target} PRIVATE outpost_sdk)
  else()
    target_link_libraries(${target} PRIVATE OutpostSDK::sdk)
  endif()
  if(ARG_LIBRARIES)
    target_link_libraries(${target} PRIVATE ${ARG_LIBRARIES})
  endif()
  target_link_options(${target} PRIVATE -Wl,--no-undefined
    -Wl,--version-script=${_OUTPOST_PLUGIN_CMAKE_DIR}/outpost_plugin.map)
  if(ARG_NO_INSTALL)
    return()
  endif()
  if(NOT DEFINED OUTPOST_PLUGIN_INSTALL_DIR)
    set(OUTPOST_PLUGIN_INSTALL_DIR lib/outpost/plugins)
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION ${OUTPOST_PLUGIN_INSTALL_DIR}
          COMPONENT plugin-${name})
endfunction()
