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

/// Why a `--ws-url` or `--rest-url` base was refused: always a configuration error (exit 2),
/// never retried. Its `Display` is one line naming the flag and the URL as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    /// The flag the URL came from (`--ws-url`, `--rest-url`).
    pub flag: &'static str,
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub kind: UrlErrorKind,
    expected: &'static str,
}

/// What is wrong with a base URL (see [`UrlError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlErrorKind {
    /// No `scheme://`.
    NoScheme,
    /// A scheme other than the two the flag takes.
    UnsupportedScheme(String),
    /// A path, query or fragment: the handler appends its own path.
    PathGiven,
    /// `user@host`.
    Credentials,
    /// `[` without `]`.
    UnterminatedIpv6,
    /// Between the brackets, not an IPv6 address.
    NotIpv6(String),
    /// Something other than `:port` after `]`.
    JunkAfterIpv6,
    /// Empty, or characters no host name has.
    InvalidHost(String),
    /// Not a number in 1..65535.
    InvalidPort(String),
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (flag, url, expected) = (self.flag, &self.url, self.expected);
        match &self.kind {
            UrlErrorKind::NoScheme => write!(f, "{flag} '{url}': expected {expected}"),
            UrlErrorKind::UnsupportedScheme(scheme) => {
                write!(f, "{flag} '{url}': unsupported scheme '{scheme}' (expected {expected})")
            }
            UrlErrorKind::PathGiven => {
                write!(f, "{flag} '{url}': give the base only (the handler appends the path itself), e.g. {expected}")
            }
            UrlErrorKind::Credentials => write!(f, "{flag} '{url}': credentials in the URL are not supported"),
            UrlErrorKind::UnterminatedIpv6 => write!(f, "{flag} '{url}': unterminated IPv6 literal"),
            UrlErrorKind::NotIpv6(h) => write!(f, "{flag} '{url}': '{h}' is not an IPv6 address"),
            UrlErrorKind::JunkAfterIpv6 => write!(f, "{flag} '{url}': junk after the IPv6 literal"),
            UrlErrorKind::InvalidHost(h) => write!(f, "{flag} '{url}': invalid host '{h}'"),
            UrlErrorKind::InvalidPort(p) => write!(f, "{flag} '{url}': invalid port '{p}'"),
        }
    }
}

impl std::error::Error for UrlError {}

/// The schemes one flag accepts: name, TLS, default port.
struct Schemes {
    flag: &'static str,
    expected: &'static str,
    list: [(&'static str, bool, u16); 2],
}

const WS: Schemes = Schemes {
    flag: "--ws-url",
    expected: "wss://HOST:PORT or ws://HOST:PORT",
    list: [("wss", true, 443), ("ws", false, 80)],
};
const REST: Schemes = Schemes {
    flag: "--rest-url",
    expected: "https://HOST:PORT or http://HOST:PORT",
    list: [("https", true, 443), ("http", false, 80)],
};

/// Parses a websocket base: `wss://host[:port]` or `ws://host[:port]`, an optional trailing `/`.
pub fn parse_ws_base(s: &str) -> Result<BaseUrl, UrlError> {
    parse_base(s, &WS)
}

/// Parses a REST base: `https://host[:port]` or `http://host[:port]`, an optional trailing `/`.
pub fn parse_rest_base(s: &str) -> Result<BaseUrl, UrlError> {
    parse_base(s, &REST)
}

fn parse_base(s: &str, schemes: &Schemes) -> Result<BaseUrl, UrlError> {
    let err = |kind| UrlError { flag: schemes.flag, url: s.to_owned(), kind, expected: schemes.expected };
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(err(UrlErrorKind::NoScheme));
    };
    let Some(&(_, tls, default_port)) = schemes.list.iter().find(|(n, ..)| n.eq_ignore_ascii_case(scheme)) else {
        return Err(err(UrlErrorKind::UnsupportedScheme(scheme.to_owned())));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(err(UrlErrorKind::PathGiven));
    }
    if rest.contains('@') {
        return Err(err(UrlErrorKind::Credentials));
    }
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let Some((h, tail)) = after.split_once(']') else {
            return Err(err(UrlErrorKind::UnterminatedIpv6));
        };
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(err(UrlErrorKind::NotIpv6(h.to_owned())));
        }
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or_else(|| err(UrlErrorKind::JunkAfterIpv6))?),
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
        return Err(err(UrlErrorKind::InvalidHost(host)));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(err(UrlErrorKind::InvalidPort(p.to_owned()))),
        },
    };
    Ok(BaseUrl { tls, host, port })
}

/// Why a `--symbol` or `--streams` value was refused: a configuration error (exit 2). Its
/// `Display` is one line naming the flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// Not one of `depth,trade,aggTrade,bookTicker`.
    UnknownStream(String),
    /// An empty item (`--streams ''`, `depth,,trade`).
    EmptyStream,
    /// No stream at all.
    NoStream,
    /// Characters other than letters and digits.
    InvalidSymbol(String),
    /// An empty item (`--symbol ''`, `btcusdt,,ethusdt`).
    EmptySymbol,
}

const STREAM_NAMES: &str = "depth,trade,aggTrade,bookTicker";

impl std::fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscriptionError::UnknownStream(s) => {
                write!(f, "--streams: unknown stream '{s}' (expected any of {STREAM_NAMES})")
            }
            SubscriptionError::EmptyStream => {
                write!(f, "--streams: empty stream name (expected any of {STREAM_NAMES})")
            }
            SubscriptionError::NoStream => f.write_str("--streams: no stream given"),
            SubscriptionError::InvalidSymbol(s) => {
                write!(f, "--symbol: invalid symbol '{s}' (letters and digits only)")
            }
            SubscriptionError::EmptySymbol => f.write_str("--symbol: empty symbol (letters and digits, e.g. btcusdt)"),
        }
    }
}

impl std::error::Error for SubscriptionError {}

/// Parses one `--streams` item: `depth`, `trade`, `aggTrade` or `bookTicker`, any case.
pub fn parse_stream(name: &str) -> Result<StreamKind, SubscriptionError> {
    match name.to_ascii_lowercase().as_str() {
        "" => Err(SubscriptionError::EmptyStream),
        "depth" => Ok(StreamKind::Depth),
        "trade" => Ok(StreamKind::Trade),
        "aggtrade" => Ok(StreamKind::AggTrade),
        "bookticker" => Ok(StreamKind::BookTicker),
        _ => Err(SubscriptionError::UnknownStream(name.to_owned())),
    }
}

/// Parses `--streams`: any of `depth,trade,aggTrade,bookTicker` (case-insensitive), in order,
/// duplicates removed.
pub fn parse_streams<S: AsRef<str>>(items: &[S]) -> Result<Vec<StreamKind>, SubscriptionError> {
    let mut out = Vec::new();
    for it in items {
        let k = parse_stream(it.as_ref())?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(SubscriptionError::NoStream);
    }
    Ok(out)
}

/// Checks a `--symbol` value: letters and digits only (it goes into a URL and a stream name).
pub fn check_symbol(s: &str) -> Result<(), SubscriptionError> {
    if s.is_empty() {
        return Err(SubscriptionError::EmptySymbol);
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SubscriptionError::InvalidSymbol(s.to_owned()));
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

/// [`stream_path`] for a venue: spot's as above; USDⓈ-M futures' on its path tier,
/// `/public/stream?streams=btcusdt@depth@100ms/btcusdt@trade` (no `timeUnit`: futures documents
/// none, its times are milliseconds).
pub(crate) fn venue_stream_path(
    venue: crate::venue::Venue,
    tier: Option<crate::venue::Tier>,
    symbols: &[String],
    kinds: &[StreamKind],
) -> String {
    let spot = stream_path(symbols, kinds);
    match venue {
        crate::venue::Venue::Spot => spot,
        crate::venue::Venue::UsdM => {
            let names = spot.trim_start_matches("/stream?streams=").trim_end_matches("&timeUnit=MICROSECOND");
            venue.stream_path(tier, names)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futures_stream_paths_are_on_their_tier() {
        use crate::venue::{Tier, Venue};
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            venue_stream_path(
                Venue::UsdM,
                Some(Tier::Public),
                &s(&["BTCUSDT", "ethusdt"]),
                &[StreamKind::Depth, StreamKind::BookTicker]
            ),
            "/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/ethusdt@depth@100ms/ethusdt@bookTicker"
        );
        assert_eq!(
            venue_stream_path(Venue::UsdM, Some(Tier::Market), &s(&["BTCUSDT"]), &[StreamKind::AggTrade]),
            "/market/stream?streams=btcusdt@aggTrade"
        );
        assert_eq!(
            venue_stream_path(Venue::Spot, None, &s(&["BTCUSDT"]), &[StreamKind::Trade]),
            stream_path(&s(&["BTCUSDT"]), &[StreamKind::Trade])
        );
    }

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
            let e = parse_ws_base(bad).unwrap_err().to_string();
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
        assert!(parse_rest_base("wss://api.binance.com").unwrap_err().to_string().contains("unsupported scheme"));
        assert!(parse_rest_base("https://api.binance.com/api/v3").unwrap_err().to_string().contains("base only"));
    }

    #[test]
    fn streams_and_path() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let k = parse_streams(&s(&["depth", "TRADE", "aggTrade", "bookticker", "depth"])).unwrap();
        assert_eq!(k, vec![StreamKind::Depth, StreamKind::Trade, StreamKind::AggTrade, StreamKind::BookTicker]);
        assert!(parse_streams(&s(&["kline"])).unwrap_err().to_string().contains("unknown stream 'kline'"));
        assert!(parse_streams::<&str>(&[]).is_err());
        assert_eq!(parse_streams(&[""]).unwrap_err(), SubscriptionError::EmptyStream);
        assert!(parse_streams(&[""]).unwrap_err().to_string().starts_with("--streams: "));
        assert_eq!(
            stream_path(&s(&["BTCUSDT", "ethusdt"]), &[StreamKind::Depth, StreamKind::Trade]),
            "/stream?streams=btcusdt@depth@100ms/btcusdt@trade/ethusdt@depth@100ms/ethusdt@trade&timeUnit=MICROSECOND"
        );
        assert!(check_symbol("BTCUSDT").is_ok());
        assert!(check_symbol("btc/usdt").is_err());
        assert!(check_symbol("").is_err());
        assert!(check_symbol("").unwrap_err().to_string().starts_with("--symbol: "));
    }
}
