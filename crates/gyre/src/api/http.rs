//! HTTP transport of the server API (protocol.md §5.1, §5.2): per-method
//! `POST /api/<method>` and legacy `POST /api`, API key checks, and the
//! two error modes. Only parsing, auth and error mapping live here; the
//! work is in [`super::Executor`].

use super::{ApiError, Executor, canonical_method};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use serde_json::value::RawValue;
use subtle::ConstantTimeEq;

/// State of the API routes.
#[derive(Clone)]
pub struct ApiState {
    /// Executor.
    pub exec: Executor,
    /// Required key (empty = every call refused, unless insecure).
    pub key: String,
    /// No key check.
    pub insecure: bool,
    /// Default error mode is `transport`.
    pub transport_errors: bool,
    /// Cancelled at shutdown: legacy API answers 503 then.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// `http_server.read_timeout`: time for the body to arrive after the headers.
    pub read_timeout: std::time::Duration,
}

/// Largest request body the API reads (Centrifugo reads without a cap and
/// relies on its 30 s read timeout alone; Gyre also bounds the memory one
/// request can pin). Larger bodies are answered 413.
pub const MAX_BODY_BYTES: usize = 2 << 20;

/// Reads a request body, called only after the API key was accepted, so a
/// request without credentials costs nothing beyond its headers. A body
/// that does not arrive within `read_timeout` is answered 500, as
/// Centrifugo's handlers answer a failed body read (its `ReadTimeout`),
/// and the connection is closed.
async fn read_body(st: &ApiState, body: Body) -> Result<Bytes, Response> {
    // A declared length over the cap is refused before waiting for any of it.
    if http_body::Body::size_hint(&body).lower() > MAX_BODY_BYTES as u64 {
        return Err(close_after(StatusCode::PAYLOAD_TOO_LARGE));
    }
    match tokio::time::timeout(st.read_timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(close_after(StatusCode::PAYLOAD_TOO_LARGE))
            } else {
                tracing::debug!(error = %e, "API request body could not be read");
                Err(close_after(StatusCode::INTERNAL_SERVER_ERROR))
            }
        }
        Err(_) => {
            crate::metrics::Metrics::inc(&st.exec.node().metrics().http_body_timeouts);
            tracing::debug!("API request body did not arrive within http_server.read_timeout");
            Err(close_after(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// An empty response with `status` that ends the connection: the rest of
/// the body is unread, so the connection cannot carry another request.
fn close_after(status: StatusCode) -> Response {
    (status, [(header::CONNECTION, "close")]).into_response()
}

/// Centrifugo's API key check (its `APIKeyAuth` middleware), on the
/// headers alone: a non-empty `X-API-Key` is the key offered (an empty one
/// counts as absent), else `Authorization: apikey <key>`; if that fails and
/// there is a query string, `?api_key=` is tried too. Every comparison is
/// constant-time, so response timing tells nothing about the key.
fn authorized(st: &ApiState, headers: &HeaderMap, query: Option<&str>) -> bool {
    if st.insecure {
        return true;
    }
    if st.key.is_empty() {
        return false;
    }
    let matches = |offered: &[u8]| bool::from(offered.ct_eq(st.key.as_bytes()));
    let header_ok = match headers.get("x-api-key").filter(|v| !v.is_empty()) {
        Some(v) => matches(v.as_bytes()),
        None => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let mut parts = v.split(' ').filter(|p| !p.is_empty());
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(scheme), Some(k), None) if scheme.eq_ignore_ascii_case("apikey") => {
                        Some(matches(k.as_bytes()))
                    }
                    _ => None,
                }
            })
            .unwrap_or(false),
    };
    if header_ok {
        return true;
    }
    query.filter(|q| !q.is_empty()).is_some_and(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("api_key="))
            .and_then(percent_decode)
            .is_some_and(|k| matches(k.as_bytes()))
    })
}

/// Decodes a query-string value (`%XX` escapes and `+` for space).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn bad_request() -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Bad Request\n",
    )
        .into_response()
}

fn transport_mode(st: &ApiState, headers: &HeaderMap) -> bool {
    match headers
        .get("x-centrifugo-error-mode")
        .and_then(|v| v.to_str().ok())
    {
        Some(m) => m.eq_ignore_ascii_case("transport"),
        None => st.transport_errors,
    }
}

/// `POST /api/<method>`.
pub async fn per_method(
    State(st): State<ApiState>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorized(&st, &headers, query.as_deref()) {
        return close_after(StatusCode::UNAUTHORIZED);
    }
    let Some(method) = canonical_method(&Value::String(method)) else {
        return close_after(StatusCode::NOT_FOUND);
    };
    let body = match read_body(&st, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Parse only as far as "is this one JSON object": the method reads its
    // params from these bytes, so payloads reach subscribers unchanged.
    let params: &RawValue = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(_) => return bad_request(),
    };
    if !params.get().starts_with('{') {
        return bad_request();
    }
    let result = st.exec.call(method, params).await;
    match result {
        // A body that is not the method's params: 400, as Centrifugo's
        // generated per-method handlers answer a decode error.
        Err(e) if e.decode => bad_request(),
        // batch answers at the top level, not inside `result` (§5.4).
        Ok(v) if method == "batch" => json_response(StatusCode::OK, v.to_json().into_bytes()),
        Ok(v) => json_response(
            StatusCode::OK,
            format!("{{\"result\":{}}}", v.to_json()).into_bytes(),
        ),
        Err(e) => error_response(&e, transport_mode(&st, &headers)),
    }
}

fn error_response(e: &ApiError, transport: bool) -> Response {
    if transport {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, serde_json::to_vec(e).unwrap_or_default())
    } else {
        json_response(
            StatusCode::OK,
            serde_json::to_vec(&serde_json::json!({"error": e})).unwrap_or_default(),
        )
    }
}

/// Legacy `POST /api`: newline-delimited `{"method","params","id"?}` commands.
pub async fn legacy(
    State(st): State<ApiState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorized(&st, &headers, query.as_deref()) {
        return close_after(StatusCode::UNAUTHORIZED);
    }
    if st.shutdown.is_cancelled() {
        return close_after(StatusCode::SERVICE_UNAVAILABLE);
    }
    let body = match read_body(&st, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    #[derive(serde::Deserialize)]
    struct Cmd {
        #[serde(default)]
        id: Option<Value>,
        method: Value,
        #[serde(default)]
        params: Option<Box<RawValue>>,
    }
    let mut cmds = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let Ok(cmd) = serde_json::from_slice::<Cmd>(line) else {
            return bad_request();
        };
        // An unknown method name fails decoding in Centrifugo: the whole request is a 400.
        let Some(method) = canonical_method(&cmd.method) else {
            return bad_request();
        };
        cmds.push((cmd.id, method, cmd.params));
    }
    if cmds.is_empty() {
        return bad_request();
    }
    let empty = RawValue::from_string("{}".into()).expect("valid JSON");
    let mut out = String::new();
    for (i, (id, method, params)) in cmds.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push('{');
        if let Some(id) = id.filter(|v| !v.is_null()) {
            out.push_str(&format!("\"id\":{id},"));
        }
        match st
            .exec
            .call(method, params.as_deref().unwrap_or(&empty))
            .await
        {
            Ok(v) => out.push_str(&format!("\"result\":{}", v.to_json())),
            Err(e) => out.push_str(&format!(
                "\"error\":{}",
                serde_json::to_string(&e).unwrap_or_default()
            )),
        }
        out.push('}');
    }
    json_response(StatusCode::OK, out.into_bytes())
}
