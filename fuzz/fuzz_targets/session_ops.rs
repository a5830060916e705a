#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| posbridge_session::fuzzing::session_ops(data));
