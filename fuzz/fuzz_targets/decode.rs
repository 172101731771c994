//! Image decoding with limits: any bytes must give an image or a typed error, never a panic,
//! and never an image over the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_core::{DecodeLimits, decode, probe};

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast and make the limit checks reachable.
    let limits = DecodeLimits { max_pixels: 4_000_000, max_side: 4096, max_alloc_bytes: 256 << 20 };
    let probed = probe(data, &limits);
    if let Ok(decoded) = decode(data, &limits) {
        let (w, h) = decoded.image.dimensions();
        assert!(u64::from(w) * u64::from(h) <= limits.max_pixels);
        assert!(w <= limits.max_side && h <= limits.max_side);
        let info = probed.expect("what decodes must also probe");
        assert_eq!((info.width, info.height), (w, h));
    }
});
