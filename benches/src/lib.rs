//! Criterion benches live in `benches/benches/`; this library only holds what they share.

/// A fixed, realistic header template (block 100000) so benches hash the same bytes each run.
pub const BLOCK_100000_HEADER_HEX: &str = "0100000050120119172a610421a6c3011dd330d9df07b63616c2cc1f1cd00200000000006657a9252aacd5c0b2940996ecff952228c3067cc38d4885efb5a4ac4247e9f337221b4d4c86041b0f2b5710";
