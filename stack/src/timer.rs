//! The engine's timer wheel.
