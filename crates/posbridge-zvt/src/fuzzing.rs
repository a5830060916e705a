//! Entry point of the `zvt_decode` fuzz target (compiled only with `--cfg fuzzing`).

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
