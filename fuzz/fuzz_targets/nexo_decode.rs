#![no_main]
//! nexo messages from untrusted bytes: decoding never panics; whatever decodes in the clear
//! encodes and decodes back to the same message; sealed ones open (or fail) without panicking
//! under a fixed key; times and form-encoded text are read without panicking.

use std::sync::OnceLock;

use posbridge_nexo::codec::{self, Envelope};
use posbridge_nexo::security::SecurityKey;

fn key() -> &'static SecurityKey {
    static KEY: OnceLock<SecurityKey> = OnceLock::new();
    KEY.get_or_init(|| SecurityKey::derive("fuzz", 1, b"fuzz"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = posbridge_nexo::time::parse(text);
        let _ = posbridge_nexo::message::form_unescape(text);
    }
    match codec::decode(data) {
        Ok(Envelope::Clear(m)) => {
            let again = codec::encode(&Envelope::Clear(m.clone()));
            match codec::decode(&again) {
                Ok(Envelope::Clear(back)) => assert_eq!(back, m, "a round trip changed the message"),
                other => panic!("an encoded message does not decode: {other:?}"),
            }
            // Sealing and opening gives it back too.
            let sealed = key().seal_with_nonce(&m, [7; 16]);
            assert_eq!(key().open(&sealed).expect("opens"), m);
        }
        Ok(Envelope::Sealed(s)) => {
            let _ = key().open(&s);
        }
        Err(_) => {}
    }
});
