#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| posbridge_crypto::fuzzing::key_record_parse(data));
