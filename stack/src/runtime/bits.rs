//! The readiness bits of the lock-free board (`watch.rs`) that handles and pollers read:
//! a leaf module, so the board and the stream rings (`stream.rs`), which both use them,
//! do not import each other.

/// `recv`/`accept` would not block.
pub const READABLE: u8 = 1;
/// `send` would not block (or a connect finished).
pub const WRITABLE: u8 = 2;
/// An error is pending.
pub const ERROR: u8 = 4;
/// Closed both ways, or the socket is gone.
pub const HANGUP: u8 = 8;
