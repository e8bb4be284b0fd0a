//! Criterion benchmark: checksum (being written).
fn main() {}
