//! The ZVT codec: the specification's vectors, length forms, stuffing, checksums, damaged and
//! split input, masked PANs, and round trips.

use bytes::BytesMut;
use posbridge_zvt::bmp::{self, Bmp};
use posbridge_zvt::serial::{self, SerialDecoder, SerialEvent};
use posbridge_zvt::{Apdu, ApduStream, Command, ZvtError};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// The specification's serial Authorization of EUR 110.00.
const AUTH_110: &str = "10 02 06 01 0A 04 00 00 00 01 10 10 00 49 09 78 10 03 F2 FF";

#[test]
fn the_specification_s_authorization_vector() {
    let cmd = Command::Authorization {
        amount: 11_000,
        currency: Some(978),
        extra: Vec::new(),
    };
    let apdu = cmd.to_apdu().unwrap();
    assert_eq!(
        apdu.to_bytes().unwrap(),
        hex("06 01 0A 04 00 00 00 01 10 00 49 09 78")
    );
    assert_eq!(serial::encode_frame(&apdu).unwrap(), hex(AUTH_110));
    let mut buf = BytesMut::from(&hex(AUTH_110)[..]);
    let got = SerialDecoder::new().decode(&mut buf);
    assert_eq!(got, Some(SerialEvent::Frame(apdu.clone())));
    assert!(buf.is_empty());
    assert_eq!(Command::from_apdu(&apdu).unwrap(), cmd);
}

#[test]
fn the_checksum_is_crc16_kermit() {
    // The catalogue check value of CRC-16/KERMIT over "123456789" (without the ETX the frame
    // adds) — here through the frame function, whose ETX is part of the sum.
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_KERMIT);
    assert_eq!(crc.checksum(b"123456789"), 0x2189);
    assert_eq!(
        serial::checksum(&hex("06 01 0A 04 00 00 00 01 10 00 49 09 78")),
        0xFFF2
    );
}

#[test]
fn long_apdus_use_the_three_byte_length() {
    let a = Apdu::new(0x06, 0xD3, vec![0x41; 300]);
    let b = a.to_bytes().unwrap();
    assert_eq!(&b[..5], &[0x06, 0xD3, 0xFF, 0x2C, 0x01]);
    assert_eq!(Apdu::decode(&b).unwrap(), a);
    let short = Apdu::new(0x06, 0xD1, vec![0x41; 254]);
    assert_eq!(short.to_bytes().unwrap()[2], 254);
    assert_eq!(
        Apdu::new(0x06, 0xD1, vec![0; 255]).to_bytes().unwrap()[2],
        0xFF
    );
    assert_eq!(
        Apdu::new(0, 0, vec![0; 70_000]).to_bytes(),
        Err(ZvtError::TooLong { len: 70_000 })
    );
}

#[test]
fn tcp_reads_split_anywhere_reassemble_by_length() {
    let apdus = [
        Command::IntermediateStatus {
            status: 0x0A,
            timeout: None,
            extra: Vec::new(),
        }
        .to_apdu()
        .unwrap(),
        Apdu::new(0x06, 0xD3, vec![0x20; 400]),
        Apdu::ack(),
    ];
    let mut wire = Vec::new();
    for a in &apdus {
        a.encode(&mut wire).unwrap();
    }
    for split in 1..wire.len() {
        let mut stream = ApduStream::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(split) {
            buf.extend_from_slice(chunk);
            while let Some(a) = stream.decode(&mut buf).unwrap() {
                got.push(a);
            }
        }
        assert_eq!(got, apdus, "split every {split} bytes");
    }
}

#[test]
fn serial_noise_damage_and_acknowledgements() {
    let good = serial::encode_frame(&Apdu::ack()).unwrap();
    let mut damaged = serial::encode_frame(&Command::LogOff.to_apdu().unwrap()).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xFF;
    let mut wire = vec![0x00, 0x7F]; // noise
    wire.push(serial::ACK);
    wire.extend(&damaged);
    wire.push(serial::NAK);
    wire.extend(&good);
    let mut dec = SerialDecoder::new();
    let mut buf = BytesMut::from(&wire[..]);
    let mut events = Vec::new();
    while let Some(e) = dec.decode(&mut buf) {
        events.push(e);
    }
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0], SerialEvent::Ack);
    assert!(matches!(
        events[1],
        SerialEvent::Damaged(ZvtError::Checksum { .. })
    ));
    assert_eq!(events[2], SerialEvent::Nak);
    assert_eq!(events[3], SerialEvent::Frame(Apdu::ack()));
    assert_eq!(dec.skipped, 2);
    // Split anywhere, the same events.
    for split in 1..wire.len() {
        let mut dec = SerialDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(split) {
            buf.extend_from_slice(chunk);
            while let Some(e) = dec.decode(&mut buf) {
                got.push(e);
            }
        }
        assert_eq!(got, events, "split every {split}");
    }
}

#[test]
fn masked_pans_decode_as_masked_strings() {
    // 411111EEEEEE1111 as BCD with E nibbles: never a number.
    let data = hex("22 F0 F8 41 11 11 EE EE EE 11 11");
    assert_eq!(
        bmp::parse(&data).unwrap(),
        vec![Bmp::Pan("411111******1111".into())]
    );
    assert_eq!(
        bmp::encode(&[Bmp::Pan("411111******1111".into())]).unwrap(),
        data
    );
    // An odd number of digits is padded with F.
    let odd = bmp::encode(&[Bmp::Pan("123".into())]).unwrap();
    assert_eq!(odd, hex("22 F0 F2 12 3F"));
    assert_eq!(bmp::parse(&odd).unwrap(), vec![Bmp::Pan("123".into())]);
    assert_eq!(
        bmp::encode(&[Bmp::Pan("12a".into())]),
        Err(ZvtError::BadPan)
    );
}

#[test]
fn status_information_fields_and_typed_errors() {
    let fields = vec![
        Bmp::Result(0x00),
        Bmp::Amount(1250),
        Bmp::Currency(978),
        Bmp::Trace(42),
        Bmp::Time(160_000),
        Bmp::Date(1124),
        Bmp::Receipt(7),
        Bmp::CardType(0x05),
        Bmp::Pan("6725************0013".into()),
        Bmp::Tlv(vec![0x1F, 0x10, 0x01, 0x00]),
    ];
    let apdu = Command::StatusInformation(fields.clone())
        .to_apdu()
        .unwrap();
    assert_eq!(
        Command::from_apdu(&apdu).unwrap(),
        Command::StatusInformation(fields)
    );
    assert_eq!(bmp::parse(&hex("04 00 00")), Err(ZvtError::Truncated));
    assert_eq!(
        bmp::parse(&hex("04 00 00 00 00 0A 00")),
        Err(ZvtError::BadBcd(0x0A))
    );
    assert_eq!(bmp::parse(&hex("FE 00")), Err(ZvtError::UnknownBmp(0xFE)));
    assert_eq!(bmp::parse(&hex("22 A1 00")), Err(ZvtError::BadLength(0xA1)));
    assert_eq!(
        Command::from_apdu(&Apdu::new(0x06, 0x01, hex("49 09 78"))),
        Err(ZvtError::Missing("amount"))
    );
    assert_eq!(
        Command::from_apdu(&Apdu::new(0x07, 0x07, vec![])),
        Err(ZvtError::UnknownCommand([0x07, 0x07]))
    );
    assert_eq!(
        bmp::bcd(1_000_000, 3),
        Err(ZvtError::ValueTooLarge {
            value: 1_000_000,
            bytes: 3
        })
    );
}

/// Fields a command may carry besides the ones its type models (none of them an amount,
/// currency or receipt number, which the types take).
fn extra() -> impl Strategy<Value = Vec<Bmp>> {
    let one = prop_oneof![
        any::<u8>().prop_map(|b| Bmp::Other(0x19, vec![b])),
        (0u32..1_000_000).prop_map(Bmp::Trace),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bmp::Tlv),
        "[A-Za-z ]{0,20}".prop_map(Bmp::CardName),
        proptest::collection::vec(any::<u8>(), 0..60).prop_map(|v| Bmp::Other(0x3C, v)),
    ];
    proptest::collection::vec(one, 0..3)
}

fn command() -> impl Strategy<Value = Command> {
    let pw = 0u32..1_000_000;
    let amount = 0u64..1_000_000_000_000;
    let cur = proptest::option::of(0u16..1000);
    prop_oneof![
        (pw.clone(), any::<u8>(), cur.clone(), extra()).prop_map(
            |(password, config, currency, extra)| Command::Registration {
                password,
                config,
                currency,
                // Without a currency, a service byte or TLV right after the config byte is the
                // format's own ambiguity: registers send the currency with them. At most one
                // TLV container, as the specification lists it.
                extra: if currency.is_some() {
                    extra
                        .into_iter()
                        .filter(|b| matches!(b, Bmp::Tlv(_)))
                        .take(1)
                        .collect()
                } else {
                    Vec::new()
                },
            }
        ),
        (amount.clone(), cur.clone(), extra()).prop_map(|(amount, currency, extra)| {
            Command::Authorization {
                amount,
                currency,
                extra,
            }
        }),
        (amount.clone(), cur.clone(), extra()).prop_map(|(amount, currency, extra)| {
            Command::PreAuthorisation {
                amount,
                currency,
                extra,
            }
        }),
        (pw.clone(), proptest::option::of(0u16..10_000), extra()).prop_map(
            |(password, receipt, extra)| Command::Reversal {
                password,
                receipt,
                extra,
            }
        ),
        (pw.clone(), amount, cur, extra()).prop_map(|(password, amount, currency, extra)| {
            Command::Refund {
                password,
                amount,
                currency,
                extra,
            }
        }),
        (pw.clone(), extra()).prop_map(|(password, extra)| Command::EndOfDay { password, extra }),
        (pw.clone(), extra())
            .prop_map(|(password, extra)| Command::StatusEnquiry { password, extra }),
        (pw.clone(), extra())
            .prop_map(|(password, extra)| Command::RepeatReceipt { password, extra }),
        (pw.clone(), extra())
            .prop_map(|(password, extra)| Command::Initialisation { password, extra }),
        (pw.clone(), extra()).prop_map(|(password, extra)| {
            Command::PrintSystemConfiguration { password, extra }
        }),
        (pw, extra()).prop_map(|(password, extra)| Command::SetTerminalId { password, extra }),
        (any::<u8>(), extra()).prop_map(|(timeout, extra)| Command::ReadCard { timeout, extra }),
        extra().prop_map(Command::Diagnosis),
        extra().prop_map(Command::PartialReversal),
        extra().prop_map(Command::BookTotal),
        extra().prop_map(Command::PreAuthReversal),
        Just(Command::Abort),
        Just(Command::LogOff),
        Just(Command::Ack),
        any::<u8>().prop_map(Command::Nak),
        (any::<u8>(), proptest::option::of(any::<u8>()), extra()).prop_map(
            |(status, timeout, extra)| Command::IntermediateStatus {
                status,
                timeout,
                // A display time with BMPs after it, or BMPs alone: both read back; a bare
                // timeout followed by nothing is the same either way.
                extra: if timeout.is_some() { extra } else { Vec::new() },
            }
        ),
        (any::<u8>(), extra())
            .prop_map(|(result, extra)| Command::AbortFromTerminal { result, extra }),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(attribute, text)| Command::PrintLine { attribute, text }),
        proptest::collection::vec(any::<u8>(), 0..400).prop_map(Command::PrintTextBlock),
    ]
}

proptest! {
    #[test]
    fn commands_round_trip_through_apdus_and_serial_frames(cmd in command()) {
        let apdu = cmd.to_apdu().unwrap();
        prop_assert_eq!(Command::from_apdu(&apdu).unwrap(), cmd);
        let frame = serial::encode_frame(&apdu).unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        prop_assert_eq!(SerialDecoder::new().decode(&mut buf), Some(SerialEvent::Frame(apdu)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut buf = BytesMut::from(&data[..]);
        let mut dec = SerialDecoder::new();
        let mut n = 0;
        while dec.decode(&mut buf).is_some() {
            n += 1;
            prop_assert!(n <= data.len());
        }
        let _ = Apdu::decode(&data);
        let _ = bmp::parse(&data);
    }
}

/// The rest of a frame damaged by a lone DLE is skipped to its end: its `06` and `15` bytes are
/// not taken for ACK and NAK (which would answer the peer's next send in its stead).
#[test]
fn a_damaged_frames_remainder_is_not_read_as_acknowledgements() {
    let good = serial::encode_frame(&Apdu::new(0x06, 0xD1, vec![0x06, 0x15, 0x06])).unwrap();
    // DLE STX, a DLE followed by 0x41 (not allowed), then ACK/NAK-valued bytes, the end.
    let mut bytes = vec![
        0x10, 0x02, 0x06, 0xD1, 0x10, 0x41, 0x06, 0x15, 0x06, 0x10, 0x03, 0xAA, 0xBB,
    ];
    bytes.extend(&good);
    bytes.push(serial::ACK);
    let mut buf = BytesMut::from(&bytes[..]);
    let mut dec = SerialDecoder::new();
    assert!(matches!(
        dec.decode(&mut buf),
        Some(SerialEvent::Damaged(_))
    ));
    assert!(matches!(dec.decode(&mut buf), Some(SerialEvent::Frame(_))));
    assert_eq!(dec.decode(&mut buf), Some(SerialEvent::Ack));
    assert_eq!(dec.decode(&mut buf), None);
}

#[test]
fn a_registration_s_untagged_currency_is_read_as_the_specification_orders_the_fields() {
    let decode = |data: &str| {
        let digits: String = data.split_whitespace().collect();
        let bytes = (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>();
        Command::from_apdu(&Apdu::new(0x06, 0x00, bytes))
    };
    // Currency HUF (348, `03 48`) then an empty TLV container.
    assert_eq!(
        decode("000000 BA 0348 0600"),
        Ok(Command::Registration {
            password: 0,
            config: 0xBA,
            currency: Some(348),
            extra: vec![Bmp::Tlv(Vec::new())],
        })
    );
    // No currency: a service byte then a TLV container that cannot be read as a currency
    // (`03 0A` is no BCD).
    assert_eq!(
        decode("000000 BA 030A 0600"),
        Ok(Command::Registration {
            password: 0,
            config: 0xBA,
            currency: None,
            extra: vec![Bmp::Other(0x03, vec![0x0A]), Bmp::Tlv(Vec::new())],
        })
    );
    // The fuzzer's find: two TLV containers after no currency are no registration; and what
    // was a currency of 606 before one container stays one after a round trip.
    assert!(decode("010006 CE 0606 0606 0606 0a05 068200 00").is_err());
    let once = decode("010006 CE 0606 0606 06060a050600").unwrap();
    assert_eq!(Command::from_apdu(&once.to_apdu().unwrap()), Ok(once));
    // Fields that would read back as a currency are refused, not sent.
    let ambiguous = Command::Registration {
        password: 0,
        config: 0xBA,
        currency: None,
        extra: vec![Bmp::Other(0x03, vec![0x48]), Bmp::Tlv(Vec::new())],
    };
    assert_eq!(ambiguous.to_apdu(), Err(ZvtError::Ambiguous));
}
