# Cross build for aarch64 Linux with Debian's gcc-aarch64-linux-gnu.
# Tests run under qemu-user:  ctest uses CMAKE_CROSSCOMPILING_EMULATOR.
# The guest page size can be changed with -DLW_QEMU_PAGESIZE=16384 (or
# 65536); qemu-aarch64 -p then makes sysconf(_SC_PAGESIZE) report it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(LW_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${LW_CROSS_TRIPLE}-gcc)

set(CMAKE_FIND_ROOT_PATH /usr/${LW_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(LW_QEMU_PAGESIZE "" CACHE STRING "Guest page size for qemu-aarch64 -p (empty: qemu's default, 4096)")
set(LW_QEMU_ARGS -L /usr/${LW_CROSS_TRIPLE})
if(LW_QEMU_PAGESIZE)
  list(APPEND LW_QEMU_ARGS -p ${LW_QEMU_PAGESIZE})
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 ${LW_QEMU_ARGS})
