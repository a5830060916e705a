//! Entry points of the `zvt_decode` and `zvt_exchange` fuzz targets (compiled only with
//! `--cfg fuzzing`).

use bytes::BytesMut;

use crate::serial::{SerialDecoder, SerialEvent, encode_frame};
use crate::{Apdu, ApduStream, Command};

/// Feeds arbitrary bytes to the APDU stream, the serial decoder and the command decoder. Nothing
/// may panic; every APDU and command decoded re-encodes to something that decodes to itself.
pub fn zvt_decode(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut stream = ApduStream::new();
    while let Ok(Some(apdu)) = stream.decode(&mut buf) {
        check(&apdu);
    }
    let mut buf = BytesMut::from(data);
    let mut serial = SerialDecoder::new();
    while let Some(event) = serial.decode(&mut buf) {
        if let SerialEvent::Frame(apdu) = event {
            check(&apdu);
            let frame = encode_frame(&apdu).expect("a decoded APDU encodes");
            let mut again = BytesMut::from(&frame[..]);
            assert_eq!(
                SerialDecoder::new().decode(&mut again),
                Some(SerialEvent::Frame(apdu))
            );
        }
    }
}

fn check(apdu: &Apdu) {
    let bytes = apdu.to_bytes().expect("a decoded APDU encodes");
    assert_eq!(&Apdu::decode(&bytes).expect("round trip"), apdu);
    if let Ok(cmd) = Command::from_apdu(apdu)
        && let Ok(re) = cmd.to_apdu()
    {
        assert_eq!(Command::from_apdu(&re).as_ref(), Ok(&cmd), "{apdu:?}");
    }
}

/// Entry point of the `zvt_exchange` fuzz target: both sides of the exchange and both lines,
/// driven by operation bytes (start a command, deliver, lose or damage bytes, let time pass,
/// abort, answer as the terminal). Nothing may panic; every exchange started ends exactly once,
/// with its own tag; no event comes for an exchange that is not running; a command reaches the
/// terminal's application only when no other runs.
pub fn zvt_exchange(data: &[u8]) {
    use std::time::{Duration, Instant};

    use crate::exchange::{Register, RegisterEvent, T3, Terminal, TerminalEvent};
    use crate::line::{Framing, Line};

    let mut ops = data.iter().copied();
    let framing = if ops.next().unwrap_or(0) & 1 == 0 {
        Framing::Tcp
    } else {
        Framing::Serial
    };
    let start = Instant::now();
    let mut now = start;
    let mut reg = Register::new(T3);
    let mut term = Terminal::new(T3);
    let mut reg_line = Line::new(framing);
    let mut term_line = Line::new(framing);
    // Bytes in flight each way.
    let mut to_term: Vec<Vec<u8>> = Vec::new();
    let mut to_reg: Vec<Vec<u8>> = Vec::new();
    let mut running: Option<u64> = None;
    let mut next_tag = 1u64;
    let messages = [
        Apdu::ack(),
        Apdu::nak(0x83),
        Command::IntermediateStatus {
            status: 0x0A,
            timeout: None,
            extra: Vec::new(),
        }
        .to_apdu()
        .expect("encodes"),
        Command::StatusInformation(vec![crate::bmp::Bmp::Result(0)])
            .to_apdu()
            .expect("encodes"),
        Command::PrintLine {
            attribute: 0x80,
            text: b"X".to_vec(),
        }
        .to_apdu()
        .expect("encodes"),
        Command::Completion(Vec::new()).to_apdu().expect("encodes"),
        Command::AbortFromTerminal {
            result: 0x6C,
            extra: Vec::new(),
        }
        .to_apdu()
        .expect("encodes"),
    ];
    while let Some(op) = ops.next() {
        let arg = ops.next().unwrap_or(0);
        match op % 10 {
            0 => {
                let command = if arg & 1 == 0 {
                    Command::Authorization {
                        amount: u64::from(arg),
                        currency: Some(978),
                        extra: Vec::new(),
                    }
                } else {
                    Command::LogOff
                };
                let apdu = command.to_apdu().expect("encodes");
                let deadline = now + Duration::from_secs(u64::from(arg % 64) + 1);
                match reg.start(apdu, next_tag, now, deadline) {
                    Ok(()) => {
                        assert!(running.is_none(), "started while one ran");
                        running = Some(next_tag);
                        next_tag += 1;
                    }
                    Err(_) => assert!(running.is_some(), "busy while none ran"),
                }
            }
            1 => {
                if let Some(b) = (!to_term.is_empty()).then(|| to_term.remove(0)) {
                    term_line.handle_input(&b, now);
                }
            }
            2 => {
                if let Some(b) = (!to_reg.is_empty()).then(|| to_reg.remove(0)) {
                    reg_line.handle_input(&b, now);
                }
            }
            3 => {
                // Lose or damage bytes in flight.
                let way = if arg & 1 == 0 {
                    &mut to_term
                } else {
                    &mut to_reg
                };
                if !way.is_empty() {
                    let i = usize::from(arg >> 1) % way.len();
                    if arg & 2 == 0 {
                        way.remove(i);
                    } else {
                        let at = usize::from(arg) % way[i].len().max(1);
                        if let Some(byte) = way[i].get_mut(at) {
                            *byte ^= 0x5A;
                        }
                    }
                }
            }
            4 => now += Duration::from_millis(u64::from(arg) * 50),
            5 => reg.abort(),
            6 => term.accept(),
            7 => term.send(messages[usize::from(arg) % messages.len()].clone(), now),
            8 => term.end(messages[usize::from(arg) % messages.len()].clone(), now),
            _ => {
                if arg & 1 == 0 {
                    term.refuse(0x83);
                } else {
                    term.finish();
                }
            }
        }
        reg.handle_timeout(now);
        term.handle_timeout(now);
        reg_line.handle_timeout(now);
        term_line.handle_timeout(now);
        while let Some(a) = reg.poll_transmit() {
            let _ = reg_line.send(&a);
        }
        while let Some(a) = term.poll_transmit(now) {
            let _ = term_line.send(&a);
        }
        while let Some(b) = reg_line.poll_transmit(now) {
            to_term.push(b);
        }
        while let Some(b) = term_line.poll_transmit(now) {
            to_reg.push(b);
        }
        if let Some(a) = reg_line.poll_apdu() {
            reg.handle_apdu(a, now);
        }
        if let Some(a) = term_line.poll_apdu() {
            term.handle_apdu(a, now);
        }
        while let Some(ev) = reg.poll_event() {
            match ev {
                RegisterEvent::Status { tag, .. } => assert_eq!(Some(tag), running),
                RegisterEvent::Ended { tag, .. } => {
                    assert_eq!(Some(tag), running, "an end for an exchange not running");
                    running = None;
                }
            }
        }
        assert_eq!(running.is_some(), reg.is_running());
        while let Some(ev) = term.poll_event() {
            if let TerminalEvent::Command(_) = ev {
                assert!(term.is_busy());
            }
        }
    }
}
