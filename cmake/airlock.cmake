# Shared build settings for every airlock target.

add_library(airlock_options INTERFACE)
target_include_directories(airlock_options INTERFACE ${PROJECT_SOURCE_DIR})
target_compile_options(airlock_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wnull-dereference -Wimplicit-fallthrough)

if(AIRLOCK_SANITIZE)
  target_compile_options(airlock_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(airlock_options INTERFACE -fsanitize=address,undefined)
endif()

if(AIRLOCK_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "AIRLOCK_FUZZ needs clang (CXX=clang++)")
  endif()
  # Libraries are instrumented for coverage; the fuzz targets add the libFuzzer main.
  target_compile_options(airlock_options INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(airlock_options INTERFACE -fsanitize=address,undefined)
endif()

# airlock_component(NAME SOURCES... [LIBS ...]) - a static library for one component.
function(airlock_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC airlock_options ${ARG_LIBS})
endfunction()
