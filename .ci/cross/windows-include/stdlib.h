/* ring's C code includes <stdlib.h> on MSVC targets only for `_byteswap_ulong`, which
 * clang provides as a builtin. Stand-in for the Windows SDK's header, for
 * `cargo check --target x86_64-pc-windows-msvc` on Linux (.ci/cross-check). Nothing built
 * with it is ever linked or run. */
