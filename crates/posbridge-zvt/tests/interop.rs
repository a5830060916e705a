//! Interoperability with the `zvt` crate (a dev-dependency; none of its code is copied): the real
//! terminal captures it ships decode with our codec and re-encode to the same bytes, our fields
//! agree with its parsers on every status information and completion it can read, and the
//! commands our encoder writes parse with its parsers to the same values.

use std::path::PathBuf;

use posbridge_zvt::bmp::Bmp;
use posbridge_zvt::{Apdu, Command};
use zvt::ZvtSerializer;

/// The `zvt` crate's `data/` directory in cargo's registry (extracted because it is a
/// dependency of this test).
fn captures() -> Vec<(String, Vec<u8>)> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registry = home.join("registry/src");
    let dir = std::fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("{}: {e}", registry.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("zvt-0.1.0/data"))
        .find(|p| p.is_dir())
        .expect("zvt-0.1.0/data in cargo's registry");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "blob"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn field<T>(fields: &[Bmp], pick: impl Fn(&Bmp) -> Option<T>) -> Option<T> {
    fields.iter().find_map(pick)
}

#[test]
fn every_capture_decodes_and_re_encodes_to_the_same_bytes() {
    let all = captures();
    assert!(all.len() >= 20, "{} captures", all.len());
    let mut typed = 0;
    for (name, bytes) in &all {
        let apdu = Apdu::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&apdu.to_bytes().unwrap(), bytes, "{name}: APDU round trip");
        if let Ok(command) = Command::from_apdu(&apdu) {
            typed += 1;
            // Nothing is lost: the typed command written again reads back the same (a typed
            // command writes the fields it models first, so the bytes may be in another order).
            let again = command.to_apdu().unwrap().to_bytes().unwrap();
            assert_eq!(again.len(), bytes.len(), "{name}: typed round trip length");
            assert_eq!(
                Command::from_apdu(&Apdu::decode(&again).unwrap()).unwrap(),
                command,
                "{name}: typed round trip"
            );
        } else {
            eprintln!(
                "{name}: {:02X?} not typed: {:?}",
                apdu.code(),
                Command::from_apdu(&apdu).unwrap_err()
            );
        }
    }
    eprintln!("{} captures, {typed} typed", all.len());
    assert!(typed >= 16, "typed {typed}");
}

#[test]
fn status_informations_agree_with_the_zvt_crate() {
    let mut compared = 0;
    for (name, bytes) in captures() {
        if bytes.get(..2) != Some(&[0x04, 0x0F]) {
            continue;
        }
        let Ok((theirs, _)) = zvt::packets::StatusInformation::zvt_deserialize(&bytes) else {
            continue;
        };
        let Ok(Command::StatusInformation(ours)) =
            Command::from_apdu(&Apdu::decode(&bytes).unwrap())
        else {
            panic!("{name}: not a status information for us");
        };
        assert_eq!(
            field(&ours, |b| match b {
                Bmp::Amount(a) => Some(*a as usize),
                _ => None,
            }),
            theirs.amount,
            "{name}: amount"
        );
        assert_eq!(
            field(&ours, |b| match b {
                Bmp::Trace(t) => Some(*t as usize),
                _ => None,
            }),
            theirs.trace_number,
            "{name}: trace"
        );
        assert_eq!(
            field(&ours, |b| match b {
                Bmp::Currency(c) => Some(*c as usize),
                _ => None,
            }),
            theirs.currency,
            "{name}: currency"
        );
        assert_eq!(
            field(&ours, |b| match b {
                Bmp::Result(r) => Some(*r),
                _ => None,
            }),
            theirs.result_code,
            "{name}: result code"
        );
        assert_eq!(
            field(&ours, |b| match b {
                Bmp::Receipt(r) => Some(*r as usize),
                _ => None,
            }),
            theirs.receipt_no,
            "{name}: receipt number"
        );
        // The card number: it reads the nibbles into an integer, the masking `E` nibbles too
        // (which carry into the digits next to them), so a masked number cannot be compared
        // digit by digit; we keep the printed string with `*` for masked digits, never a
        // number. An unmasked number must agree exactly; a masked one in length.
        if let Some(pan) = theirs.card_number {
            let printed = field(&ours, |b| match b {
                Bmp::Pan(p) => Some(p.clone()),
                _ => None,
            })
            .expect("a card number");
            if printed.contains('*') {
                assert_eq!(
                    printed.len(),
                    pan.to_string().len(),
                    "{name}: card number length"
                );
            } else {
                assert_eq!(
                    printed.trim_start_matches('0'),
                    pan.to_string(),
                    "{name}: card number"
                );
            }
        }
        compared += 1;
    }
    assert!(compared >= 3, "compared {compared}");
}

#[test]
fn our_commands_parse_with_the_zvt_crate() {
    let bytes = |c: Command| c.to_apdu().unwrap().to_bytes().unwrap();

    let registration = bytes(Command::Registration {
        password: 123_456,
        config: 0xBE,
        currency: Some(978),
        extra: Vec::new(),
    });
    let (r, rest) = zvt::packets::Registration::zvt_deserialize(&registration).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        (r.password, r.config_byte, r.currency),
        (123_456, 0xBE, Some(978))
    );

    let reservation = bytes(Command::PreAuthorisation {
        amount: 30_000,
        currency: Some(978),
        extra: Vec::new(),
    });
    let (r, rest) = zvt::packets::Reservation::zvt_deserialize(&reservation).unwrap();
    assert!(rest.is_empty());
    assert_eq!((r.amount, r.currency), (Some(30_000), Some(978)));

    let end_of_day = bytes(Command::EndOfDay {
        password: 123_456,
        extra: Vec::new(),
    });
    let (r, rest) = zvt::packets::EndOfDay::zvt_deserialize(&end_of_day).unwrap();
    assert!(rest.is_empty());
    assert_eq!(r.password, 123_456);

    let enquiry = bytes(Command::StatusEnquiry {
        password: 123_456,
        extra: Vec::new(),
    });
    let (r, rest) = zvt::packets::StatusEnquiry::zvt_deserialize(&enquiry).unwrap();
    assert!(rest.is_empty());
    assert_eq!(r.password, Some(123_456));

    // The pre-authorisation follow-ups our client sends.
    let partial = bytes(Command::PartialReversal(vec![
        Bmp::Receipt(42),
        Bmp::Amount(1_000),
        Bmp::Currency(978),
    ]));
    let (r, rest) = zvt::packets::PartialReversal::zvt_deserialize(&partial).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        (r.receipt_no, r.amount, r.currency),
        (Some(42), Some(1_000), Some(978))
    );
    let release = bytes(Command::PreAuthReversal(vec![
        Bmp::Currency(978),
        Bmp::Receipt(42),
    ]));
    let (r, rest) = zvt::packets::PreAuthReversal::zvt_deserialize(&release).unwrap();
    assert!(rest.is_empty());
    assert_eq!((r.currency, r.receipt_no), (Some(978), Some(42)));
}

#[test]
fn status_enquiry_completions_agree_with_the_zvt_crate() {
    // Theirs: the Feig terminal's answer in the captures reads with ours.
    let (_, feig) = captures()
        .into_iter()
        .find(|(name, _)| name == "1680728219.054216000_pt_ecr.blob")
        .expect("the status enquiry completion capture");
    let apdu = Apdu::decode(&feig).unwrap();
    assert_eq!(apdu.code(), [0x06, 0x0F]);
    let ours = posbridge_zvt::TerminalStatus::parse(&apdu.data).unwrap();
    assert_eq!(
        ours.software_version,
        "GER-APP-v2.0.9;cS02.01.01-10.10-2-2;CC26"
    );
    assert_eq!(ours.terminal_id, Some(52_523_535));
    assert!(ours.local_time.is_some());
    // Ours (what the terminal role sends) reads with theirs.
    let status = posbridge_zvt::TerminalStatus {
        software_version: "posbridge ZVT".into(),
        status: 0,
        terminal_id: Some(52_500_038),
        // A month before October: the zvt crate reads the month as `date % 1000 / 100`, which
        // holds for one-digit months only (as in its own capture, 20230405).
        local_time: posbridge_zvt::codes::timestamp_of(2025, 4, 5, 160_000),
        tlv: Vec::new(),
    };
    let bytes = Apdu::new(0x06, 0x0F, status.encode().unwrap())
        .to_bytes()
        .unwrap();
    let (theirs, rest) = zvt::packets::ReceiptPrintoutCompletion::zvt_deserialize(&bytes).unwrap();
    assert!(rest.is_empty());
    assert_eq!(theirs.sw_version, "posbridge ZVT");
    assert_eq!(theirs.terminal_status_code, 0);
    let tlv = theirs.tlv.expect("a TLV container");
    assert_eq!(tlv.terminal_id, Some(52_500_038));
    assert_eq!(
        tlv.date_time.map(|d| d.to_string()),
        Some("2025-04-05 16:00:00".to_string())
    );
}
