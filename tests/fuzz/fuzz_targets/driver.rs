//! The session driver under arbitrary host events and HTTP bodies (see ../harness/mod.rs for
//! the invariants). Run: `make fuzz` (FUZZ_SECONDS, default 3600).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
