//! The simulated terminal as a device: battery, power, paper and the acquirer link, reported as
//! protocol 1.1 telemetry and changed by every money command it runs.

use posbridge_session::{SharedTelemetry, TelemetryBoard};
use posbridge_wire::{AcquirerLink, PaperState, PowerSource, Telemetry};

/// What the simulated device is like and how it wears (scenario section `[device]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    /// Battery charge at start, in percent; `None`: no battery (mains only).
    pub battery: Option<u8>,
    /// Charge each money command uses, in percent (on battery power only).
    pub battery_drain: u8,
    /// The power source at start.
    pub power: PowerSource,
    /// Paper for this many receipts at start; `None`: no printer.
    pub paper: Option<u32>,
    /// Paper counts as low from this many receipts left.
    pub paper_low: u32,
    /// The acquirer becomes unreachable after this many money commands ...
    pub offline_after: Option<u32>,
    /// ... for this many (then it comes back, and payments stored offline are forwarded).
    pub offline_for: u32,
    /// The payment app's version reported.
    pub app_version: String,
    /// The publisher whose signed software updates the terminal installs (none: every update
    /// is refused as untrusted).
    pub update_key: Option<posbridge_crypto::PublicKey>,
    /// Installing an update fails (the old version stays): the update that goes wrong.
    pub update_fails: bool,
}

impl Default for DeviceProfile {
    /// A portable terminal on battery at 87 % that does not drain, with paper for 500
    /// receipts, always online.
    fn default() -> Self {
        Self {
            battery: Some(87),
            battery_drain: 0,
            power: PowerSource::Battery,
            paper: Some(500),
            paper_low: 50,
            offline_after: None,
            offline_for: 0,
            app_version: concat!("posbridge-sim ", env!("CARGO_PKG_VERSION")).into(),
            update_key: None,
            update_fails: false,
        }
    }
}

/// The device's state, kept on the telemetry board the terminal's sessions read.
pub(crate) struct Device {
    profile: DeviceProfile,
    board: SharedTelemetry,
    paper_left: Option<u32>,
    commands: u32,
}

impl Device {
    pub(crate) fn new(profile: DeviceProfile, firmware: String) -> Self {
        let mut device = Self {
            board: TelemetryBoard::shared(Telemetry::default()),
            paper_left: profile.paper,
            profile,
            commands: 0,
        };
        let telemetry = Telemetry {
            battery_percent: device.profile.battery.map(|b| b.min(100)),
            charging: device.profile.battery.is_some_and(|b| b < 100)
                && device.profile.power != PowerSource::Battery,
            power: Some(device.profile.power),
            firmware: Some(firmware),
            app_version: Some(device.profile.app_version.clone()),
            paper: device.paper_state(),
            acquirer: device.acquirer(),
            stored_offline: 0,
        };
        device.board = TelemetryBoard::shared(telemetry);
        device
    }

    fn board(&self) -> std::sync::MutexGuard<'_, TelemetryBoard> {
        self.board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn shared(&self) -> SharedTelemetry {
        self.board.clone()
    }

    #[cfg(test)]
    fn telemetry(&self) -> Telemetry {
        self.board().current().clone()
    }

    fn paper_state(&self) -> Option<PaperState> {
        self.paper_left.map(|left| match left {
            0 => PaperState::Out,
            l if l <= self.profile.paper_low => PaperState::Low,
            _ => PaperState::Ok,
        })
    }

    fn acquirer(&self) -> AcquirerLink {
        match self.profile.offline_after {
            Some(after)
                if self.commands >= after && self.commands - after < self.profile.offline_for =>
            {
                AcquirerLink::Offline
            }
            _ => AcquirerLink::Online,
        }
    }

    /// Whether the acquirer cannot be reached now.
    pub(crate) fn offline(&self) -> bool {
        self.board().current().acquirer == AcquirerLink::Offline
    }

    /// A money command ended: the battery drains, an approval prints a receipt, one approved
    /// offline is stored for forwarding; then the acquirer may go away or come back (what was
    /// stored is forwarded when it does).
    pub(crate) fn command_done(&mut self, approved: bool) {
        self.commands += 1;
        if approved && let Some(left) = &mut self.paper_left {
            *left = left.saturating_sub(1);
        }
        let paper = self.paper_state();
        let acquirer = self.acquirer();
        let (drain, power) = (self.profile.battery_drain, self.profile.power);
        self.board().update(|t| {
            if power == PowerSource::Battery
                && let Some(b) = &mut t.battery_percent
            {
                *b = b.saturating_sub(drain);
            }
            t.paper = paper;
            t.acquirer = acquirer;
        });
    }

    /// Installs software `version`: reported from now on (a push saying the software changed).
    /// `false` when installing fails (the profile's `update_fails`): the old version stays.
    pub(crate) fn install(&mut self, version: &str) -> bool {
        if self.profile.update_fails {
            return false;
        }
        self.board()
            .update(|t| t.firmware = Some(version.to_string()));
        true
    }

    /// How many payments are stored offline, not forwarded yet (the simulator's list of them
    /// is the one source: it reports its length here whenever it changes).
    pub(crate) fn set_stored(&mut self, count: usize) {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        self.board().update(|t| t.stored_offline = count);
    }

    /// Paper was refilled (the operator opened the printer).
    pub(crate) fn refill_paper(&mut self) {
        if self.profile.paper.is_some() {
            self.paper_left = self.profile.paper;
            let paper = self.paper_state();
            self.board().update(|t| t.paper = paper);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_wire::TelemetryChange;

    #[test]
    fn commands_drain_the_battery_use_paper_and_cross_the_acquirer_outage() {
        let mut d = Device::new(
            DeviceProfile {
                battery: Some(20),
                battery_drain: 3,
                paper: Some(3),
                paper_low: 1,
                offline_after: Some(1),
                offline_for: 2,
                ..DeviceProfile::default()
            },
            "1.0".into(),
        );
        let board = d.shared();
        assert_eq!(d.telemetry().paper, Some(PaperState::Ok));
        d.command_done(true);
        let t = d.telemetry();
        assert_eq!(t.battery_percent, Some(17));
        assert_eq!(t.acquirer, AcquirerLink::Offline, "gone after one command");
        d.command_done(true);
        d.set_stored(1);
        let t = d.telemetry();
        assert_eq!(
            (t.battery_percent, t.paper, t.stored_offline),
            (Some(14), Some(PaperState::Low), 1)
        );
        let (changes, seen) = board.lock().unwrap().changes_since(0).unwrap();
        assert!(
            changes.contains(TelemetryChange::BatteryLow),
            "17 → 14 crossed 15"
        );
        assert!(changes.contains(TelemetryChange::Offline));
        d.command_done(true);
        let t = d.telemetry();
        assert_eq!(t.acquirer, AcquirerLink::Online, "back after two");
        d.set_stored(0);
        assert_eq!(
            d.telemetry().stored_offline,
            0,
            "forwarded when it came back"
        );
        assert_eq!(t.paper, Some(PaperState::Out));
        let (changes, _) = board.lock().unwrap().changes_since(seen).unwrap();
        assert!(
            !changes.contains(TelemetryChange::BatteryLow),
            "no second crossing"
        );
        for c in [
            TelemetryChange::PaperOut,
            TelemetryChange::Online,
            TelemetryChange::StoredOffline,
        ] {
            assert!(changes.contains(c), "{c:?} in {changes:?}");
        }
        d.refill_paper();
        assert_eq!(d.telemetry().paper, Some(PaperState::Ok));
    }

    #[test]
    fn on_mains_the_battery_does_not_drain() {
        let mut d = Device::new(
            DeviceProfile {
                battery: Some(50),
                battery_drain: 10,
                power: PowerSource::Mains,
                ..DeviceProfile::default()
            },
            "1.0".into(),
        );
        assert!(d.telemetry().charging);
        d.command_done(true);
        assert_eq!(d.telemetry().battery_percent, Some(50));
    }
}
