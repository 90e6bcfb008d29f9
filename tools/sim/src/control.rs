//! Live control messages on a stream connection: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS,
//! SET_PROPERTY, GET_PROPERTY, answered as Binance answers them.
//!
//! Success replies are `{"result":null,"id":1}` (or the list / property value). Errors carry the
//! documented codes and texts in the documented shape (protocol doc §3.4, copied exactly from
//! Binance's docs): `{"code":2,"msg":"Invalid request: ..."}`, and `{"code":0,"msg":"Unknown
//! property","id":2}` (the one documented error that echoes the request id). Binance's texts for syntax and shape errors are serde_json's, so they are
//! produced here with serde_json and match to the byte where the request matches. Pure: text in,
//! reply out; the connection applies the subscription changes.

use serde::Deserialize;
use serde_json::Value;

/// What a connection is subscribed to and how it frames messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Subscriptions {
    /// Stream names in subscription order.
    pub names: Vec<String>,
    /// Wrap events as `{"stream":..,"data":..}` (true on `/stream`, false on `/ws`).
    pub combined: bool,
}

/// The reply to send and whether the request failed or changed the subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub reply: String,
    pub error: bool,
    pub changed: bool,
    /// A SUBSCRIBE refused because it would take the connection past its stream limit.
    pub too_many_streams: bool,
}

#[derive(Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
enum Method {
    SUBSCRIBE,
    UNSUBSCRIBE,
    LIST_SUBSCRIPTIONS,
    SET_PROPERTY,
    GET_PROPERTY,
}

#[derive(Deserialize)]
struct Request {
    method: Method,
    #[serde(default)]
    params: Option<Vec<Value>>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<Value>,
}

fn error(code: i64, msg: &str, id: &str) -> Outcome {
    let msg = serde_json::to_string(msg).unwrap_or_else(|_| "\"\"".to_string());
    // Binance's table documents the id only on code 0 (`{"code": 0, "msg": "Unknown property","id": %s}`).
    let reply = if code == 0 {
        format!("{{\"code\":{code},\"msg\":{msg},\"id\":{id}}}")
    } else {
        format!("{{\"code\":{code},\"msg\":{msg}}}")
    };
    Outcome { reply, error: true, changed: false, too_many_streams: false }
}

fn ok(result: &str, id: &str, changed: bool) -> Outcome {
    Outcome { reply: format!("{{\"result\":{result},\"id\":{id}}}"), error: false, changed, too_many_streams: false }
}

/// Binance accepts a signed 64-bit integer, an alphanumeric string of at most 36 characters, or
/// null.
fn valid_id(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Number(n) => n.is_i64() || n.is_u64() && n.as_u64().is_some_and(|u| u <= i64::MAX as u64),
        Value::String(s) => s.len() <= 36 && s.bytes().all(|b| b.is_ascii_alphanumeric()),
        _ => false,
    }
}

/// Whether `name` is a well-formed spot market stream name (lowercase symbol, known suffix).
pub(crate) fn valid_stream(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix('!') {
        return matches!(rest, "miniTicker@arr" | "ticker_1h@arr" | "ticker_4h@arr" | "ticker_1d@arr");
    }
    let Some((sym, suffix)) = name.split_once('@') else {
        return false;
    };
    if sym.is_empty() || !sym.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return false;
    }
    match suffix {
        "depth" | "depth@100ms" | "depth@1000ms" | "trade" | "aggTrade" | "bookTicker" | "miniTicker" | "ticker"
        | "ticker_1h" | "ticker_4h" | "ticker_1d" | "avgPrice" | "referencePrice" | "blockTrade" => true,
        s if s.starts_with("kline_") => s.len() > "kline_".len(),
        s => {
            let base = s.strip_suffix("@100ms").or_else(|| s.strip_suffix("@1000ms")).unwrap_or(s);
            matches!(base, "depth5" | "depth10" | "depth20")
        }
    }
}

/// `<symbol>@bestBidAsk`: a stream only the SBE endpoint has.
fn valid_sbe_only_stream(name: &str) -> bool {
    name.strip_suffix("@bestBidAsk").is_some_and(|sym| valid_stream(&format!("{sym}@trade")))
}

/// Handles one text frame from the client. `max_streams` (0: no limit) is Binance's
/// streams-per-connection limit (1024): a SUBSCRIBE that would take the connection past it is
/// refused whole, in the documented error shape, and changes nothing. Binance does not document
/// what it does there; this is the simulator's choice.
///
/// `sbe`: the connection is on the `stream-sbe` endpoint, which also takes `<symbol>@bestBidAsk`.
pub(crate) fn handle(text: &str, subs: &mut Subscriptions, max_streams: usize, sbe: bool) -> Outcome {
    let raw: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return error(3, &format!("Invalid JSON: {e}"), "null"),
    };
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let id = raw.get("id").filter(|v| valid_id(v)).map_or("null".to_string(), Value::to_string);
            return error(2, &format!("Invalid request: {e}"), &id);
        }
    };
    let id_value = raw.get("id");
    let id = match id_value {
        Some(v) if valid_id(v) => v.to_string(),
        _ => return error(2, "Invalid request: request ID must be an unsigned integer", "null"),
    };
    let params = req.params.unwrap_or_default();
    match req.method {
        Method::SUBSCRIBE | Method::UNSUBSCRIBE => {
            let mut names = Vec::with_capacity(params.len());
            for p in &params {
                match p.as_str() {
                    Some(s) if valid_stream(s) || (sbe && valid_sbe_only_stream(s)) => names.push(s.to_string()),
                    _ => return error(2, "Invalid request: invalid stream", &id),
                }
            }
            if matches!(req.method, Method::SUBSCRIBE) {
                let mut after = subs.names.len();
                for (i, n) in names.iter().enumerate() {
                    if !subs.names.contains(n) && !names[..i].contains(n) {
                        after += 1;
                    }
                }
                if max_streams > 0 && after > max_streams {
                    let msg = format!(
                        "Invalid request: too many streams: {after} would be subscribed, at most {max_streams} per connection"
                    );
                    return Outcome { too_many_streams: true, ..error(2, &msg, &id) };
                }
                for n in names {
                    if !subs.names.contains(&n) {
                        subs.names.push(n);
                    }
                }
            } else {
                subs.names.retain(|n| !names.contains(n));
            }
            ok("null", &id, true)
        }
        Method::LIST_SUBSCRIPTIONS => {
            if !params.is_empty() {
                return error(2, "Invalid request: too many parameters", &id);
            }
            let list = serde_json::to_string(&subs.names).unwrap_or_else(|_| "[]".into());
            ok(&list, &id, false)
        }
        Method::SET_PROPERTY => {
            if params.len() > 2 {
                return error(2, "Invalid request: too many parameters", &id);
            }
            let Some(name) = params.first().and_then(Value::as_str) else {
                return error(2, "Invalid request: property name must be a string", &id);
            };
            if name != "combined" {
                return error(0, "Unknown property", &id);
            }
            let Some(v) = params.get(1).and_then(Value::as_bool) else {
                return error(1, "Invalid value type: expected Boolean", &id);
            };
            subs.combined = v;
            ok("null", &id, true)
        }
        Method::GET_PROPERTY => {
            if params.len() > 1 {
                return error(2, "Invalid request: too many parameters", &id);
            }
            let Some(name) = params.first().and_then(Value::as_str) else {
                return error(2, "Invalid request: property name must be a string", &id);
            };
            if name != "combined" {
                return error(0, "Unknown property", &id);
            }
            ok(if subs.combined { "true" } else { "false" }, &id, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, subs: &mut Subscriptions) -> String {
        handle(text, subs, 1024, false).reply
    }

    #[test]
    fn documented_happy_paths() {
        let mut s = Subscriptions { names: vec![], combined: true };
        assert_eq!(
            run(r#"{"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 1}"#, &mut s),
            r#"{"result":null,"id":1}"#
        );
        assert_eq!(
            run(r#"{"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 312}"#, &mut s),
            r#"{"result":null,"id":312}"#
        );
        assert_eq!(
            run(r#"{"method": "LIST_SUBSCRIPTIONS", "id": 3}"#, &mut s),
            r#"{"result":["btcusdt@aggTrade"],"id":3}"#
        );
        assert_eq!(
            run(r#"{"method": "SET_PROPERTY", "params": ["combined", false], "id": 5}"#, &mut s),
            r#"{"result":null,"id":5}"#
        );
        assert!(!s.combined);
        assert_eq!(
            run(r#"{"method": "GET_PROPERTY", "params": ["combined"], "id": 2}"#, &mut s),
            r#"{"result":false,"id":2}"#
        );
        assert_eq!(
            run(r#"{"method":"LIST_SUBSCRIPTIONS","id":"abc123"}"#, &mut s),
            r#"{"result":["btcusdt@aggTrade"],"id":"abc123"}"#
        );
        assert_eq!(
            run(r#"{"method":"LIST_SUBSCRIPTIONS","id":null}"#, &mut s),
            r#"{"result":["btcusdt@aggTrade"],"id":null}"#
        );
        assert_eq!(
            run(r#"{"method":"LIST_SUBSCRIPTIONS","id":-7}"#, &mut s),
            r#"{"result":["btcusdt@aggTrade"],"id":-7}"#
        );
    }

    #[test]
    fn documented_errors() {
        let mut s = Subscriptions::default();
        assert_eq!(
            run(r#"{"method": "GET_PROPERTY", "params": ["foo"], "id": 2}"#, &mut s),
            r#"{"code":0,"msg":"Unknown property","id":2}"#
        );
        assert_eq!(
            run(r#"{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 2}"#, &mut s),
            r#"{"code":1,"msg":"Invalid value type: expected Boolean"}"#
        );
        assert_eq!(
            run(r#"{"method": "SET_PROPERTY", "params": [1, true], "id": 2}"#, &mut s),
            r#"{"code":2,"msg":"Invalid request: property name must be a string"}"#
        );
        assert_eq!(
            run(r#"{"method": "LIST_SUBSCRIPTIONS", "id": {"x":1}}"#, &mut s),
            r#"{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"}"#
        );
        assert_eq!(
            run(r#"{"method": "LIST_SUBSCRIPTIONS"}"#, &mut s),
            r#"{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"}"#
        );
        assert_eq!(
            run(r#"{"method": "SUBSCRIBEX", "params": [], "id": 1}"#, &mut s),
            "{\"code\":2,\"msg\":\"Invalid request: unknown variant `SUBSCRIBEX`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 23\"}"
        );
        assert_eq!(
            run(r#"{"method": "GET_PROPERTY", "params": ["combined", 1], "id": 2}"#, &mut s),
            r#"{"code":2,"msg":"Invalid request: too many parameters"}"#
        );
        assert_eq!(
            run(r#"{"params": ["btcusdt@depth"], "id": 1}"#, &mut s),
            "{\"code\":2,\"msg\":\"Invalid request: missing field `method` at line 1 column 38\"}"
        );
        assert_eq!(
            run("{\"method\":", &mut s),
            r#"{"code":3,"msg":"Invalid JSON: EOF while parsing a value at line 1 column 10"}"#
        );
        assert_eq!(run("{]", &mut s), r#"{"code":3,"msg":"Invalid JSON: key must be a string at line 1 column 2"}"#);
        assert_eq!(
            run(r#"{"method":"SUBSCRIBE","params":["BTCUSDT@depth"],"id":9}"#, &mut s),
            r#"{"code":2,"msg":"Invalid request: invalid stream"}"#
        );
        assert!(s.names.is_empty());
    }

    #[test]
    fn subscribe_past_the_stream_limit_is_refused_whole() {
        let mut s = Subscriptions { names: vec!["a@trade".into(), "b@trade".into()], combined: true };
        let o = handle(r#"{"method":"SUBSCRIBE","params":["b@trade","c@trade","c@trade"],"id":1}"#, &mut s, 3, false);
        assert_eq!((o.error, o.too_many_streams, o.reply.as_str()), (false, false, r#"{"result":null,"id":1}"#));
        let o = handle(r#"{"method":"SUBSCRIBE","params":["d@trade","a@trade"],"id":2}"#, &mut s, 3, false);
        assert!(o.error && o.too_many_streams && !o.changed);
        assert_eq!(
            o.reply,
            r#"{"code":2,"msg":"Invalid request: too many streams: 4 would be subscribed, at most 3 per connection"}"#
        );
        assert_eq!(s.names, ["a@trade", "b@trade", "c@trade"], "unchanged");
        let o = handle(r#"{"method":"SUBSCRIBE","params":["d@trade"],"id":3}"#, &mut s, 0, false);
        assert!(!o.error, "0: no limit");
    }

    #[test]
    fn stream_names() {
        for ok in [
            "btcusdt@depth",
            "btcusdt@depth@100ms",
            "btcusdt@aggTrade",
            "ethusdt@bookTicker",
            "btcusdt@depth20@100ms",
            "btcusdt@kline_1m",
        ] {
            assert!(valid_stream(ok), "{ok}");
        }
        for bad in ["BTCUSDT@depth", "btcusdt", "btcusdt@foo", "@trade", "btcusdt@depth7", "btc usdt@trade"] {
            assert!(!valid_stream(bad), "{bad}");
        }
    }

    #[test]
    fn best_bid_ask_is_a_stream_of_the_sbe_endpoint_only() {
        let req = r#"{"method":"SUBSCRIBE","params":["btcusdt@bestBidAsk"],"id":1}"#;
        let mut s = Subscriptions { names: vec![], combined: false };
        assert!(handle(req, &mut s, 0, false).error, "not a JSON stream");
        assert!(s.names.is_empty());
        let o = handle(req, &mut s, 0, true);
        assert!(!o.error && o.changed, "{}", o.reply);
        assert_eq!(s.names, ["btcusdt@bestBidAsk"]);
        assert!(!valid_sbe_only_stream("BTCUSDT@bestBidAsk") && !valid_sbe_only_stream("@bestBidAsk"));
    }
}
