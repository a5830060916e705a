//! Service and characteristic UUIDs, and how a link writes.

use std::time::Duration;

use uuid::Uuid;

/// The Nordic UART Service.
pub const NUS_SERVICE: Uuid = Uuid::from_u128(0x6e40_0001_b5a3_f393_e0a9_e50e_24dc_ca9e);
/// NUS RX: the central writes here.
pub const NUS_RX: Uuid = Uuid::from_u128(0x6e40_0002_b5a3_f393_e0a9_e50e_24dc_ca9e);
/// NUS TX: the peripheral notifies here.
pub const NUS_TX: Uuid = Uuid::from_u128(0x6e40_0003_b5a3_f393_e0a9_e50e_24dc_ca9e);

/// The UART-style service a terminal offers: one characteristic the central writes, one it
/// subscribes to. Nordic's UART Service by default; terminals with their own UUIDs set them here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceUuids {
    /// The service.
    pub service: Uuid,
    /// The characteristic the central writes (peripheral's receive side).
    pub write: Uuid,
    /// The characteristic the peripheral notifies (peripheral's transmit side).
    pub notify: Uuid,
}

impl Default for ServiceUuids {
    fn default() -> Self {
        Self {
            service: NUS_SERVICE,
            write: NUS_RX,
            notify: NUS_TX,
        }
    }
}

/// How writes go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// Write without response where the characteristic offers it (paced, see
    /// [`BleConfig::confirm_every`]), else with response.
    Auto,
    /// Always write requests: one round trip per chunk; slow but flow-controlled by the peer.
    WithResponse,
    /// Always write commands; fails at connect if the characteristic does not offer them.
    WithoutResponse,
}

/// Settings of a BLE link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BleConfig {
    /// The service to use.
    pub uuids: ServiceUuids,
    /// Write requests or commands.
    pub write_mode: WriteMode,
    /// Largest characteristic value written, whatever the MTU: an attribute value is at most 512
    /// bytes and BlueZ 5.66 as a GATT server drops writes over 510. Default 510.
    pub max_chunk: usize,
    /// When writing without response, every this many chunks one goes out as a write request,
    /// so the peripheral's answer paces the sender (ATT handles requests in order, after the
    /// commands before them). `None` never waits. Default `Some(16)`.
    pub confirm_every: Option<u32>,
    /// A pause after every write command (some peripherals lose commands that arrive faster
    /// than their radio queue drains). Default none.
    pub write_gap: Duration,
    /// How long one write may take before the link is declared lost. Default 10 s.
    pub write_timeout: Duration,
    /// Bytes the link buffers for sending before `poll_send` waits. Default 16 KiB.
    pub send_buffer: usize,
    /// Received bytes the link buffers for a reader that does not read; more is an error rather
    /// than unbounded memory. Default 1 MiB.
    pub receive_buffer: usize,
}

impl Default for BleConfig {
    fn default() -> Self {
        Self {
            uuids: ServiceUuids::default(),
            write_mode: WriteMode::Auto,
            max_chunk: 510,
            confirm_every: Some(16),
            write_gap: Duration::ZERO,
            write_timeout: Duration::from_secs(10),
            send_buffer: 16 * 1024,
            receive_buffer: 1024 * 1024,
        }
    }
}

impl BleConfig {
    /// The chunk size for an ATT MTU: `min(mtu - 3, max_chunk)`; the minimum ATT MTU (23) is
    /// assumed for anything smaller.
    pub fn chunk_size(&self, att_mtu: u16) -> usize {
        (usize::from(att_mtu.max(23)) - 3).min(self.max_chunk.max(1))
    }
}
