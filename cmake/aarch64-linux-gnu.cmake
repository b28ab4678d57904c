# Cross-build for aarch64 Linux with Debian's cross compilers and the arm64
# multiarch -dev packages (scripts/bootstrap aarch64 installs both). Test
# binaries run under qemu-user with a CPU model that has dotprod and i8mm.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Multiarch: arm64 libraries live beside the host's, headers are shared.
# Criterion's arm64 packages are unpacked under build/deps-arm64 (see
# scripts/bootstrap); the tests find them, and libnanomsg behind them, through
# an RPATH (not RUNPATH: RUNPATH does not serve a library's own dependencies).
get_filename_component(Q8_ARM64_DEPS "${CMAKE_CURRENT_LIST_DIR}/../build/deps-arm64/usr/lib/aarch64-linux-gnu" ABSOLUTE)
set(ENV{PKG_CONFIG_LIBDIR} "${Q8_ARM64_DEPS}/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${Q8_ARM64_DEPS} -Wl,-rpath,${Q8_ARM64_DEPS} -Wl,--disable-new-dtags")
# -cpu max: Armv8.x+ with dotprod, i8mm (and SVE, which q8 does not use).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu max)
