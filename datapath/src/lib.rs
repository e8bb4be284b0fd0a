//! surge's device layer.
#![allow(unsafe_code)] // the device layer is one of the two crates allowed `unsafe` (DESIGN.md)
