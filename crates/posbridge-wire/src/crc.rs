//! The two checksums of a frame.
//!
//! * Header: CRC-16/IBM-3740 (a.k.a. CRC-16/CCITT-FALSE): polynomial 0x1021, initial value 0xFFFF,
//!   not reflected, no final XOR. Check value over `"123456789"`: 0x29B1.
//! * Trailer: CRC-32C (Castagnoli, CRC-32/ISCSI): reflected polynomial 0x82F63B78, initial value and
//!   final XOR 0xFFFFFFFF. Check value over `"123456789"`: 0xE3069283.

/// `TABLES[k][b]`: the CRC-16 register after feeding byte `b` followed by `k` zero bytes into a
/// zero register. Slicing by 8 lets the 11 header bytes go through in two steps instead of
/// eleven dependent table look-ups.
const fn crc16_tables() -> [[u16; 256]; 8] {
    let mut t = [[0u16; 256]; 8];
    let mut b = 0;
    while b < 256 {
        let mut crc = (b as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        t[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

static CRC16_TABLES: [[u16; 256]; 8] = crc16_tables();

/// CRC-16/IBM-3740 of `data`.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    let mut crc = 0xFFFFu16;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let hi = (crc >> 8) as u8 ^ c[0];
        let lo = crc as u8 ^ c[1];
        crc = t[7][usize::from(hi)]
            ^ t[6][usize::from(lo)]
            ^ t[5][usize::from(c[2])]
            ^ t[4][usize::from(c[3])]
            ^ t[3][usize::from(c[4])]
            ^ t[2][usize::from(c[5])]
            ^ t[1][usize::from(c[6])]
            ^ t[0][usize::from(c[7])];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

/// CRC-32C of `data`, using the fastest instructions the CPU offers.
#[cfg(feature = "std")]
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // The algorithm's width is 32 bits; the crate returns it widened to u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

#[cfg(not(feature = "std"))]
static CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// CRC-32C of `data`, table-driven (no runtime CPU detection without `std`).
#[cfg(not(feature = "std"))]
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    CRC32C.checksum(data)
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
    fn crc16_matches_bitwise_reference_at_every_length() {
        fn reference(data: &[u8]) -> u16 {
            let mut crc = 0xFFFFu16;
            for &b in data {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ 0x1021
                    } else {
                        crc << 1
                    };
                }
            }
            crc
        }
        let data: alloc::vec::Vec<u8> = (0..100u32).map(|i| (i * 57 + 3) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc16(&data[..len]), reference(&data[..len]), "len {len}");
        }
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
