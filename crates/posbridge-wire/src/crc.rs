//! The two checksums of a frame.
//!
//! * Header: CRC-16/IBM-3740 (a.k.a. CRC-16/CCITT-FALSE): polynomial 0x1021, initial value 0xFFFF,
//!   not reflected, no final XOR. Check value over `"123456789"`: 0x29B1.
//! * Trailer: CRC-32C (Castagnoli, CRC-32/ISCSI): reflected polynomial 0x82F63B78, initial value and
//!   final XOR 0xFFFFFFFF. Check value over `"123456789"`: 0xE3069283.

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC16_TABLE: [u16; 256] = crc16_table();

/// CRC-16/IBM-3740 of `data`.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in data {
        crc = (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

/// CRC-32C of `data`, using the fastest instructions the CPU offers.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // The algorithm's width is 32 bits; the crate returns it widened to u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc16(b""), 0xFFFF);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn crc32c_matches_bitwise_reference_at_every_length() {
        fn reference(data: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in data {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0x82F6_3B78
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let data: alloc::vec::Vec<u8> = (0..600u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc32c(&data[..len]), reference(&data[..len]), "len {len}");
        }
    }
}
