//! Signed results: known answers, tampering, wrong keys, offline verification from a stored
//! message.

use posbridge_crypto::*;
use posbridge_wire::*;
use proptest::prelude::*;

/// RFC 8032 §7.1, test 1: secret and public key.
const RFC_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// The `message` of vector `name` in docs/test-vectors.txt, its hex lines joined.
fn vector_message(name: &str) -> String {
    let file = include_str!("../../../docs/test-vectors.txt");
    let section = file
        .split(&format!("[{name}]"))
        .nth(1)
        .unwrap_or_else(|| panic!("the {name} vector"));
    section
        .lines()
        .skip_while(|l| !l.starts_with("message = "))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with("    "))
        .map(|(_, l)| l.trim_start_matches("message = ").replace(' ', ""))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn result() -> TransactionResult {
    samples::approved_result()
}

#[test]
fn key_derivation_matches_rfc_8032() {
    let id = SigningIdentity::from_secret(&unhex::<32>(RFC_SECRET));
    assert_eq!(id.public_key().to_string(), RFC_PUBLIC);
    assert!(!format!("{id:?}").contains(RFC_SECRET));
}

#[test]
fn known_answer_for_the_approved_result_vector() {
    let id = SigningIdentity::from_secret(&unhex::<32>(RFC_SECRET));
    let mut r = result();
    // The canonical bytes: domain, terminal id, key, transaction id, kind, outcome, reason,
    // currency, amount, approved, tip, cashback, balance, time, offline, method, PAN, auth
    // code, reference (docs/security.md).
    assert_eq!(
        hex(&result_signing_bytes(&r)),
        concat!(
            "706f736272696467652f726573756c742f763100",
            "04040404040404040404040404040404",
            "02020202020202020202020202020202",
            "03030303030303030303030303030303",
            "01",
            "01",
            "0000",
            "03d2",
            "00000000000004e2",
            "00000000000004e2",
            "010000000000000064",
            "000000000000000000",
            "000000000000000000",
            "0000019ab697e800",
            "00",
            "02",
            "10343131313131",
            "2a2a2a2a2a2a31313131",
            "06413142324333",
            "00"
        )
    );
    id.sign_result(&mut r);
    // Ed25519 is deterministic: this signature is a known answer for the vector.
    assert_eq!(hex(&r.signature.unwrap()), KAT_SIGNATURE);
    verify_result(&id.public_key(), &r).unwrap();
}

const KAT_SIGNATURE: &str = "67d32ddac87ab61903f571c253e1e0d66becd9401ac2c8726666d334a10a1ad79fc7ca51c9ff1f86b9983f77f78f391e2845cd625dfd98a9970e778316135f09";

/// The EMV data of protocol 1.1 follows the 1.0 bytes: AID and label (length-prefixed), TVR,
/// TSI, ARC (length-prefixed), CVM, cryptogram type, cryptogram (docs/security.md).
#[test]
fn known_answer_for_the_emv_result_vector() {
    let id = SigningIdentity::from_secret(&unhex::<32>(RFC_SECRET));
    let mut r = samples::emv_result();
    let plain = result_signing_bytes(&samples::approved_result());
    let bytes = result_signing_bytes(&r);
    assert_eq!(
        &bytes[..plain.len()],
        &plain[..],
        "the 1.0 bytes come first"
    );
    assert_eq!(
        hex(&bytes[plain.len()..]),
        concat!(
            "0e4130303030303030303331303130",
            "0b5649534120435245444954",
            "0000008000",
            "0000",
            "023030",
            "01",
            "02",
            "1122334455667788"
        )
    );
    id.sign_result(&mut r);
    assert_eq!(hex(&r.signature.unwrap()), EMV_KAT_SIGNATURE);
    verify_result(&id.public_key(), &r).unwrap();
}

/// Also in docs/test-vectors.txt (`[emv-result]`), checked there by scripts/check_vectors.py.
const EMV_KAT_SIGNATURE: &str = "4fa565929e1057b60222de93bc102a6430a704069e5c6d78ad23e6243d8a5065c5b3aaaf286cd745752455b3feee6ee7d263d79c3a8f42bc9a401e02ce8dd600";

#[test]
fn emv_data_is_covered_by_the_signature() {
    let id = SigningIdentity::generate().unwrap();
    let mut signed = samples::emv_result();
    id.sign_result(&mut signed);
    let key = id.public_key();
    let changes: Vec<(&str, Change)> = vec![
        (
            "aid",
            Box::new(|r| r.emv.as_mut().unwrap().aid = "A0000000041010".into()),
        ),
        ("label", Box::new(|r| r.emv.as_mut().unwrap().label = None)),
        ("tvr", Box::new(|r| r.emv.as_mut().unwrap().tvr[3] = 0)),
        ("tsi", Box::new(|r| r.emv.as_mut().unwrap().tsi[0] = 0xE8)),
        (
            "arc",
            Box::new(|r| r.emv.as_mut().unwrap().arc = Some("51".into())),
        ),
        (
            "cvm",
            Box::new(|r| r.emv.as_mut().unwrap().cvm = CardholderVerification::Signature),
        ),
        (
            "cryptogram type",
            Box::new(|r| r.emv.as_mut().unwrap().cryptogram_type = CryptogramType::Arqc),
        ),
        (
            "cryptogram",
            Box::new(|r| r.emv.as_mut().unwrap().cryptogram[7] ^= 1),
        ),
        ("the whole EMV data", Box::new(|r| r.emv = None)),
    ];
    for (what, change) in changes {
        let mut r = signed.clone();
        change(&mut r);
        assert_eq!(
            verify_result(&key, &r),
            Err(SignatureError::Invalid),
            "changing the {what}"
        );
    }
}

/// A named edit of a result.
type Change = Box<dyn Fn(&mut TransactionResult)>;

#[test]
fn anything_that_matters_changed_breaks_the_signature() {
    let id = SigningIdentity::generate().unwrap();
    let mut signed = result();
    id.sign_result(&mut signed);
    let key = id.public_key();
    let changes: Vec<(&str, Change)> = vec![
        ("amount", Box::new(|r| r.amount.minor += 1)),
        (
            "approved",
            Box::new(|r| {
                r.outcome = Outcome::PartiallyApproved;
                r.approved_minor = 1000;
            }),
        ),
        ("currency", Box::new(|r| r.amount.currency = Currency::USD)),
        (
            "outcome",
            Box::new(|r| r.outcome = Outcome::Declined(DeclineReason::DO_NOT_HONOUR)),
        ),
        ("time", Box::new(|r| r.time.0 += 1)),
        ("terminal", Box::new(|r| r.terminal_id.0[0] ^= 1)),
        ("key", Box::new(|r| r.idempotency_key.0[15] ^= 1)),
        ("transaction", Box::new(|r| r.transaction_id.0[3] ^= 0x80)),
        ("tip", Box::new(|r| r.tip = Some(1000))),
        ("cashback", Box::new(|r| r.cashback = Some(0))),
        ("kind", Box::new(|r| r.kind = TransactionKind::Refund)),
        ("offline", Box::new(|r| r.offline = true)),
        (
            "pan",
            Box::new(|r| r.pan = Some(MaskedPan::parse("511111******1111").unwrap())),
        ),
        (
            "auth code",
            Box::new(|r| r.auth_code = Some("A1B2C4".into())),
        ),
    ];
    for (what, change) in changes {
        let mut r = signed.clone();
        change(&mut r);
        assert_eq!(
            verify_result(&key, &r),
            Err(SignatureError::Invalid),
            "changing the {what}"
        );
    }
    // Fields outside the money record (receipts, scheme) may be reformatted without breaking it.
    let mut r = signed.clone();
    r.card_scheme = Some("Visa".into());
    verify_result(&key, &r).unwrap();
}

#[test]
fn wrong_key_missing_signature_and_bit_flips_fail() {
    let id = SigningIdentity::generate().unwrap();
    let other = SigningIdentity::generate().unwrap();
    let mut r = result();
    assert_eq!(
        verify_result(&id.public_key(), &r),
        Err(SignatureError::Missing)
    );
    id.sign_result(&mut r);
    assert_eq!(
        verify_result(&other.public_key(), &r),
        Err(SignatureError::Invalid)
    );
    for bit in 0..512 {
        let mut flipped = r.clone();
        flipped.signature.as_mut().unwrap()[bit / 8] ^= 1 << (bit % 8);
        assert!(
            verify_result(&id.public_key(), &flipped).is_err(),
            "bit {bit}"
        );
    }
}

#[test]
fn a_journal_record_verifies_offline() {
    let id = SigningIdentity::generate().unwrap();
    let mut r = result();
    id.sign_result(&mut r);
    // What a journal keeps: the encoded message and the terminal's public key.
    let stored = Message::TransactionResult(r.clone()).to_bytes().unwrap();
    let key = PublicKey(id.public_key().0);
    assert_eq!(verify_result_message(&key, &stored).unwrap(), r);
    let mut altered = stored.to_vec();
    // The tip (field 0x17, 100 = 0x64) becomes 101: still a valid message, no longer the signed one.
    let at = altered
        .windows(3)
        .position(|w| w == [0x17, 0x01, 0x64])
        .unwrap();
    altered[at + 2] = 0x65;
    assert_eq!(
        verify_result_message(&key, &altered),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify_result_message(&key, b"\x05\x02\x01\x2a"),
        Err(SignatureError::Undecodable)
    );
}

#[test]
fn settlements_are_signed_too() {
    let id = SigningIdentity::generate().unwrap();
    let mut s = SettlementResult {
        request_id: RequestId::from_u128(9),
        idempotency_key: IdempotencyKey::from_u128(10),
        terminal_id: TerminalId::from_u128(4),
        batch_number: 17,
        status: Ok(()),
        opened: Some(Timestamp(1_763_900_000_000)),
        closed: Timestamp(1_764_000_000_000),
        totals: vec![Totals {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            count: 12,
            amount: 48_350,
        }],
        receipt: None,
        signature: None,
    };
    id.sign_settlement(&mut s);
    verify_settlement(&id.public_key(), &s).unwrap();
    s.totals[0].amount += 1;
    assert_eq!(
        verify_settlement(&id.public_key(), &s),
        Err(SignatureError::Invalid)
    );
    // A result signature never verifies as a settlement (domain separation).
    let mut r = result();
    id.sign_result(&mut r);
    s.signature = r.signature;
    assert_eq!(
        verify_settlement(&id.public_key(), &s),
        Err(SignatureError::Invalid)
    );
}

proptest! {
    // Ed25519 in a debug build is slow; 64 cases still cover amounts across the whole range.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_amount_change_is_detected(amount in any::<u64>(), delta in 1u64..1000) {
        let id = SigningIdentity::from_secret(&[7; 32]);
        let mut r = result();
        r.amount.minor = amount;
        r.approved_minor = amount;
        id.sign_result(&mut r);
        prop_assert!(verify_result(&id.public_key(), &r).is_ok());
        r.amount.minor = amount.wrapping_add(delta);
        r.approved_minor = r.amount.minor;
        prop_assert_eq!(verify_result(&id.public_key(), &r), Err(SignatureError::Invalid));
    }
}

/// The update manifest's canonical bytes (docs/security.md, "Software updates") and its
/// signature under the RFC 8032 test key: the `update-offer` vector.
#[test]
fn known_answer_for_the_update_offer_vector() {
    let id = SigningIdentity::from_secret(&unhex::<32>(RFC_SECRET));
    let mut offer = samples::update_offer();
    assert_eq!(
        hex(&update_signing_bytes(&offer.manifest)),
        concat!(
            "706f736272696467652f7570646174652f763100",
            "05322e352e30",
            "00100000",
            "abababababababababababababababababababababababababababababababab"
        )
    );
    id.sign_update(&mut offer.manifest);
    assert_eq!(hex(&offer.manifest.signature), UPDATE_KAT_SIGNATURE);
    verify_update(&id.public_key(), &offer.manifest).unwrap();
    let mut other = offer.manifest.clone();
    other.size += 1;
    assert_eq!(
        verify_update(&id.public_key(), &other),
        Err(SignatureError::Invalid)
    );
    // The message as docs/test-vectors.txt has it.
    let message = vector_message("update-offer");
    assert_eq!(
        hex(&Message::UpdateOffer(offer).to_bytes().unwrap()),
        message
    );
}

const UPDATE_KAT_SIGNATURE: &str = "1b78b8cdd9ffd90e5820325e6cefc9fa6f789c696e997f227693a169e5f7c1664ececb438edceef4a701e953f31c98c7a29f75859b4f5af0649fa56ad1e1bb0a";

/// The offline outcome's canonical bytes (docs/security.md) and its signature under the RFC 8032
/// test key: the `offline-outcome` vector, whose message docs/test-vectors.txt holds.
#[test]
fn known_answer_for_the_offline_outcome_vector() {
    let id = SigningIdentity::from_secret(&unhex::<32>(RFC_SECRET));
    let mut outcome = samples::offline_outcome();
    assert_eq!(
        hex(&offline_outcome_signing_bytes(&outcome)),
        concat!(
            "706f736272696467652f6f66666c696e652d6f7574636f6d652f763100",
            "04040404040404040404040404040404",
            "02020202020202020202020202020202",
            "03030303030303030303030303030303",
            "03",
            "0033",
            "0000019ab705c500"
        )
    );
    id.sign_offline_outcome(&mut outcome);
    verify_offline_outcome(&id.public_key(), &outcome).unwrap();
    let mut confirmed = outcome.clone();
    confirmed.state = OfflineState::Confirmed;
    assert_eq!(
        verify_offline_outcome(&id.public_key(), &confirmed),
        Err(SignatureError::Invalid),
        "a decline cannot be passed off as a confirmation"
    );
    let message = vector_message("offline-outcome");
    assert_eq!(
        hex(&Message::OfflineOutcome(outcome).to_bytes().unwrap()),
        message
    );
}
