#![no_main]
//! Fuzz target `load`: the work is in `chainfix_fuzz::load` (fuzz/src/lib.rs), shared with the
//! stable replay test `tests/fuzz_replay.rs`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainfix_fuzz::load(data));
