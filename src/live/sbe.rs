//! `--feed sbe`: Binance's SBE market-data streams (`stream-sbe.binance.com`), the API key their
//! handshake needs, the stream names `--streams` takes for them, and the JSON connection that
//! brings `aggTrade` alongside (SBE has no aggTrade stream).
//!
//! The key is a secret: [`ApiKey`] has no `Display`, its `Debug` prints `ApiKey(<redacted>)`, and
//! it is written in one place only, the `X-MBX-APIKEY` header of the SBE handshake
//! ([`crate::net::conn`]). Nothing else (logs, notices, errors, `--stats`, recordings, `--help`)
//! ever has it.

use std::path::Path;

use crate::binance::url::{BaseUrl, SubscriptionError};
use crate::binance::StreamKind;

/// Which wire the market data comes on (`--feed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feed {
    /// JSON text frames from `stream.binance.com` (the default).
    #[default]
    Json,
    /// SBE binary frames from `stream-sbe.binance.com` (needs an API key).
    Sbe,
}

impl Feed {
    /// The websocket base used when no `--ws-url` is given.
    pub fn default_ws(self) -> &'static str {
        match self {
            Feed::Json => "wss://stream.binance.com:9443",
            Feed::Sbe => "wss://stream-sbe.binance.com:9443",
        }
    }
}

impl std::fmt::Display for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Feed::Json => "json",
            Feed::Sbe => "sbe",
        })
    }
}

/// `--feed`'s value parser.
pub fn parse_feed(s: &str) -> Result<Feed, String> {
    match s.to_ascii_lowercase().as_str() {
        "json" => Ok(Feed::Json),
        "sbe" => Ok(Feed::Sbe),
        _ => Err(format!("'{s}' is not json or sbe")),
    }
}

/// Binance's API key for the SBE streams. Never printed: no `Display`, a redacted `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The longest API key accepted (Binance's are 64 characters): a file that is not a key is refused
/// before it is read whole.
pub const MAX_API_KEY_LEN: usize = 256;

/// Why no API key could be had. One line each; none contains the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// `--feed sbe` without `--api-key-file` or `BINANCE_API_KEY`.
    Missing,
    /// The file could not be read.
    Unreadable {
        /// The file.
        path: String,
        /// The OS's reason.
        reason: String,
    },
    /// The key (after one trailing newline is stripped) is empty.
    Empty {
        /// Where it came from (`--api-key-file FILE` or `BINANCE_API_KEY`).
        from: String,
    },
    /// Characters a header value cannot carry (control characters, spaces), or too long.
    Invalid {
        /// Where it came from.
        from: String,
    },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Missing => f.write_str(
                "--feed sbe needs a Binance API key (Ed25519): give --api-key-file FILE or set BINANCE_API_KEY",
            ),
            KeyError::Unreadable { path, reason } => write!(f, "--api-key-file {path}: cannot read it: {reason}"),
            KeyError::Empty { from } => write!(f, "{from}: the API key is empty"),
            KeyError::Invalid { from } => write!(
                f,
                "{from}: not an API key (printable ASCII without spaces, at most {MAX_API_KEY_LEN} characters)"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl ApiKey {
    /// A key from its text: one trailing newline (`\n` or `\r\n`) stripped, then it must be
    /// non-empty printable ASCII without spaces (it goes in an HTTP header). `from` names the
    /// source in errors.
    pub fn parse(text: &str, from: &str) -> Result<ApiKey, KeyError> {
        let t = text.strip_suffix('\n').unwrap_or(text);
        let t = t.strip_suffix('\r').unwrap_or(t);
        if t.is_empty() {
            return Err(KeyError::Empty { from: from.to_owned() });
        }
        if t.len() > MAX_API_KEY_LEN || !t.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(KeyError::Invalid { from: from.to_owned() });
        }
        Ok(ApiKey(t.to_owned()))
    }

    /// The key from `--api-key-file` if given (it wins), else from `BINANCE_API_KEY` (`env`).
    pub fn load(file: Option<&Path>, env: Option<&str>) -> Result<ApiKey, KeyError> {
        if let Some(path) = file {
            let shown = path.display().to_string();
            let unreadable = |reason: String| KeyError::Unreadable { path: shown.clone(), reason };
            let meta = std::fs::metadata(path).map_err(|e| unreadable(crate::net::conn::io_text(&e)))?;
            if meta.len() > (MAX_API_KEY_LEN + 2) as u64 {
                return Err(KeyError::Invalid { from: format!("--api-key-file {shown}") });
            }
            // Read at most one byte past the longest key (a FIFO or a device reports no length).
            let mut bytes = Vec::new();
            let file = std::fs::File::open(path).map_err(|e| unreadable(crate::net::conn::io_text(&e)))?;
            std::io::Read::read_to_end(&mut std::io::Read::take(file, (MAX_API_KEY_LEN + 3) as u64), &mut bytes)
                .map_err(|e| unreadable(crate::net::conn::io_text(&e)))?;
            let from = format!("--api-key-file {shown}");
            let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::Invalid { from: from.clone() })?;
            return ApiKey::parse(text, &from);
        }
        match env {
            Some(v) => ApiKey::parse(v, "BINANCE_API_KEY"),
            None => Err(KeyError::Missing),
        }
    }

    /// The key, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// One `--streams` name, of either feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamName {
    /// `depth`, `trade`, `aggTrade`, `bookTicker`.
    Kind(StreamKind),
    /// `bestBidAsk` (SBE's bookTicker).
    BestBidAsk,
    /// `depth20` (SBE's top-20 snapshots, an audit).
    Depth20,
}

/// Every name `--streams` takes, for errors and `--help`.
pub const ALL_STREAM_NAMES: &str =
    "depth,trade,aggTrade,bookTicker (JSON); depth,trade,bestBidAsk,depth20,aggTrade (--feed sbe)";

/// `--streams`' value parser: a name of either feed (which feed takes it is checked once `--feed`
/// is known, [`resolve_streams`]).
pub fn parse_stream_name(s: &str) -> Result<StreamName, SubscriptionError> {
    match s.to_ascii_lowercase().as_str() {
        "bestbidask" => Ok(StreamName::BestBidAsk),
        "depth20" => Ok(StreamName::Depth20),
        _ => crate::binance::url::parse_stream(s).map(StreamName::Kind),
    }
}

/// What `--streams` means for a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streams {
    /// The pipeline's kinds, in order, duplicates removed (bestBidAsk is `BookTicker`).
    pub kinds: Vec<StreamKind>,
    /// `--feed sbe` with `depth20`.
    pub depth20: bool,
}

/// Checks `--streams` against `--feed`: `bestBidAsk`/`depth20` need SBE, `bookTicker` has no SBE
/// stream (use bestBidAsk). A one-line error naming the problem otherwise.
pub fn resolve_streams(feed: Feed, names: &[StreamName]) -> Result<Streams, String> {
    let mut s = Streams { kinds: Vec::new(), depth20: false };
    let push = |k: StreamKind, s: &mut Streams| {
        if !s.kinds.contains(&k) {
            s.kinds.push(k);
        }
    };
    for &n in names {
        match (feed, n) {
            (Feed::Json, StreamName::Kind(k)) => push(k, &mut s),
            (Feed::Json, StreamName::BestBidAsk | StreamName::Depth20) => {
                return Err(format!(
                    "--streams: {} is an SBE stream (give --feed sbe); JSON takes depth,trade,aggTrade,bookTicker",
                    if n == StreamName::BestBidAsk { "bestBidAsk" } else { "depth20" }
                ))
            }
            (Feed::Sbe, StreamName::Kind(StreamKind::BookTicker)) => {
                return Err("--streams: bookTicker has no SBE stream; with --feed sbe use bestBidAsk".to_owned())
            }
            (Feed::Sbe, StreamName::Kind(k)) => push(k, &mut s),
            (Feed::Sbe, StreamName::BestBidAsk) => push(StreamKind::BookTicker, &mut s),
            (Feed::Sbe, StreamName::Depth20) => s.depth20 = true,
        }
    }
    if s.kinds.is_empty() && !s.depth20 {
        return Err("--streams: no stream given".to_owned());
    }
    if s.depth20 && !s.kinds.contains(&StreamKind::Depth) {
        return Err("--streams: depth20 audits the diff-depth book; give depth too".to_owned());
    }
    Ok(s)
}

/// `--feed sbe`'s settings in [`super::LiveConfig`].
#[derive(Debug, Clone)]
pub struct SbeConfig {
    /// The key of the `X-MBX-APIKEY` header.
    pub api_key: ApiKey,
    /// Subscribe `<symbol>@depth20` too.
    pub depth20: bool,
    /// `--json-ws-url`: where `aggTrade` comes from (a JSON connection alongside).
    pub json_ws: BaseUrl,
}

/// The SBE combined-stream request target for `symbols` and `kinds` (aggTrade, which SBE does not
/// have, left out): `/stream?streams=btcusdt@depth/btcusdt@trade/btcusdt@bestBidAsk/btcusdt@depth20`.
/// SBE times are always microseconds: no `timeUnit`.
pub fn sbe_stream_path(symbols: &[String], kinds: &[StreamKind], depth20: bool) -> String {
    let mut p = String::from("/stream?streams=");
    let mut first = true;
    for s in symbols {
        let names = kinds
            .iter()
            .filter_map(|k| match k {
                StreamKind::Depth => Some("depth"),
                StreamKind::Trade => Some("trade"),
                StreamKind::BookTicker => Some("bestBidAsk"),
                StreamKind::AggTrade => None,
            })
            .chain(depth20.then_some("depth20"));
        for n in names {
            if !first {
                p.push('/');
            }
            first = false;
            p.push_str(&s.to_ascii_lowercase());
            p.push('@');
            p.push_str(n);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_checked_and_never_shown() {
        let k = ApiKey::parse("abcDEF123\n", "BINANCE_API_KEY").unwrap();
        assert_eq!(k.expose(), "abcDEF123");
        assert_eq!(ApiKey::parse("abc\r\n", "x").unwrap().expose(), "abc");
        assert_eq!(format!("{k:?}"), "ApiKey(<redacted>)");
        assert_eq!(ApiKey::parse("\n", "f"), Err(KeyError::Empty { from: "f".into() }));
        assert_eq!(ApiKey::parse("", "f"), Err(KeyError::Empty { from: "f".into() }));
        for bad in ["a b", "a\nb", "a\x01", &"k".repeat(MAX_API_KEY_LEN + 1)] {
            assert_eq!(ApiKey::parse(bad, "f"), Err(KeyError::Invalid { from: "f".into() }), "{bad:?}");
        }
        assert_eq!(ApiKey::load(None, None), Err(KeyError::Missing));
        assert_eq!(ApiKey::load(None, Some("envkey")).unwrap().expose(), "envkey");
        let dir = std::env::temp_dir().join(format!("tickfeed-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("key");
        std::fs::write(&f, "filekey\n").unwrap();
        assert_eq!(ApiKey::load(Some(&f), Some("envkey")).unwrap().expose(), "filekey", "the file wins");
        let e = ApiKey::load(Some(&dir.join("none")), Some("envkey")).unwrap_err();
        assert!(matches!(e, KeyError::Unreadable { .. }), "{e}");
        assert!(!e.to_string().contains('\n'));
        std::fs::write(&f, "x".repeat(10_000)).unwrap();
        assert!(matches!(ApiKey::load(Some(&f), None), Err(KeyError::Invalid { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn streams_by_feed() {
        let p = |s: &str| parse_stream_name(s).unwrap();
        let names = [p("depth"), p("trade"), p("bestBidAsk"), p("depth20"), p("aggTrade")];
        let s = resolve_streams(Feed::Sbe, &names).unwrap();
        assert_eq!(s.kinds, [StreamKind::Depth, StreamKind::Trade, StreamKind::BookTicker, StreamKind::AggTrade]);
        assert!(s.depth20);
        assert!(resolve_streams(Feed::Sbe, &[p("depth"), p("bookTicker")]).unwrap_err().contains("bestBidAsk"));
        assert!(resolve_streams(Feed::Json, &[p("depth"), p("bestBidAsk")]).unwrap_err().contains("--feed sbe"));
        assert!(resolve_streams(Feed::Sbe, &[p("depth20")]).is_err());
        assert!(parse_stream_name("kline").is_err());
        assert_eq!(
            sbe_stream_path(&["BTCUSDT".into()], &s.kinds, true),
            "/stream?streams=btcusdt@depth/btcusdt@trade/btcusdt@bestBidAsk/btcusdt@depth20"
        );
    }
}
