//! Where a terminal role can be told to fail: the steps of a money command, named once for the
//! simulator and every protocol's terminal role (fault tests, `posbridge-sim --fault`).

use std::fmt;
use std::str::FromStr;

/// A step of a money command on the terminal's side where a fault can strike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// The command has arrived and the terminal has started on it (waiting for the card).
    AfterRequest,
    /// The card has been read.
    AfterCardRead,
    /// The outcome is decided and stored on the terminal, but not yet sent.
    BeforeResult,
    /// The result has been sent.
    AfterResult,
}

impl FaultPoint {
    /// Every step, in the order a command passes them.
    pub const ALL: [Self; 4] = [
        Self::AfterRequest,
        Self::AfterCardRead,
        Self::BeforeResult,
        Self::AfterResult,
    ];

    /// Its name: `after-request`, `after-card-read`, `before-result`, `after-result`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AfterRequest => "after-request",
            Self::AfterCardRead => "after-card-read",
            Self::BeforeResult => "before-result",
            Self::AfterResult => "after-result",
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`FaultPoint`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFaultPoint(pub String);

impl fmt::Display for UnknownFaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown step {:?}: after-request, after-card-read, before-result or after-result",
            self.0
        )
    }
}

impl std::error::Error for UnknownFaultPoint {}

impl FromStr for FaultPoint {
    type Err = UnknownFaultPoint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownFaultPoint(s.to_string()))
    }
}
