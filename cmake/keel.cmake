# keel_module(NAME SOURCES ... DEPS ... [ASIO])
# One folder = one library; its link line is the list of modules it may use.
function(keel_module name)
  cmake_parse_arguments(M "ASIO" "" "SOURCES;DEPS" ${ARGN})
  add_library(keel_${name} STATIC ${M_SOURCES})
  target_include_directories(keel_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(keel_${name} PUBLIC ${M_DEPS})
  if(M_ASIO)
    target_link_libraries(keel_${name} PUBLIC keel_asio_flags)
    target_precompile_headers(keel_${name} PRIVATE ${PROJECT_SOURCE_DIR}/src/net/asio_pch.hpp)
  endif()
  keel_pgo(keel_${name})
endfunction()

# keel_pgo(TARGET): KEEL_PGO's flags for one of keel's own targets.
# The profile's file names are relative to the build directory (-fprofile-prefix-path), so the
# training build (build/pgo-train) and the optimized one (build/release) find the same files.
# Without ccache: it cannot tell that a profile changed. A profile older than an edit is used
# where it still fits; functions that changed are optimized without it.
function(keel_pgo target)
  if(KEEL_PGO STREQUAL "generate")
    target_compile_options(${target} PRIVATE -fprofile-generate=${KEEL_PGO_DIR} -fprofile-update=atomic
                                             -fprofile-prefix-path=${PROJECT_BINARY_DIR})
    target_link_options(${target} PRIVATE -fprofile-generate=${KEEL_PGO_DIR} -Wl,-u,__gcov_dump)
  elseif(KEEL_PGO STREQUAL "use")
    if(NOT EXISTS "${KEEL_PGO_DIR}")
      message(FATAL_ERROR "KEEL_PGO=use: no profile at ${KEEL_PGO_DIR} (scripts/build-pgo makes one)")
    endif()
    target_compile_options(${target} PRIVATE -fprofile-use=${KEEL_PGO_DIR} -fprofile-prefix-path=${PROJECT_BINARY_DIR}
                                             -fprofile-partial-training -fprofile-correction
                                             -Wno-missing-profile -Wno-coverage-mismatch)
  elseif(NOT KEEL_PGO STREQUAL "")
    message(FATAL_ERROR "KEEL_PGO must be empty, generate or use, not ${KEEL_PGO}")
  endif()
  if(NOT KEEL_PGO STREQUAL "")
    set_target_properties(${target} PROPERTIES CXX_COMPILER_LAUNCHER "")
  endif()
endfunction()
