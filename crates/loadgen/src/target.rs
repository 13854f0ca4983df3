//! Target URLs, restricted to loopback: 127.0.0.0/8, ::1 or `localhost`.

use anyhow::{Context, Result, bail};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A validated loopback endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as given (used for the request line and `Host` header).
    pub(crate) url: String,
    /// Where to connect: `localhost` is pinned to 127.0.0.1, no resolver involved.
    pub(crate) addr: SocketAddr,
}

impl Target {
    /// Parses `url`, accepting only the given schemes and loopback hosts.
    pub(crate) fn parse(url: &str, schemes: &[&str]) -> Result<Target> {
        let parsed = Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        if !schemes.contains(&parsed.scheme()) {
            bail!("URL {url:?}: scheme must be one of {schemes:?}");
        }
        let host = parsed
            .host_str()
            .with_context(|| format!("URL {url:?} has no host"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = match bare.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) if bare.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Err(_) => {
                bail!("refusing non-loopback host {host:?} (only 127.0.0.0/8, ::1, localhost)")
            }
        };
        if !is_loopback(ip) {
            bail!("refusing non-loopback address {ip} (only 127.0.0.0/8, ::1, localhost)");
        }
        let port = parsed.port_or_known_default().context("URL has no port")?;
        Ok(Target {
            url: url.trim_end_matches('/').to_string(),
            addr: SocketAddr::new(ip, port),
        })
    }
}

/// Parses a comma-separated list of URLs (several nodes), each as
/// [`Target::parse`]; at least one.
pub(crate) fn parse_list(urls: &str, schemes: &[&str]) -> Result<Vec<Target>> {
    let list: Vec<Target> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| Target::parse(u, schemes))
        .collect::<Result<_>>()?;
    if list.is_empty() {
        bail!("no URL given");
    }
    Ok(list)
}

/// True for 127.0.0.0/8 and ::1 (IPv4-mapped loopback included).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.octets()[0] == 127)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_nodes() {
        let ws = ["ws"];
        let l = parse_list("ws://127.0.0.1:8000/c, ws://127.0.0.1:8001/c", &ws).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].addr.port(), 8001);
        assert!(parse_list("ws://127.0.0.1:8000/c,ws://10.0.0.1:8001/c", &ws).is_err());
        assert!(parse_list(" , ", &ws).is_err());
    }

    #[test]
    fn accepts_loopback_only() {
        let ws = ["ws"];
        assert!(Target::parse("ws://127.0.0.1:8000/connection/websocket", &ws).is_ok());
        assert!(Target::parse("ws://127.9.8.7:1/x", &ws).is_ok());
        assert!(Target::parse("ws://[::1]:8000/x", &ws).is_ok());
        assert!(Target::parse("ws://LocalHost:8000/x", &ws).is_ok());
        assert_eq!(
            Target::parse("ws://localhost/x", &ws).unwrap().addr,
            "127.0.0.1:80".parse().unwrap()
        );
        for bad in [
            "ws://10.0.0.1:8000/x",
            "ws://example.com/x",
            "ws://[::2]:1/x",
            "ws://128.0.0.1/x",
            "ws://0.0.0.0/x",
        ] {
            assert!(Target::parse(bad, &ws).is_err(), "{bad}");
        }
        assert!(Target::parse("http://127.0.0.1/x", &ws).is_err());
        assert!(Target::parse("ws://localhost.example.com/x", &ws).is_err());
    }
}
