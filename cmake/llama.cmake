# llama.cpp for the in-process `llama` engine (SPOOL_WITH_LLAMA). Included from the root
# CMakeLists.txt after spool_engine / spool / spool_unit_tests are defined.
#
# scripts/fetch-llama.sh fetches, at configure time, llama.cpp's source from npm (the git bundle
# inside node-llama-cpp; nothing is committed) into ${SPOOL_LLAMA_DIR}/src. The `llama_cpp`
# external project builds it at build time into ${SPOOL_LLAMA_DIR}/build: shared libraries,
# CPU only, for this machine's instruction set (GGML_NATIVE), with the CPU backend linked into
# libggml. The same build tree later gives llama-server and llama-batched-bench
# (scripts/build-llama-tools.sh), so the tests and the bench compare against the very same
# libraries Spool runs on.
#
# Defines:
#   spool::llama    libllama-common + libllama + libggml + libggml-base and their headers
#                   (common's chat.h: the Jinja chat templates llama-server uses)
#   SPOOL_LLAMA_DIR (cache: several build trees, e.g. build/ and build-asan/, may share one),
#   SPOOL_LLAMA_LIB_DIR, SPOOL_LLAMA_VOCAB_DIR
#   make_tiny_gguf  tool: writes a tiny random-weight llama GGUF (tests/tools)
if(NOT SPOOL_WITH_LLAMA)
  return()
endif()
include(ExternalProject)

set(SPOOL_LLAMA_DIR ${CMAKE_BINARY_DIR}/_deps/llama CACHE PATH "where llama.cpp is fetched and built")
set(SPOOL_LLAMA_LIB_DIR ${SPOOL_LLAMA_DIR}/build/bin)
set(SPOOL_LLAMA_VOCAB_DIR ${SPOOL_LLAMA_DIR}/src/models)

execute_process(
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/../scripts/fetch-llama.sh ${SPOOL_LLAMA_DIR}
  RESULT_VARIABLE _spool_llama_rc)
if(NOT _spool_llama_rc EQUAL 0)
  message(FATAL_ERROR "scripts/fetch-llama.sh failed (${_spool_llama_rc}); configure with -DSPOOL_WITH_LLAMA=OFF "
                      "to build without the llama engine")
endif()
# Re-run the fetch when the script (and so the pinned version) changes.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../scripts/fetch-llama.sh)

file(STRINGS ${SPOOL_LLAMA_DIR}/llama.cpp.info.json _spool_llama_tag_line REGEX "\"tag\"")
string(REGEX REPLACE ".*\"tag\": *\"([^\"]+)\".*" "\\1" SPOOL_LLAMA_TAG "${_spool_llama_tag_line}")
message(STATUS "llama.cpp ${SPOOL_LLAMA_TAG} (source from node-llama-cpp, built natively): ${SPOOL_LLAMA_DIR}")

set(_spool_llama_libs llama-common llama ggml ggml-base)
set(_spool_llama_files)
foreach(_lib IN LISTS _spool_llama_libs)
  list(APPEND _spool_llama_files ${SPOOL_LLAMA_LIB_DIR}/lib${_lib}.so)
endforeach()
# Keep in step with scripts/build-llama-tools.sh, which builds more targets in the same tree.
ExternalProject_Add(llama_cpp
  SOURCE_DIR ${SPOOL_LLAMA_DIR}/src
  BINARY_DIR ${SPOOL_LLAMA_DIR}/build
  DOWNLOAD_COMMAND ""
  UPDATE_COMMAND ""
  INSTALL_COMMAND ""
  CMAKE_GENERATOR Ninja
  CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DGGML_BACKEND_DL=OFF
             -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
             -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF
             -DLLAMA_LLGUIDANCE=OFF
  BUILD_COMMAND ${CMAKE_COMMAND} --build <BINARY_DIR> --target ${_spool_llama_libs}
  BUILD_ALWAYS ON  # a no-op when nothing changed; rebuilds what was deleted
  BUILD_BYPRODUCTS ${_spool_llama_files}
  USES_TERMINAL_BUILD ON)

set(_spool_llama_include ${SPOOL_LLAMA_DIR}/src/include ${SPOOL_LLAMA_DIR}/src/ggml/include
                          ${SPOOL_LLAMA_DIR}/src/common ${SPOOL_LLAMA_DIR}/src/vendor)
add_library(spool_llama INTERFACE)
foreach(_lib IN LISTS _spool_llama_libs)
  add_library(spool_llama_${_lib} SHARED IMPORTED GLOBAL)
  set_target_properties(spool_llama_${_lib} PROPERTIES IMPORTED_LOCATION ${SPOOL_LLAMA_LIB_DIR}/lib${_lib}.so)
  add_dependencies(spool_llama_${_lib} llama_cpp)
  target_link_libraries(spool_llama INTERFACE spool_llama_${_lib})
endforeach()
# The headers are third-party: no warnings from them under -Wall -Wextra.
target_include_directories(spool_llama SYSTEM INTERFACE ${_spool_llama_include})
add_dependencies(spool_llama llama_cpp)
add_library(spool::llama ALIAS spool_llama)

# Executables find the libraries via RPATH, in the build tree and when installed (there is no
# install rule that copies the libraries yet, so the installed RPATH is the same directory).
list(APPEND CMAKE_BUILD_RPATH ${SPOOL_LLAMA_LIB_DIR})
list(APPEND CMAKE_INSTALL_RPATH ${SPOOL_LLAMA_LIB_DIR})

target_link_libraries(spool_engine PRIVATE spool::llama)  # only the llama engine sees llama.cpp
target_compile_definitions(spool_engine PRIVATE SPOOL_WITH_LLAMA)
set(_spool_llama_exes spool)

# make_tiny_gguf: the tiny random-weight model writer (also compiled into the unit tests).
add_library(spool_tiny_gguf STATIC ${CMAKE_SOURCE_DIR}/tests/tools/tiny_gguf.cpp)
target_include_directories(spool_tiny_gguf PUBLIC ${CMAKE_SOURCE_DIR}/tests/tools)
target_link_libraries(spool_tiny_gguf PUBLIC spool::llama)
add_executable(make_tiny_gguf ${CMAKE_SOURCE_DIR}/tests/tools/make_tiny_gguf.cpp)
target_link_libraries(make_tiny_gguf PRIVATE spool_tiny_gguf)
list(APPEND _spool_llama_exes make_tiny_gguf)

if(TARGET spool_unit_tests)
  target_link_libraries(spool_unit_tests PRIVATE spool_tiny_gguf)
  target_compile_definitions(spool_unit_tests PRIVATE SPOOL_LLAMA_VOCAB_DIR="${SPOOL_LLAMA_VOCAB_DIR}")
  list(APPEND _spool_llama_exes spool_unit_tests)
endif()

set_target_properties(${_spool_llama_exes} PROPERTIES
  BUILD_RPATH "${SPOOL_LLAMA_LIB_DIR}"
  INSTALL_RPATH "${SPOOL_LLAMA_LIB_DIR}")
