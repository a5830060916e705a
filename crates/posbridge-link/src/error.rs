//! The error every link returns.

use std::fmt;
use std::io;

/// Why a link operation failed. Every variant says what to do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// The peer closed the link in an orderly way, or [`close`](crate::LinkExt::close) was
    /// called. Reconnect to go on.
    Closed,
    /// The connection broke (reset, cable pulled, device gone, peer went out of range).
    /// Reconnect; money commands in flight must be recovered by status query before retrying.
    Disconnected(io::Error),
    /// A packet link was given more than one packet's worth of bytes.
    PacketTooLarge {
        /// What was given.
        len: usize,
        /// The link's MTU.
        mtu: usize,
    },
    /// A fault injector cut the link on purpose (tests only).
    Cut,
    /// Any other IO error from the transport.
    Io(io::Error),
}

impl LinkError {
    /// Whether the link is gone for good (reconnecting is the only way on).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::PacketTooLarge { .. })
    }

    /// Sorts an IO error from a transport: connection-breaking kinds become
    /// [`LinkError::Disconnected`], the rest [`LinkError::Io`].
    pub fn from_io(e: io::Error) -> Self {
        use io::ErrorKind as K;
        match e.kind() {
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::NotConnected
            | K::UnexpectedEof => Self::Disconnected(e),
            _ => Self::Io(e),
        }
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("link closed; reconnect to continue"),
            Self::Disconnected(e) => write!(
                f,
                "link lost ({e}); reconnect, and let recovery query in-flight payments before retrying them"
            ),
            Self::PacketTooLarge { len, mtu } => write!(
                f,
                "{len} bytes do not fit in one packet of this link (MTU {mtu}); segment them first"
            ),
            Self::Cut => f.write_str("link cut by the fault injector"),
            Self::Io(e) => write!(f, "link IO error: {e}"),
        }
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Disconnected(e) | Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        Self::from_io(e)
    }
}
