# cmake -DINPUT=file -DOUTPUT=header -DVARIABLE=name -P EmbedSource.cmake
# Writes a header that holds INPUT's text as `inline constexpr const char VARIABLE[]`.
file(READ "${INPUT}" text)
set(delimiter "kiln_src")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()
get_filename_component(name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${name} by EmbedSource.cmake; do not edit.\n"
  "#pragma once\n"
  "namespace kiln {\n"
  "inline constexpr const char ${VARIABLE}[] = R\"${delimiter}(${text})${delimiter}\";\n"
  "}  // namespace kiln\n")
configure_file("${OUTPUT}.tmp" "${OUTPUT}" COPYONLY)  # rewrites only on change
file(REMOVE "${OUTPUT}.tmp")
