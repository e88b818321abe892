/* The two macros ring's C code reads from the macOS SDK's TargetConditionals.h, for
 * `cargo check --target x86_64-apple-darwin` on Linux (.ci/cross-check). Nothing built
 * with it is ever linked or run. */
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
