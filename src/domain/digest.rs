//! Hashes for reconciliation. Each order row stores a fixed 31-bit hash of
//! its id; the digest of an id range is computed in SQL from it and the live
//! version columns (see `storage::digests`), so it cannot go stale.

/// FNV-1a, 64-bit: tiny, stable across platforms and versions of Rust.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The id hash stored with every order: in `[0, 2^31)`, so that sums of
/// per-row digests over billions of rows still fit an `i64`.
pub fn id_hash(id: &str) -> i64 {
    // Final avalanche (from splitmix64) so similar ids spread out.
    let mut z = fnv1a(id.as_bytes());
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 33) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_bounded() {
        let id = "01937a6e-0000-7000-8000-000000000001";
        assert_eq!(id_hash(id), id_hash(id));
        assert_ne!(id_hash(id), id_hash("01937a6e-0000-7000-8000-000000000002"));
        for i in 0..1000 {
            let h = id_hash(&format!("{i:08x}-0000-7000-8000-000000000000"));
            assert!((0..(1i64 << 31)).contains(&h));
        }
        // Pinned: stored hashes must never change meaning between releases.
        assert_eq!(id_hash("01937a6e-0000-7000-8000-000000000001"), PINNED);
    }

    const PINNED: i64 = 125_723_508;
}
