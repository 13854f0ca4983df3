//! Measures the resident memory one protective entry costs: loads 1 million
//! revoked jtis (UUIDs, as most issuers make them), 1 million revoked
//! non-UUID ids and 1 million blocked users, and prints the RSS growth per
//! entry. Run: `cargo run --release -p gyre --example protect_memory`.

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn measure(label: &str, n: u32, f: impl Fn(&gyre::protect::Protect, u32)) {
    let p = gyre::protect::Protect::new();
    let before = rss_kib();
    for i in 0..n {
        f(&p, i);
    }
    let after = rss_kib();
    let per = (after.saturating_sub(before) as f64 * 1024.0) / n as f64;
    println!("{label:<40} {n:>9} entries  {per:>7.1} bytes/entry");
    std::hint::black_box(&p);
}

fn main() {
    let now = gyre::auth::now();
    let exp = now + 86_400;
    let n = 1_000_000;
    // Each kind is measured in a fresh process, so memory freed by one
    // measurement cannot hide the cost of the next.
    match std::env::args().nth(1).as_deref() {
        Some("uuid") => measure("revoked jti (UUID)", n, |p, i| {
            p.revoke(
                &uuid::Uuid::from_u128(
                    (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                )
                .hyphenated()
                .to_string(),
                exp,
                None,
                now,
            )
        }),
        Some("short") => measure("revoked jti (16-char string)", n, |p, i| {
            p.revoke(&format!("tok-{i:012}"), exp, None, now)
        }),
        Some("user") => measure("blocked user (10-char id)", n, |p, i| {
            p.block(&format!("u{i:09}"), exp, None, now)
        }),
        _ => {
            let me = std::env::current_exe().expect("own path");
            for kind in ["uuid", "short", "user"] {
                let _ = std::process::Command::new(&me).arg(kind).status();
            }
        }
    }
}
