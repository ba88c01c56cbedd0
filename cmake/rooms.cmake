# The rooms of src/ (README "Layout"): one static library each, `spool_<room>`.
#
# spool_room(<room> [ROOMS <room>...] [PUBLIC <lib>...] [PRIVATE <lib>...] [SOURCES <file>...]
#            [EXCLUDE <regex>])
#   ROOMS    the rooms this one may include and link (declared before it)
#   PUBLIC   third-party libraries its headers need
#   PRIVATE  third-party libraries only its sources use: nothing above sees them
#   SOURCES  generated sources; EXCLUDE a regex of src/<room>/*.cpp left out (main, optional engines)
#
# A room compiles against build/rooms/<room>/, a directory of links to src/<r> for itself and the
# rooms it may reach (the ROOMS, and what they may reach, since their headers include them). An
# include of any other room's header does not compile. scripts/check-includes.sh checks the direct
# includes file by file (and where third-party headers may appear).
function(spool_room room)
  cmake_parse_arguments(R "" "EXCLUDE" "ROOMS;PUBLIC;PRIVATE;SOURCES" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${room}/*.cpp)
  list(FILTER sources EXCLUDE REGEX "_test\\.cpp$")
  if(R_EXCLUDE)
    list(FILTER sources EXCLUDE REGEX "${R_EXCLUDE}")
  endif()
  add_library(spool_${room} STATIC ${sources} ${R_SOURCES})

  set(reach ${room})
  foreach(r IN LISTS R_ROOMS)
    get_property(below GLOBAL PROPERTY spool_reach_${r})
    list(APPEND reach ${r} ${below})
  endforeach()
  list(REMOVE_DUPLICATES reach)
  set_property(GLOBAL PROPERTY spool_reach_${room} ${reach})

  set(dir ${CMAKE_BINARY_DIR}/rooms/${room})
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  foreach(r IN LISTS reach)
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${r} ${dir}/${r} SYMBOLIC)
  endforeach()
  target_include_directories(spool_${room} PRIVATE ${dir})

  list(TRANSFORM R_ROOMS PREPEND spool_)
  target_link_libraries(spool_${room} PUBLIC ${R_ROOMS} ${R_PUBLIC} PRIVATE ${R_PRIVATE})
endfunction()
