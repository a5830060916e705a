#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| posbridge_zvt::fuzzing::zvt_exchange(data));
