#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| posbridge_wire::fuzzing::message_decode(data));
