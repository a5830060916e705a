#![no_main]
//! Back-office uploads from untrusted bytes: decoding never panics, and whatever decodes encodes
//! and decodes back to the same upload.

use posbridge_sync::Upload;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(upload) = Upload::from_json(data) {
        let again = Upload::from_json(&upload.to_json()).expect("our own encoding reads back");
        assert_eq!(again, upload);
    }
});
