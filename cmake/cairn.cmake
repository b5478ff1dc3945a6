# Helpers shared by the component CMakeLists.

# cairn_add_unit_test(<source.c> LIBS <targets...>)
#
# Builds one cmocka test program from <source.c> and registers every case it
# lists (each `cmocka_unit_test*(name)` in the file) as its own CTest entry
# named <program>.<case>, so `ctest -j` runs cases in parallel and `ctest -N`
# lists them all. KIND is the CTest label of the kind of test: `unit`
# (default; also run under qemu by the arm64 cross-build) or `integration`
# (real daemons; CAIRN_BIN_DIR tells the test where the binaries are). The program runs one case when given its name
# (see tests/unit/test_main.h).
function(cairn_add_unit_test src)
  cmake_parse_arguments(T "" "TIMEOUT;KIND" "LIBS;LABELS" ${ARGN})
  if(NOT T_KIND)
    set(T_KIND unit)
  endif()
  get_filename_component(prog ${src} NAME_WE)
  add_executable(${prog} ${src})
  target_include_directories(${prog} PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
  target_link_libraries(${prog} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  set_target_properties(${prog} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  file(READ ${src} body)
  string(REGEX MATCHALL "cmocka_unit_test[a-z_]*\\([A-Za-z0-9_]+" found "${body}")
  if(NOT found)
    message(FATAL_ERROR "${src}: no cmocka_unit_test cases found")
  endif()
  foreach(m ${found})
    string(REGEX REPLACE ".*\\(" "" case ${m})
    add_test(NAME ${prog}.${case} COMMAND ${prog} ${case})
    set_tests_properties(${prog}.${case} PROPERTIES TIMEOUT ${T_TIMEOUT}
                         LABELS "${T_KIND};${T_LABELS}"
                         ENVIRONMENT "CAIRN_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
  endforeach()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
endfunction()
