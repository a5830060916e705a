//! The two checksums of a frame.
//!
//! * Header: CRC-16/IBM-3740 (a.k.a. CRC-16/CCITT-FALSE): polynomial 0x1021, initial value 0xFFFF,
//!   not reflected, no final XOR. Check value over `"123456789"`: 0x29B1.
//! * Trailer: CRC-32C (Castagnoli, CRC-32/ISCSI): reflected polynomial 0x82F63B78, initial value and
//!   final XOR 0xFFFFFFFF. Check value over `"123456789"`: 0xE3069283.

static CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

/// CRC-16/IBM-3740 of `data`.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// CRC-32C of `data`, using the fastest instructions the CPU offers.
#[cfg(feature = "std")]
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // The algorithm's width is 32 bits; the crate returns it widened to u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

#[cfg(not(feature = "std"))]
static CRC32C: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

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
