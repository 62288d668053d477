# SPDX-License-Identifier: GPL-3.0-or-later
# Shared compile settings and helpers for every vstor target.

# -Wpedantic is left out on purpose: we use GNU C11 (typeof, statement
# expressions, __attribute__) the way the Linux kernel and liburing do.
set(VS_WARNINGS
  -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wimplicit-fallthrough -Wformat=2 -Wvla -Wpointer-arith -Wundef
  -Wwrite-strings -Werror=implicit-function-declaration)
# -Wconversion is on for the libraries (see vs_strict_conversion) where integer
# widths are part of the on-disk and wire contracts.

add_compile_definitions(_GNU_SOURCE)
add_compile_options(${VS_WARNINGS} -fno-omit-frame-pointer)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  add_compile_options(-Wno-unknown-pragmas)
endif()
if(CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_definitions(VS_DEBUG=1)
endif()
set(CMAKE_C_FLAGS_RELEASE "-O2 -g")
set(CMAKE_C_FLAGS_DEBUG "-O1 -g")

if(VS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(VS_COVERAGE)
  add_compile_options(--coverage)
  add_link_options(--coverage)
endif()
if(VS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "VS_FUZZ needs clang (cmake -DCMAKE_C_COMPILER=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# vs_strict_conversion(target): add -Wconversion to a library target.
function(vs_strict_conversion target)
  target_compile_options(${target} PRIVATE -Wconversion -Wsign-conversion)
endfunction()

file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/tmp)

# vs_add_unit_test(name SOURCES... LIBS...): a cmocka test registered with ctest.
function(vs_add_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    LABELS "unit;${T_LABELS}"
    ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;TMPDIR=${CMAKE_BINARY_DIR}/tmp")
endfunction()

# vs_add_fuzzer(name SOURCES... LIBS... CORPUS dir): a libFuzzer target.
# With VS_FUZZ it is a real fuzzer and ctest runs it for VS_FUZZ_SECONDS over a
# scratch copy of the corpus. Without VS_FUZZ it links common/fuzz_replay.c and
# ctest replays every corpus file through it, so the gcc/ASan build also runs
# the corpus as regression tests.
set(VS_FUZZ_SECONDS 15 CACHE STRING "seconds each fuzzer runs in ctest")
function(vs_add_fuzzer name)
  cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS" ${ARGN})
  if(VS_FUZZ)
    add_executable(${name} ${F_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    add_test(NAME ${name} COMMAND ${CMAKE_SOURCE_DIR}/tools/fuzz-run.sh
      $<TARGET_FILE:${name}> ${F_CORPUS} ${VS_FUZZ_SECONDS})
    set_tests_properties(${name} PROPERTIES LABELS "fuzz" TIMEOUT 600)
  else()
    add_executable(${name} ${F_SOURCES} ${CMAKE_SOURCE_DIR}/common/fuzz_replay.c)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    add_test(NAME ${name}_replay COMMAND ${name} ${F_CORPUS})
    set_tests_properties(${name}_replay PROPERTIES LABELS "unit;fuzz-replay" TIMEOUT 300)
  endif()
endfunction()
