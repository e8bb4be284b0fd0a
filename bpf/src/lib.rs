//! surge's XDP steering program and loader.
#![allow(unsafe_code)] // one of the two crates allowed `unsafe` (DESIGN.md)
