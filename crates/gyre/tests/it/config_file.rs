//! The shipped example config must load and give a working server.

#[test]
fn example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config.example.json");
    let l = gyre::config::load(Some(std::path::Path::new(path)), &[], &[])
        .expect("example config loads");
    assert!(l.unknown.is_empty(), "{:?}", l.unknown);
    assert!(!l.config.client.token.hmac_secret_key.is_empty());
    assert!(!l.config.http_api.key.is_empty());
}
