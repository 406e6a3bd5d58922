# Turns a text file into a C header holding it as a NUL-terminated char
# array: cmake -DIN=schema.sql -DOUT=schema_sql.h -DNAME=lwv_schema_sql -P embed.cmake
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\nstatic const char ${NAME}[] = {${bytes}0x00};\n")
