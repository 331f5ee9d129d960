//! Stratum V1 messages: JSON-RPC lines in, typed requests and notifications out.
//!
//! Parsing happens in two explicit steps so every failure has a name: a line becomes an
//! [`Incoming`] (request, notification or response), then a request's params become a typed
//! [`PoolMessage`] (what a pool sends) or [`MinerRequest`] (what a miner sends). Anything that
//! does not fit is a [`ProtocolError`], never a panic.

use serde_json::{Value, json};

use crate::work::{Difficulty, Extranonce, Job, WorkError};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("empty line")]
    Empty,
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("not a JSON-RPC message (no method, result or error)")]
    NotRpc,
    #[error("{method}: {reason}")]
    BadParams { method: String, reason: String },
    #[error("{method}: {source}")]
    BadWork { method: String, source: WorkError },
}

fn bad(method: &str, reason: impl Into<String>) -> ProtocolError {
    ProtocolError::BadParams {
        method: method.to_string(),
        reason: reason.into(),
    }
}

/// One decoded line.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A call; `id` is `Value::Null` for notifications.
    Request {
        id: Value,
        method: String,
        params: Vec<Value>,
    },
    Response {
        id: Value,
        result: Value,
        error: Value,
    },
}

impl Incoming {
    pub fn parse(line: &str) -> Result<Incoming, ProtocolError> {
        let line = line.trim();
        if line.is_empty() {
            return Err(ProtocolError::Empty);
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| ProtocolError::Json(e.to_string()))?;
        let Value::Object(mut o) = v else {
            return Err(ProtocolError::NotRpc);
        };
        let id = o.remove("id").unwrap_or(Value::Null);
        match o.remove("method") {
            Some(Value::String(method)) => {
                let params = match o.remove("params") {
                    Some(Value::Array(a)) => a,
                    None | Some(Value::Null) => Vec::new(),
                    // Some pools send an object for params; keep it as a single param.
                    Some(other) => vec![other],
                };
                Ok(Incoming::Request { id, method, params })
            }
            Some(_) => Err(ProtocolError::NotRpc),
            None if o.contains_key("result") || o.contains_key("error") => {
                let result = o.remove("result").unwrap_or(Value::Null);
                let mut error = o.remove("error").unwrap_or(Value::Null);
                // ckpool answers a refused share with `"result": false, "error": null` and the
                // reason beside them (`"reject-reason": "Stale"`): read as the error it is.
                if error.is_null()
                    && result == Value::Bool(false)
                    && let Some(Value::String(reason)) = o.remove("reject-reason")
                {
                    error = Value::String(reason);
                }
                Ok(Incoming::Response { id, result, error })
            }
            None => Err(ProtocolError::NotRpc),
        }
    }
}

/// The request id a response answers. We send numbers; some pools echo them back as text.
pub fn response_id(id: &Value) -> Option<u64> {
    match id {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A request or notification line.
pub fn request_line(id: impl Into<Value>, method: &str, params: Vec<Value>) -> String {
    json!({"id": id.into(), "method": method, "params": params}).to_string()
}

/// A response line (`error` null on success).
pub fn response_line(id: &Value, result: Value, error: Value) -> String {
    json!({"id": id, "result": result, "error": error}).to_string()
}

/// An error response in the common `[code, message, null]` form.
pub fn error_value(code: i64, message: &str) -> Value {
    json!([code, message, Value::Null])
}

/// A human-readable reason from whatever error shape a pool sends
/// (`[code, "msg", trace]`, `{"code":..,"message":..}`, or a bare string).
pub fn error_reason(error: &Value) -> String {
    match error {
        Value::Null => "no reason given".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => match (a.first(), a.get(1)) {
            (Some(code), Some(Value::String(m))) => format!("{m} ({code})"),
            _ => error.to_string(),
        },
        Value::Object(o) => match o.get("message").and_then(Value::as_str) {
            Some(m) => match o.get("code") {
                Some(c) => format!("{m} ({c})"),
                None => m.to_string(),
            },
            None => error.to_string(),
        },
        other => other.to_string(),
    }
}

fn str_param<'a>(
    method: &str,
    params: &'a [Value],
    i: usize,
    name: &str,
) -> Result<&'a str, ProtocolError> {
    params
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(method, format!("param {i} ({name}) must be a string")))
}

/// A number that pools send either as a JSON number or as a numeric string.
fn num_param(method: &str, params: &[Value], i: usize, name: &str) -> Result<f64, ProtocolError> {
    match params.get(i) {
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| bad(method, format!("{name} out of range"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| bad(method, format!("{name} {s:?} is not a number"))),
        _ => Err(bad(method, format!("param {i} ({name}) must be a number"))),
    }
}

fn work_err(method: &str) -> impl Fn(WorkError) -> ProtocolError + '_ {
    move |source| ProtocolError::BadWork {
        method: method.to_string(),
        source,
    }
}

/// What a pool sends to a miner.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolMessage {
    Notify(Job),
    SetDifficulty(Difficulty),
    SetExtranonce(Extranonce),
    SetVersionMask(u32),
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
        wait_secs: u64,
    },
    ShowMessage(String),
    GetVersion,
    Ping,
    /// A method this worker does not know; answered with an error if it has an id.
    Unknown(String),
}

impl PoolMessage {
    pub fn parse(method: &str, params: &[Value]) -> Result<PoolMessage, ProtocolError> {
        match method {
            "mining.notify" => {
                if params.len() < 8 {
                    return Err(bad(
                        method,
                        format!("expected 9 params, got {}", params.len()),
                    ));
                }
                let branch = params[4]
                    .as_array()
                    .ok_or_else(|| bad(method, "merkle branch must be an array"))?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| bad(method, "merkle branch entries must be strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let job_id = match &params[0] {
                    Value::String(s) => s.clone(),
                    // Job ids are opaque; a pool that sends a number gets it back as text.
                    Value::Number(n) => n.to_string(),
                    _ => return Err(bad(method, "job id must be a string")),
                };
                let clean = match params.get(8) {
                    Some(Value::Bool(b)) => *b,
                    None | Some(Value::Null) => false,
                    Some(_) => return Err(bad(method, "clean_jobs must be a boolean")),
                };
                let job = Job::from_hex_fields(
                    job_id,
                    str_param(method, params, 1, "prevhash")?,
                    str_param(method, params, 2, "coinb1")?,
                    str_param(method, params, 3, "coinb2")?,
                    &branch,
                    str_param(method, params, 5, "version")?,
                    str_param(method, params, 6, "nbits")?,
                    str_param(method, params, 7, "ntime")?,
                    clean,
                )
                .map_err(work_err(method))?;
                Ok(PoolMessage::Notify(job))
            }
            "mining.set_difficulty" => {
                let d = num_param(method, params, 0, "difficulty")?;
                Difficulty::new(d)
                    .map(PoolMessage::SetDifficulty)
                    .map_err(work_err(method))
            }
            "mining.set_extranonce" => {
                let en1 = str_param(method, params, 0, "extranonce1")?;
                let size = num_param(method, params, 1, "extranonce2_size")?;
                if size.fract() != 0.0 || size < 0.0 {
                    return Err(bad(
                        method,
                        format!("extranonce2_size {size} is not an integer"),
                    ));
                }
                Extranonce::new(en1, size as u64)
                    .map(PoolMessage::SetExtranonce)
                    .map_err(work_err(method))
            }
            "mining.set_version_mask" => {
                let m = str_param(method, params, 0, "mask")?;
                crate::work::parse_u32_be_hex("version mask", m)
                    .map(PoolMessage::SetVersionMask)
                    .map_err(work_err(method))
            }
            "client.reconnect" => {
                let host = params
                    .first()
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(String::from);
                // Port 0 cannot be connected to: the pool's own port stays.
                let port = match params.get(1) {
                    Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
                    Some(Value::String(s)) => s.parse().ok(),
                    _ => None,
                }
                .filter(|p| *p != 0);
                let wait_secs = match params.get(2) {
                    Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
                    Some(Value::String(s)) => s.parse().unwrap_or(0),
                    _ => 0,
                };
                Ok(PoolMessage::Reconnect {
                    host,
                    port,
                    wait_secs: wait_secs.min(3600),
                })
            }
            "client.show_message" => Ok(PoolMessage::ShowMessage(
                params
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )),
            "client.get_version" => Ok(PoolMessage::GetVersion),
            "mining.ping" => Ok(PoolMessage::Ping),
            other => Ok(PoolMessage::Unknown(other.to_string())),
        }
    }
}

/// What a miner sends to a pool (the built-in pool's view).
#[derive(Debug, Clone, PartialEq)]
pub enum MinerRequest {
    Subscribe {
        user_agent: Option<String>,
        session_id: Option<String>,
    },
    Authorize {
        user: String,
        password: Option<String>,
    },
    Submit {
        worker: String,
        job_id: String,
        extranonce2: String,
        ntime: String,
        nonce: String,
        version_bits: Option<String>,
    },
    Configure {
        extensions: Vec<String>,
        params: serde_json::Map<String, Value>,
    },
    ExtranonceSubscribe,
    SuggestDifficulty(f64),
    Unknown(String),
}

impl MinerRequest {
    pub fn parse(method: &str, params: &[Value]) -> Result<MinerRequest, ProtocolError> {
        let opt_str = |i: usize| params.get(i).and_then(Value::as_str).map(String::from);
        match method {
            "mining.subscribe" => Ok(MinerRequest::Subscribe {
                user_agent: opt_str(0),
                session_id: opt_str(1),
            }),
            "mining.authorize" => Ok(MinerRequest::Authorize {
                user: str_param(method, params, 0, "user")?.to_string(),
                password: opt_str(1),
            }),
            "mining.submit" => {
                if params.len() < 5 {
                    return Err(bad(
                        method,
                        format!("expected 5 or 6 params, got {}", params.len()),
                    ));
                }
                let job_id = match &params[1] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(bad(method, "job id must be a string")),
                };
                Ok(MinerRequest::Submit {
                    worker: str_param(method, params, 0, "worker")?.to_string(),
                    job_id,
                    extranonce2: str_param(method, params, 2, "extranonce2")?.to_string(),
                    ntime: str_param(method, params, 3, "ntime")?.to_string(),
                    nonce: str_param(method, params, 4, "nonce")?.to_string(),
                    version_bits: opt_str(5),
                })
            }
            "mining.configure" => {
                let extensions = params
                    .first()
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad(method, "param 0 must be a list of extensions"))?
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                let params = params
                    .get(1)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                Ok(MinerRequest::Configure { extensions, params })
            }
            "mining.extranonce.subscribe" => Ok(MinerRequest::ExtranonceSubscribe),
            "mining.suggest_difficulty" => {
                let d = num_param(method, params, 0, "difficulty")?;
                if !(d.is_finite() && d > 0.0) {
                    return Err(bad(method, format!("difficulty {d} must be positive")));
                }
                Ok(MinerRequest::SuggestDifficulty(d))
            }
            other => Ok(MinerRequest::Unknown(other.to_string())),
        }
    }
}

/// The `mining.subscribe` result: session id (for resuming), extranonce1, extranonce2 size.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeResult {
    pub session_id: Option<String>,
    pub extranonce: Extranonce,
}

impl SubscribeResult {
    /// Accepts `[[["mining.set_difficulty", id], ["mining.notify", id]], en1, size]` and the
    /// older `[["mining.notify", id], en1, size]`.
    pub fn parse(result: &Value) -> Result<SubscribeResult, ProtocolError> {
        let m = "mining.subscribe";
        let a = result
            .as_array()
            .ok_or_else(|| bad(m, "result must be an array"))?;
        if a.len() < 3 {
            return Err(bad(
                m,
                format!("result must have 3 elements, got {}", a.len()),
            ));
        }
        let session_id = find_notify_subscription(&a[0]);
        let en1 = a[1]
            .as_str()
            .ok_or_else(|| bad(m, "extranonce1 must be a hex string"))?;
        let size = a[2]
            .as_u64()
            .ok_or_else(|| bad(m, "extranonce2_size must be an integer"))?;
        let extranonce = Extranonce::new(en1, size).map_err(work_err(m))?;
        Ok(SubscribeResult {
            session_id,
            extranonce,
        })
    }
}

fn find_notify_subscription(v: &Value) -> Option<String> {
    let a = v.as_array()?;
    if let (Some(Value::String(name)), Some(id)) = (a.first(), a.get(1))
        && name == "mining.notify"
    {
        return id.as_str().map(String::from);
    }
    a.iter().find_map(find_notify_subscription)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        assert_eq!(Incoming::parse(""), Err(ProtocolError::Empty));
        assert!(matches!(
            Incoming::parse("{nope"),
            Err(ProtocolError::Json(_))
        ));
        assert_eq!(Incoming::parse("[1,2]"), Err(ProtocolError::NotRpc));
        assert_eq!(Incoming::parse(r#"{"id":1}"#), Err(ProtocolError::NotRpc));
        let r = Incoming::parse(r#"{"id":3,"result":true,"error":null}"#).unwrap();
        assert!(matches!(r, Incoming::Response { .. }));
        let n = Incoming::parse(r#"{"id":null,"method":"mining.set_difficulty","params":[0.5]}"#)
            .unwrap();
        let Incoming::Request { method, params, .. } = n else {
            panic!()
        };
        assert_eq!(
            PoolMessage::parse(&method, &params).unwrap(),
            PoolMessage::SetDifficulty(Difficulty::new(0.5).unwrap())
        );
    }

    #[test]
    fn reconnect_keeps_only_a_usable_port() {
        let parse = |params: Value| {
            let Value::Array(p) = params else { panic!() };
            PoolMessage::parse("client.reconnect", &p).unwrap()
        };
        let port = |m: PoolMessage| match m {
            PoolMessage::Reconnect { port, .. } => port,
            other => panic!("{other:?}"),
        };
        assert_eq!(port(parse(serde_json::json!(["h", 3334, 5]))), Some(3334));
        assert_eq!(port(parse(serde_json::json!(["h", "3334"]))), Some(3334));
        assert_eq!(port(parse(serde_json::json!(["h", 0]))), None);
        assert_eq!(port(parse(serde_json::json!(["h", "0"]))), None);
        assert_eq!(port(parse(serde_json::json!(["h", 70000]))), None);
        assert_eq!(port(parse(serde_json::json!([]))), None);
    }

    #[test]
    fn bad_difficulties_are_errors() {
        for p in [
            json!(["abc"]),
            json!([0]),
            json!([-3]),
            json!([]),
            json!([null]),
            json!(["NaN"]),
        ] {
            let p = p.as_array().unwrap().clone();
            assert!(
                PoolMessage::parse("mining.set_difficulty", &p).is_err(),
                "{p:?}"
            );
        }
        assert!(PoolMessage::parse("mining.set_difficulty", &[json!("2")]).is_ok());
    }

    #[test]
    fn subscribe_results() {
        let r = SubscribeResult::parse(&json!([
            [["mining.set_difficulty", "a"], ["mining.notify", "s1"]],
            "08000002",
            4
        ]))
        .unwrap();
        assert_eq!(r.session_id.as_deref(), Some("s1"));
        assert_eq!(r.extranonce.extranonce1, vec![8, 0, 0, 2]);
        assert!(SubscribeResult::parse(&json!([[], "zz", 4])).is_err());
        assert!(SubscribeResult::parse(&json!([[], "00", 0])).is_err());
        assert!(SubscribeResult::parse(&json!([[], "00", 9])).is_err());
        assert!(SubscribeResult::parse(&json!([["mining.notify", "x"], "", 8])).is_ok());
    }

    #[test]
    fn error_shapes() {
        assert_eq!(
            error_reason(&json!([23, "Low difficulty share", null])),
            "Low difficulty share (23)"
        );
        assert_eq!(
            error_reason(&json!({"code": 21, "message": "Stale"})),
            "Stale (21)"
        );
        assert_eq!(error_reason(&json!("Duplicate")), "Duplicate");
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            if let Ok(Incoming::Request { method, params, .. }) = Incoming::parse(&s) {
                let _ = PoolMessage::parse(&method, &params);
                let _ = MinerRequest::parse(&method, &params);
            }
        }

        #[test]
        fn notify_with_arbitrary_params_never_panics(params in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(Value::Null),
                "[0-9a-f]{0,70}".prop_map(Value::from),
                proptest::num::i64::ANY.prop_map(Value::from),
                proptest::bool::ANY.prop_map(Value::from),
                proptest::collection::vec("[0-9a-f]{64}", 0..3).prop_map(Value::from),
            ], 0..10)) {
            let _ = PoolMessage::parse("mining.notify", &params);
            let _ = PoolMessage::parse("mining.set_extranonce", &params);
            let _ = MinerRequest::parse("mining.submit", &params);
        }
    }
    use proptest::strategy::Strategy;
}
