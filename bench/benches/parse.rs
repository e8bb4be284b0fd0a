//! Criterion benchmark: parse (being written).
fn main() {}
