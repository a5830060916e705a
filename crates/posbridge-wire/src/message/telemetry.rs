//! Protocol 1.1: the terminal's telemetry (battery, power, software, paper, acquirer link, payments
//! stored offline), answered on demand and pushed when it changes.

use alloc::string::String;

use super::common::limits;
use crate::tlv::{DecResult, EncResult, Field, Reader, Slot, Tlv, Writer, key};
use crate::types::{RequestId, TelemetryChange, TelemetryChangeSet};

small_enum! {
    /// Where the terminal takes its power from.
    PowerSource {
        /// Its own battery.
        Battery = 1,
        /// Mains power (a wall plug or a powered base).
        Mains = 2,
        /// A USB port (a till's or a charger's).
        Usb = 3,
        /// A charging dock or cradle.
        Dock = 4,
    }
}

small_enum! {
    /// The receipt printer's paper.
    PaperState {
        /// Enough paper.
        Ok = 1,
        /// Little paper left.
        Low = 2,
        /// No paper: receipts cannot be printed.
        Out = 3,
    }
}

small_enum! {
    /// Whether the terminal reaches its acquirer (the payment host).
    AcquirerLink {
        /// Online: payments are authorised by the host.
        Online = 1,
        /// Offline: payments are declined, or approved offline within the terminal's limits.
        Offline = 2,
    }
}

/// What a terminal reports about itself (protocol 1.1). Fields a terminal does not have are
/// `None` (a mains-only terminal has no battery, one without printer no paper).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Telemetry {
    /// Battery charge, 0–100 %.
    pub battery_percent: Option<u8>,
    /// Whether the battery is charging.
    pub charging: bool,
    /// The power source.
    pub power: Option<PowerSource>,
    /// The firmware version.
    pub firmware: Option<String>,
    /// The payment application's version.
    pub app_version: Option<String>,
    /// The printer's paper.
    pub paper: Option<PaperState>,
    /// Whether the acquirer is reachable.
    pub acquirer: AcquirerLink,
    /// Payments approved offline and not yet forwarded to the acquirer.
    pub stored_offline: u32,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            battery_percent: None,
            charging: false,
            power: None,
            firmware: None,
            app_version: None,
            paper: None,
            acquirer: AcquirerLink::Online,
            stored_offline: 0,
        }
    }
}

impl Telemetry {
    /// At or below this charge the battery is low (a push with
    /// [`TelemetryChange::BatteryLow`] when it is crossed).
    pub const BATTERY_LOW_PERCENT: u8 = 15;

    /// What changed from `before` to `self`, as a terminal pushes it. A battery level that moves
    /// without crossing the low threshold is not a change worth a push (it is read on demand).
    pub fn changes_from(&self, before: &Self) -> TelemetryChangeSet {
        let mut set = TelemetryChangeSet::EMPTY;
        let low = |t: &Self| {
            t.battery_percent
                .is_some_and(|p| p <= Self::BATTERY_LOW_PERCENT)
        };
        if low(self) && !low(before) {
            set.insert(TelemetryChange::BatteryLow);
        }
        if self.power != before.power || self.charging != before.charging {
            set.insert(TelemetryChange::Power);
        }
        if self.paper != before.paper {
            match self.paper {
                Some(PaperState::Low) => set.insert(TelemetryChange::PaperLow),
                Some(PaperState::Out) => set.insert(TelemetryChange::PaperOut),
                Some(PaperState::Ok) => set.insert(TelemetryChange::PaperRefilled),
                None => {}
            }
        }
        if self.acquirer != before.acquirer {
            set.insert(match self.acquirer {
                AcquirerLink::Online => TelemetryChange::Online,
                AcquirerLink::Offline => TelemetryChange::Offline,
            });
        }
        if self.firmware != before.firmware || self.app_version != before.app_version {
            set.insert(TelemetryChange::Software);
        }
        if self.stored_offline != before.stored_offline {
            set.insert(TelemetryChange::StoredOffline);
        }
        set
    }
}

mod fields {
    use super::key;
    pub(super) const BATTERY: u8 = key(1, false);
    pub(super) const CHARGING: u8 = key(2, false);
    pub(super) const POWER: u8 = key(3, false);
    pub(super) const FIRMWARE: u8 = key(4, false);
    pub(super) const APP: u8 = key(5, false);
    pub(super) const PAPER: u8 = key(6, false);
    pub(super) const ACQUIRER: u8 = key(7, true);
    pub(super) const STORED: u8 = key(8, false);
}

fn percent(f: &Field<'_>) -> DecResult<u8> {
    let v = f.u8()?;
    f.check(v, |v| *v <= 100)
}

impl Tlv for Telemetry {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use fields::*;
        if let Some(p) = self.battery_percent {
            if p > 100 {
                return Err(crate::MessageEncodeError::InvalidValue { key: BATTERY });
            }
            w.uint(BATTERY, p.into());
        }
        w.flag(CHARGING, self.charging);
        w.opt_uint(POWER, self.power.map(|p| p as u64));
        w.opt_text(FIRMWARE, self.firmware.as_deref(), limits::NAME)?;
        w.opt_text(APP, self.app_version.as_deref(), limits::NAME)?;
        w.opt_uint(PAPER, self.paper.map(|p| p as u64));
        w.uint(ACQUIRER, self.acquirer as u64);
        if self.stored_offline != 0 {
            w.uint(STORED, self.stored_offline.into());
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use fields::*;
        let (mut battery, mut charging, mut power, mut firmware, mut app) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut paper, mut acquirer, mut stored) =
            (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                BATTERY => battery.set(&f, percent(&f))?,
                CHARGING => charging.set(&f, f.flag())?,
                POWER => power.set(&f, f.code(PowerSource::from_code))?,
                FIRMWARE => firmware.set(&f, f.text(limits::NAME))?,
                APP => app.set(&f, f.text(limits::NAME))?,
                PAPER => paper.set(&f, f.code(PaperState::from_code))?,
                ACQUIRER => acquirer.set(&f, f.code(AcquirerLink::from_code))?,
                STORED => stored.set(&f, f.nonzero_u32())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            battery_percent: battery.get(),
            charging: charging.get().unwrap_or(false),
            power: power.get(),
            firmware: firmware.get(),
            app_version: app.get(),
            paper: paper.get(),
            acquirer: acquirer.required(ACQUIRER, r)?,
            stored_offline: stored.get().unwrap_or(0),
        })
    }
}

/// Terminal → client (protocol 1.1): the terminal's telemetry, as the answer to a
/// [`TelemetryQuery`](crate::TelemetryQuery) (with its request id, no changes) or pushed
/// unasked when something changed (no request id; `changes` says what).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryReport {
    /// The query answered; `None` for a push.
    pub request_id: Option<RequestId>,
    /// What changed since the last push (empty in an answer).
    pub changes: TelemetryChangeSet,
    /// The telemetry now.
    pub telemetry: Telemetry,
}

mod report {
    use super::key;
    pub(super) const REQUEST_ID: u8 = key(1, true);
    pub(super) const CHANGES: u8 = key(2, false);
    pub(super) const TELEMETRY: u8 = key(3, true);
}

impl Tlv for TelemetryReport {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use report::*;
        if let Some(id) = &self.request_id {
            w.id(REQUEST_ID, id.as_bytes());
        }
        if self.changes.0 != 0 {
            w.uint(CHANGES, self.changes.0.into());
        }
        w.item(TELEMETRY, &self.telemetry)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use report::*;
        let (mut id, mut changes, mut telemetry) =
            (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                CHANGES => changes.set(&f, f.nonzero_u32().map(TelemetryChangeSet))?,
                TELEMETRY => telemetry.set(&f, f.item())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.get(),
            changes: changes.get().unwrap_or_default(),
            telemetry: telemetry.required(TELEMETRY, r)?,
        })
    }
}
