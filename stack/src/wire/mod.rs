//! Wire formats: zero-copy `Packet<T>` views and owned `Repr`s with `parse` / `emit`.
//!
//! Every header follows the smoltcp shape: a `mod field` of byte ranges, a
//! `new_checked` that validates lengths once so accessors never panic, setters for
//! `T: AsMut<[u8]>`, and a `Repr` that parses from and emits into a view.

pub mod tcp;

pub use tcp::{SackBlocks, TcpFlags, TcpOptions, TcpRepr};
