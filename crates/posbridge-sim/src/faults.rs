//! Faults the simulator injects at named steps of a payment, to prove that recovery works.

use std::fmt;
use std::str::FromStr;

/// A step of a payment where a fault can strike (named once for the simulator and every
/// protocol's terminal role).
pub use posbridge_api::FaultPoint;

/// What happens there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAction {
    /// The terminal drops the connection (the payment goes on on the terminal).
    Drop,
    /// The terminal goes silent but keeps the connection open: a dead peer. Needs a handler that
    /// can silence the link ([`Simulator::set_fault_handler`](crate::Simulator::set_fault_handler);
    /// the binary has one).
    Silence,
    /// The terminal reboots: it stops at once and starts again from what it persisted. Needs a
    /// handler (the binary re-executes itself with its state directory).
    Reboot,
}

/// One fault: `action` at `at`, for the next `times` payments that reach that step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    /// Where.
    pub at: FaultPoint,
    /// What.
    pub action: FaultAction,
    /// How many times (each payment reaching `at` uses one).
    pub times: u32,
}

/// A fault description that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultParseError(pub String);

impl fmt::Display for FaultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected ACTION:POINT[:TIMES] with ACTION drop|silence|reboot and POINT after-request|after-card-read|before-result|after-result",
            self.0
        )
    }
}

impl std::error::Error for FaultParseError {}

impl FromStr for FaultAction {
    type Err = FaultParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "drop" => Self::Drop,
            "silence" => Self::Silence,
            "reboot" => Self::Reboot,
            _ => return Err(FaultParseError(format!("unknown action {s:?}"))),
        })
    }
}

impl FromStr for Fault {
    type Err = FaultParseError;
    /// `drop:before-result`, `reboot:after-card-read:2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let (Some(action), Some(at)) = (parts.next(), parts.next()) else {
            return Err(FaultParseError(s.to_string()));
        };
        let times = match parts.next() {
            None => 1,
            Some(n) => n
                .parse()
                .map_err(|_| FaultParseError(format!("{s}: times {n:?} is not a number")))?,
        };
        if parts.next().is_some() {
            return Err(FaultParseError(s.to_string()));
        }
        Ok(Self {
            at: at
                .parse()
                .map_err(|e: posbridge_api::UnknownFaultPoint| FaultParseError(e.to_string()))?,
            action: action.parse()?,
            times,
        })
    }
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Drop => "drop",
            Self::Silence => "silence",
            Self::Reboot => "reboot",
        })
    }
}
