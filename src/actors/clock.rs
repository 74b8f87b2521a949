//! Time helpers shared by every node's services (the wire layer takes time as an argument; the
//! actors read the clocks here).

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A random u64 for what needs a fresh number (Bitcoin ping nonces, version nonces).
pub fn random_u64() -> u64 {
    use bitcoin::secp256k1::rand::RngCore;
    bitcoin::secp256k1::rand::thread_rng().next_u64()
}
