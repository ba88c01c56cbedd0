# llama.cpp for the in-process `llama` engine (SPOOL_WITH_LLAMA). Included from the root
# CMakeLists.txt after spool_core / spool / spool_unit_tests are defined.
#
# scripts/fetch-llama.sh fetches, at configure time, from npm (nothing is committed):
#   ${SPOOL_LLAMA_DIR}/src  llama.cpp source (git clone of node-llama-cpp's bundle): headers, vocab GGUFs
#   ${SPOOL_LLAMA_DIR}/lib  prebuilt linux-x64 CPU libraries (@node-llama-cpp/linux-x64)
#
# Defines:
#   spool::llama             IMPORTED target: libllama-common + libllama + libggml + libggml-base and
#                            their headers (common's chat.h: Jinja chat templates).
#                            Usage requirement SPOOL_LLAMA_LIB_DIR="<lib dir>": where the CPU backend
#                            variants (libggml-cpu-*.so) are; see the note below.
#   SPOOL_LLAMA_DIR, SPOOL_LLAMA_LIB_DIR, SPOOL_LLAMA_VOCAB_DIR   (cache-free variables)
#   make_tiny_gguf           tool: writes a tiny random-weight llama GGUF (tests/tools)
#
# Note on the CPU backend: libggml does not contain it. llama_backend_init() calls
# ggml_backend_load_all(), which only searches the executable's directory and the current
# directory for libggml-cpu-*.so, so call ggml_backend_load_all_from_path(<lib dir>) first
# (the lib dir is SPOOL_LLAMA_LIB_DIR, or at run time the directory of the loaded libggml).
if(NOT SPOOL_WITH_LLAMA)
  return()
endif()

set(SPOOL_LLAMA_DIR ${CMAKE_BINARY_DIR}/_deps/llama)
set(SPOOL_LLAMA_LIB_DIR ${SPOOL_LLAMA_DIR}/lib)
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
message(STATUS "llama.cpp ${SPOOL_LLAMA_TAG} (node-llama-cpp prebuilt): ${SPOOL_LLAMA_DIR}")

# The three libraries a llama.h user links. Their SONAMEs are their file names
# (libllama.v0.5.0.so, libggml.v0.5.0.so, libggml-base.so); each has RUNPATH $ORIGIN, so they
# find each other; the executable finds them through its own RPATH (below).
set(_spool_llama_include ${SPOOL_LLAMA_DIR}/src/include ${SPOOL_LLAMA_DIR}/src/ggml/include
                          ${SPOOL_LLAMA_DIR}/src/common ${SPOOL_LLAMA_DIR}/src/vendor)
add_library(spool_llama_ggml_base SHARED IMPORTED GLOBAL)
set_target_properties(spool_llama_ggml_base PROPERTIES
  IMPORTED_LOCATION ${SPOOL_LLAMA_LIB_DIR}/libggml-base.so
  IMPORTED_SONAME libggml-base.so
  INTERFACE_INCLUDE_DIRECTORIES "${_spool_llama_include}")
add_library(spool_llama_ggml SHARED IMPORTED GLOBAL)
set_target_properties(spool_llama_ggml PROPERTIES
  IMPORTED_LOCATION ${SPOOL_LLAMA_LIB_DIR}/libggml.${SPOOL_LLAMA_TAG}.so
  IMPORTED_SONAME libggml.${SPOOL_LLAMA_TAG}.so
  INTERFACE_LINK_LIBRARIES spool_llama_ggml_base)
add_library(spool_llama_llama SHARED IMPORTED GLOBAL)
set_target_properties(spool_llama_llama PROPERTIES
  IMPORTED_LOCATION ${SPOOL_LLAMA_LIB_DIR}/libllama.${SPOOL_LLAMA_TAG}.so
  IMPORTED_SONAME libllama.${SPOOL_LLAMA_TAG}.so
  INTERFACE_LINK_LIBRARIES spool_llama_ggml)
# llama.cpp's common library (prebuilt too): the Jinja chat-template engine llama-server uses.
add_library(spool_llama_common SHARED IMPORTED GLOBAL)
set_target_properties(spool_llama_common PROPERTIES
  IMPORTED_LOCATION ${SPOOL_LLAMA_LIB_DIR}/libllama-common.so
  IMPORTED_SONAME libllama-common.so
  INTERFACE_LINK_LIBRARIES spool_llama_llama)
add_library(spool_llama INTERFACE)
target_link_libraries(spool_llama INTERFACE spool_llama_common spool_llama_llama spool_llama_ggml spool_llama_ggml_base)
# The headers are third-party: no warnings from them under -Wall -Wextra.
target_include_directories(spool_llama SYSTEM INTERFACE ${_spool_llama_include})
target_compile_definitions(spool_llama INTERFACE SPOOL_LLAMA_LIB_DIR="${SPOOL_LLAMA_LIB_DIR}")
add_library(spool::llama ALIAS spool_llama)

# Executables find the libraries via RPATH, in the build tree and when installed (there is no
# install rule that copies the libraries yet, so the installed RPATH is the same directory).
list(APPEND CMAKE_BUILD_RPATH ${SPOOL_LLAMA_LIB_DIR})
list(APPEND CMAKE_INSTALL_RPATH ${SPOOL_LLAMA_LIB_DIR})

target_link_libraries(spool_core PUBLIC spool::llama)
target_compile_definitions(spool_core PUBLIC SPOOL_WITH_LLAMA)
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

# llama-batched-bench compiled from the bundle against the same prebuilt libraries as Spool: the
# "llama.cpp alone" reference of bench/llama.sh. It lives beside the libraries, where ggml looks
# for its CPU backends, so it picks the same CPU variant Spool does.
if(SPOOL_BUILD_BENCH)
  set(_spool_bb ${SPOOL_LLAMA_DIR}/src/tools/batched-bench)
  add_executable(llama_batched_bench_prebuilt ${_spool_bb}/batched-bench.cpp ${_spool_bb}/main.cpp)
  target_include_directories(llama_batched_bench_prebuilt PRIVATE ${_spool_bb})
  target_link_libraries(llama_batched_bench_prebuilt PRIVATE spool::llama Threads::Threads)
  set_target_properties(llama_batched_bench_prebuilt PROPERTIES
    OUTPUT_NAME llama-batched-bench RUNTIME_OUTPUT_DIRECTORY ${SPOOL_LLAMA_LIB_DIR}
    CXX_CLANG_TIDY "")
  target_compile_options(llama_batched_bench_prebuilt PRIVATE -w)
  list(APPEND _spool_llama_exes llama_batched_bench_prebuilt)
endif()

set_target_properties(${_spool_llama_exes} PROPERTIES
  BUILD_RPATH "${SPOOL_LLAMA_LIB_DIR}"
  INSTALL_RPATH "${SPOOL_LLAMA_LIB_DIR}")
