//! The `--ws-url` and `--rest-url` bases, and the combined-stream request path built from the
//! symbols and streams.
//!
//! Only what the handler needs: a scheme, a host (DNS name, IPv4, or bracketed IPv6) and an
//! optional port; no userinfo, query or fragment, and a path is refused (the handler appends its
//! own), so a mistyped URL is a one-line configuration error, never a request to a wrong place.

use crate::binance::StreamKind;

/// A parsed base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `wss`/`https` (true) or `ws`/`http` (false).
    pub tls: bool,
    /// Host as written, IPv6 literals in brackets (`[::1]`): what goes in `Host:`.
    pub host: String,
    /// Port (the scheme's default when none was given).
    pub port: u16,
}

impl BaseUrl {
    /// The host without IPv6 brackets: for DNS, SocketAddr parsing and TLS server names.
    pub fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// `host:port` for log lines.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Parses a websocket base: `wss://host[:port]` or `ws://host[:port]`, an optional trailing `/`.
pub fn parse_ws_base(s: &str) -> Result<BaseUrl, String> {
    parse_base(s, "--ws-url", &[("wss", true, 443), ("ws", false, 80)])
}

/// Parses a REST base: `https://host[:port]` or `http://host[:port]`, an optional trailing `/`.
pub fn parse_rest_base(s: &str) -> Result<BaseUrl, String> {
    parse_base(s, "--rest-url", &[("https", true, 443), ("http", false, 80)])
}

fn parse_base(s: &str, flag: &str, schemes: &[(&str, bool, u16)]) -> Result<BaseUrl, String> {
    let expected = || schemes.iter().map(|(n, ..)| format!("{n}://HOST:PORT")).collect::<Vec<_>>().join(" or ");
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!("{flag} '{s}': expected {}", expected()));
    };
    let Some(&(_, tls, default_port)) = schemes.iter().find(|(n, ..)| n.eq_ignore_ascii_case(scheme)) else {
        return Err(format!("{flag} '{s}': unsupported scheme '{scheme}' (expected {})", expected()));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(format!(
            "{flag} '{s}': give the base only (the handler appends the path itself), e.g. {}",
            expected()
        ));
    }
    if rest.contains('@') {
        return Err(format!("{flag} '{s}': credentials in the URL are not supported"));
    }
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let Some((h, tail)) = after.split_once(']') else {
            return Err(format!("{flag} '{s}': unterminated IPv6 literal"));
        };
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{flag} '{s}': '{h}' is not an IPv6 address"));
        }
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or_else(|| format!("{flag} '{s}': junk after the IPv6 literal"))?),
        };
        (format!("[{h}]"), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (rest.to_owned(), None),
        }
    };
    let valid_host = !host.is_empty()
        && (host.starts_with('[') || host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if !valid_host {
        return Err(format!("{flag} '{s}': invalid host '{host}'"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{flag} '{s}': invalid port '{p}'")),
        },
    };
    Ok(BaseUrl { tls, host, port })
}

/// Parses `--streams`: any of `depth,trade,aggTrade,bookTicker` (case-insensitive), in order,
/// duplicates removed.
pub fn parse_streams(items: &[String]) -> Result<Vec<StreamKind>, String> {
    let mut out = Vec::new();
    for it in items {
        let k = match it.to_ascii_lowercase().as_str() {
            "depth" => StreamKind::Depth,
            "trade" => StreamKind::Trade,
            "aggtrade" => StreamKind::AggTrade,
            "bookticker" => StreamKind::BookTicker,
            _ => {
                return Err(format!(
                    "--streams: unknown stream '{it}' (expected any of depth,trade,aggTrade,bookTicker)"
                ))
            }
        };
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err("--streams: no stream given".into());
    }
    Ok(out)
}

/// Checks a `--symbol` value: letters and digits only (it goes into a URL and a stream name).
pub fn check_symbol(s: &str) -> Result<(), String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("--symbol: invalid symbol '{s}' (letters and digits only)"));
    }
    Ok(())
}

/// The combined-stream request target:
/// `/stream?streams=btcusdt@depth@100ms/btcusdt@trade&timeUnit=MICROSECOND`.
pub fn stream_path(symbols: &[String], kinds: &[StreamKind]) -> String {
    let mut p = String::from("/stream?streams=");
    let mut first = true;
    for s in symbols {
        for k in kinds {
            if !first {
                p.push('/');
            }
            first = false;
            p.push_str(&s.to_ascii_lowercase());
            p.push('@');
            p.push_str(k.suffix());
        }
    }
    p.push_str("&timeUnit=MICROSECOND");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_bases() {
        let b = parse_ws_base("wss://stream.binance.com:9443").unwrap();
        assert_eq!(b, BaseUrl { tls: true, host: "stream.binance.com".into(), port: 9443 });
        assert_eq!(parse_ws_base("ws://127.0.0.1:8080/").unwrap().port, 8080);
        assert_eq!(parse_ws_base("WSS://data-stream.binance.vision").unwrap().port, 443);
        assert_eq!(parse_ws_base("ws://localhost").unwrap().port, 80);
        let v6 = parse_ws_base("ws://[::1]:9000").unwrap();
        assert_eq!((v6.host.as_str(), v6.bare_host(), v6.port), ("[::1]", "::1", 9000));
        assert_eq!(v6.authority(), "[::1]:9000");
        for bad in [
            "stream.binance.com:9443",
            "https://stream.binance.com",
            "wss://stream.binance.com:9443/ws",
            "wss://stream.binance.com:9443/stream?streams=x",
            "wss://:9443",
            "wss://host:0",
            "wss://host:99999",
            "wss://host:abc",
            "wss://us er@host",
            "ws://[::1",
            "ws://[zz]:1",
            "ws://ho st:1",
        ] {
            let e = parse_ws_base(bad).unwrap_err();
            assert!(e.starts_with("--ws-url '") && !e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn rest_bases() {
        assert_eq!(
            parse_rest_base("https://api.binance.com").unwrap(),
            BaseUrl { tls: true, host: "api.binance.com".into(), port: 443 }
        );
        assert_eq!(parse_rest_base("http://127.0.0.1:1234/").unwrap().port, 1234);
        assert!(parse_rest_base("wss://api.binance.com").unwrap_err().contains("unsupported scheme"));
        assert!(parse_rest_base("https://api.binance.com/api/v3").unwrap_err().contains("base only"));
    }

    #[test]
    fn streams_and_path() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let k = parse_streams(&s(&["depth", "TRADE", "aggTrade", "bookticker", "depth"])).unwrap();
        assert_eq!(k, vec![StreamKind::Depth, StreamKind::Trade, StreamKind::AggTrade, StreamKind::BookTicker]);
        assert!(parse_streams(&s(&["kline"])).unwrap_err().contains("unknown stream 'kline'"));
        assert!(parse_streams(&[]).is_err());
        assert_eq!(
            stream_path(&s(&["BTCUSDT", "ethusdt"]), &[StreamKind::Depth, StreamKind::Trade]),
            "/stream?streams=btcusdt@depth@100ms/btcusdt@trade/ethusdt@depth@100ms/ethusdt@trade&timeUnit=MICROSECOND"
        );
        assert!(check_symbol("BTCUSDT").is_ok());
        assert!(check_symbol("btc/usdt").is_err());
        assert!(check_symbol("").is_err());
    }
}
