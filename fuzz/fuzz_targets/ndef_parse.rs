#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| posbridge_handover::fuzzing::ndef_parse(data));
