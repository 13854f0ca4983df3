//! JWT algorithms and key sources (protocol.md §3): RSA, ECDSA, JWKS,
//! audience/issuer, user_id_claim.

use crate::helpers::*;
use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

fn key(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn sign(alg: Algorithm, k: &EncodingKey, claims: Value, kid: Option<&str>) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(String::from);
    encode(&h, &claims, k).unwrap()
}

#[tokio::test]
async fn rsa_and_ecdsa_tokens() {
    let s = server(json!({"client": {"token": {"rsa_public_key": key("rsa_public.pem"), "ecdsa_public_key": key("ec256_public.pem")}}})).await;
    let rsa = EncodingKey::from_rsa_pem(key("rsa_private.pem").as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(key("ec256_private.pem").as_bytes()).unwrap();
    for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
        let (_ws, c) = Ws::connected(&s, &sign(alg, &rsa, json!({"sub": "r"}), None)).await;
        assert!(c["client"].is_string());
    }
    Ws::connected(&s, &sign(Algorithm::ES256, &ec, json!({"sub": "e"}), None)).await;
    // HS256 still works with the configured secret; a key of the wrong family does not.
    Ws::connected(&s, &token(json!({"sub": "h"}))).await;
    let other = EncodingKey::from_ec_pem(key("ec384_private.pem").as_bytes()).unwrap();
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": sign(Algorithm::ES384, &other, json!({"sub": "x"}), None)}})).await;
    assert_eq!(ws.expect_close().await.0, 3500);
}

#[tokio::test]
async fn jwks_endpoint_by_kid() {
    let rsa = EncodingKey::from_rsa_pem(key("rsa_private.pem").as_bytes()).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let set = json!({"keys": [jwk]});
    let app = Router::new().route(
        "/jwks",
        get(move || {
            let set = set.clone();
            async move { axum::Json(set) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let s = server(json!({"client": {"token": {"hmac_secret_key": "", "jwks_public_endpoint": format!("http://{addr}/jwks")}}})).await;
    Ws::connected(
        &s,
        &sign(Algorithm::RS256, &rsa, json!({"sub": "j"}), Some("k1")),
    )
    .await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": sign(Algorithm::RS256, &rsa, json!({"sub": "j"}), Some("unknown"))}})).await;
    assert_eq!(ws.expect_close().await.0, 3500);
    // With JWKS configured, HMAC tokens are not accepted.
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "j"}))}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 3500);
}

#[tokio::test]
async fn audience_issuer_and_user_id_claim() {
    let s = server(json!({"client": {"token": {"audience": "app", "issuer": "me", "user_id_claim": "user.id"}}})).await;
    let (_ws, _) = Ws::connected(
        &s,
        &token(json!({"aud": ["x", "app"], "iss": "me", "user": {"id": "77"}})),
    )
    .await;
    let conns = Api::new(&s)
        .call("connections", json!({"user": "77"}))
        .await;
    assert_eq!(
        conns["result"]["connections"].as_object().unwrap().len(),
        1,
        "{conns}"
    );
    for bad in [
        json!({"aud": "other", "iss": "me"}),
        json!({"aud": "app", "iss": "you"}),
        json!({"iss": "me"}),
    ] {
        let mut ws = Ws::connect(&s).await;
        ws.send_json(json!({"id": 1, "connect": {"token": token(bad.clone())}}))
            .await;
        assert_eq!(ws.expect_close().await.0, 3500, "{bad}");
    }
}

#[tokio::test]
async fn nbf_in_future_is_token_expired_and_anonymous_tokens() {
    let s = server(json!({"client": {"disallow_anonymous_connection_tokens": true}})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(
        json!({"id": 1, "connect": {"token": token(json!({"sub": "1", "nbf": now() + 100}))}}),
    )
    .await;
    assert_eq!(ws.recv().await["error"]["code"], 109);
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": ""}))}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 3507);
}
