//! Interop with Adyen's own Node library (`@adyen/api-library`, an interop peer): a message its
//! `NexoCrypto` encrypts opens with posbridge's key, and a message posbridge seals decrypts with
//! its `NexoCrypto`, byte for byte.
//!
//! Needs `node` and the library installed under `target/npm` (`npm install --prefix target/npm
//! @adyen/api-library`, which `.ci/run` does). Without them the test prints why and passes,
//! unless `POSBRIDGE_REQUIRE_INTEROP` is set (CI sets it), when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use posbridge_nexo::codec::{self, Envelope};
use posbridge_nexo::security::SecurityKey;

const PASSPHRASE: &str = "a shared passphrase";
const SALE: &str = r#"{"SaleToPOIRequest":{"MessageHeader":{"ProtocolVersion":"3.0","MessageClass":"Service","MessageCategory":"Payment","MessageType":"Request","ServiceID":"4711","SaleID":"till-1","POIID":"V400m-346403161"},"PaymentRequest":{"SaleData":{"SaleTransactionID":{"TransactionID":"27908","TimeStamp":"2026-12-04T09:30:00.000Z"}},"PaymentTransaction":{"AmountsReq":{"Currency":"EUR","RequestedAmount":10.99}}}}}"#;

fn library() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/npm/node_modules");
    let lib = root.join("@adyen/api-library/lib/src/security/nexoCrypto.js");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if lib.exists() && node {
        return Some(lib);
    }
    let why = format!(
        "node or {} is missing: run `npm install --prefix target/npm @adyen/api-library`",
        lib.display()
    );
    assert!(
        std::env::var_os("POSBRIDGE_REQUIRE_INTEROP").is_none(),
        "{why}"
    );
    eprintln!("skipped: {why}");
    None
}

fn node(lib: &Path, script: &str, input: &str) -> String {
    let program = format!(
        "const NexoCrypto = require({lib:?}).default;\n\
         const key = {{ Passphrase: {PASSPHRASE:?}, KeyIdentifier: 'posbridge-test', KeyVersion: 1, AdyenCryptoVersion: 1 }};\n\
         const input = require('fs').readFileSync(0, 'utf8');\n{script}",
        lib = lib.display().to_string()
    );
    let mut child = Command::new("node")
        .arg("-e")
        .arg(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn messages_cross_between_adyen_nexocrypto_and_posbridge_both_ways() {
    let Some(lib) = library() else { return };
    let key = SecurityKey::derive("posbridge-test", 1, PASSPHRASE.as_bytes());

    // Adyen's library seals, posbridge opens.
    let sealed = node(
        &lib,
        "const m = JSON.parse(input);\n\
         const s = NexoCrypto.encrypt(m.SaleToPOIRequest.MessageHeader, input, key);\n\
         process.stdout.write(JSON.stringify({ SaleToPOIRequest: s }));",
        SALE,
    );
    let Envelope::Sealed(s) = codec::decode(sealed.as_bytes()).expect("decodes") else {
        panic!("not sealed: {sealed}")
    };
    let opened = key.open(&s).expect("opens with posbridge's key");
    let Envelope::Clear(expected) = codec::decode(SALE.as_bytes()).unwrap() else {
        unreachable!()
    };
    assert_eq!(opened, expected);

    // posbridge seals, Adyen's library opens (and checks the HMAC).
    let ours = codec::encode(&Envelope::Sealed(key.seal(&expected).unwrap()));
    let plain = node(
        &lib,
        "const m = JSON.parse(input);\n\
         process.stdout.write(new NexoCrypto().decrypt(m.SaleToPOIRequest, key));",
        std::str::from_utf8(&ours).unwrap(),
    );
    assert_eq!(plain.as_bytes(), codec::encode(&Envelope::Clear(expected)));

    // A wrong passphrase fails Adyen's HMAC check too.
    let wrong = SecurityKey::derive("posbridge-test", 1, b"not the passphrase");
    let Envelope::Clear(m) = codec::decode(SALE.as_bytes()).unwrap() else {
        unreachable!()
    };
    let bad = codec::encode(&Envelope::Sealed(wrong.seal(&m).unwrap()));
    let verdict = node(
        &lib,
        "const m = JSON.parse(input);\n\
         try { new NexoCrypto().decrypt(m.SaleToPOIRequest, key); process.stdout.write('opened'); }\n\
         catch (e) { process.stdout.write('refused: ' + e.message); }",
        std::str::from_utf8(&bad).unwrap(),
    );
    assert!(verdict.starts_with("refused"), "{verdict}");
}
