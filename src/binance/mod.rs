//! Binance: what its messages look like and how to ask it for things. Stream names and the
//! combined-stream envelope (`stream`), the JSON decoders split by what they decode (market events
//! in `market`, REST bodies in `rest_body`, depth levels in `levels`), the REST client with its
//! request-weight gate and exchangeInfo (`rest`), the snapshot scheduler (`schedule`) and the
//! worker pool that runs it (`rest_pool`), the websocket and REST URLs (`url`), and the decoder of
//! the binary SBE market-data streams (`sbe`), which gives the same level, depth and trade types.
//!
//! Everything but `rest` and `rest_pool` is sans-IO: bytes (or requests, answers and a caller's
//! clock) in, typed values out, errors as values. This layer knows nothing of books, output or
//! connections.

mod fast;
mod json;
mod levels;
mod market;
pub(crate) mod rest;
mod rest_body;
mod rest_pool;
pub mod sbe;
pub(crate) mod schedule;
mod stream;
pub(crate) mod url;

#[cfg(test)]
mod tests;

pub use json::{DecodeError, MAX_DEPTH};
pub use levels::{LevelBuf, RawLevel};
pub use market::{
    decode_agg_trade, decode_book_ticker, decode_control, decode_depth, decode_futures_depth, decode_raw_event,
    decode_trade, AggTrade, BookTicker, ControlReply, DepthHeader, FuturesDepthHeader, RawEvent, Trade,
};
pub use rest::{InfoError, RestError, WaitReason};
pub use rest_body::{
    decode_exchange_info, decode_exchange_info_all, decode_snapshot, ExchangeInfo, SymbolFilters, SymbolInfo,
};
pub use stream::{
    parse_futures_stream_name, parse_stream_name, split_envelope, ByStream, Envelope, StreamKind, StreamName,
};
pub use url::{
    check_symbol, parse_rest_base, parse_stream, parse_streams, parse_ws_base, stream_path, BaseUrl, SubscriptionError,
    UrlError, UrlErrorKind,
};
