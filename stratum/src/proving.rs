//! The proving-job extension of Stratum (`prover.subscribe`, `prover.notify`, `prover.submit`;
//! specified in `docs/protocol.md`): typed messages for both sides, parsed with explicit errors
//! like every other Stratum message.
//!
//! This module knows the wire shapes only. Proofs and public signals travel as snarkjs JSON and
//! stay [`serde_json::Value`]s here: checking them is the prover's (`proofs`) business, which the
//! pool calls in `server`.

use serde_json::{Map, Value, json};

use crate::message::ProtocolError;

/// `prover.submit` error codes (see `docs/protocol.md`).
pub mod code {
    pub const OTHER: i64 = 20;
    pub const JOB_NOT_FOUND: i64 = 21;
    pub const DUPLICATE: i64 = 22;
    pub const INVALID_PROOF: i64 = 23;
    pub const WRONG_PUBLIC: i64 = 24;
    pub const DEADLINE_PASSED: i64 = 25;
}

/// The largest witness a pool sends inline: its hex (twice the bytes) plus the rest of the
/// notify must stay under the 64 KiB line limit.
pub const MAX_INLINE_WITNESS: usize = 24 * 1024;

fn bad(method: &str, reason: impl Into<String>) -> ProtocolError {
    ProtocolError::BadParams {
        method: method.to_string(),
        reason: reason.into(),
    }
}

/// A SHA-256 digest of an artifact file (zkey, witness), shown as lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ArtifactId(pub [u8; 32]);

impl ArtifactId {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> ArtifactId {
        use sha2::Digest;
        ArtifactId(sha2::Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// 64 hex digits, either case.
    pub fn from_hex(s: &str) -> Option<ArtifactId> {
        let v = hex::decode(s).ok()?;
        v.try_into().ok().map(ArtifactId)
    }
}

impl std::fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a worker can prove (`prover.subscribe`'s one param).
#[derive(Clone, Debug, PartialEq)]
pub struct ProverCapabilities {
    pub protocols: Vec<String>,
    pub curves: Vec<String>,
    pub formats: Vec<String>,
    /// The largest evaluation domain (a power of two) the worker accepts.
    pub max_constraints: u64,
    pub backends: Vec<String>,
}

impl ProverCapabilities {
    /// Groth16 over BN254 from snarkjs files: what `proofs` proves.
    pub fn groth16_bn254(max_constraints: u64, backends: Vec<String>) -> ProverCapabilities {
        ProverCapabilities {
            protocols: vec!["groth16".into()],
            curves: vec!["bn254".into()],
            formats: vec!["snarkjs".into()],
            max_constraints,
            backends,
        }
    }

    pub fn to_params(&self) -> Vec<Value> {
        vec![json!({
            "protocols": self.protocols,
            "curves": self.curves,
            "formats": self.formats,
            "max_constraints": self.max_constraints,
            "backends": self.backends,
        })]
    }

    pub fn from_params(params: &[Value]) -> Result<ProverCapabilities, ProtocolError> {
        const M: &str = "prover.subscribe";
        let o = params
            .first()
            .and_then(Value::as_object)
            .ok_or_else(|| bad(M, "expected one object of capabilities"))?;
        let list = |key: &str| -> Result<Vec<String>, ProtocolError> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| bad(M, format!("{key} must be a list of strings")))
                    })
                    .collect(),
                Some(_) => Err(bad(M, format!("{key} must be a list of strings"))),
            }
        };
        let max_constraints = match o.get("max_constraints") {
            None | Some(Value::Null) => u64::MAX,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| bad(M, "max_constraints must be a non-negative integer"))?,
        };
        Ok(ProverCapabilities {
            protocols: list("protocols")?,
            curves: list("curves")?,
            formats: list("formats")?,
            max_constraints,
            backends: list("backends")?,
        })
    }

    /// Whether a worker with these capabilities can prove a Groth16/BN254 circuit whose
    /// evaluation domain has `domain_size` points.
    pub fn accepts_groth16_bn254(&self, domain_size: u64) -> bool {
        let has = |l: &[String], any: &[&str]| l.iter().any(|s| any.contains(&s.as_str()));
        has(&self.protocols, &["groth16"])
            && has(&self.curves, &["bn254", "bn128"])
            && domain_size <= self.max_constraints
    }
}

/// Where the witness of a proving job comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum WitnessSource {
    /// The `.wtns` file itself (small witnesses).
    Inline(Vec<u8>),
    /// Fetched over HTTP(S) and checked against its hash.
    Url {
        url: String,
        sha256: ArtifactId,
        size: Option<u64>,
    },
}

/// One proving job (`prover.notify`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProofJob {
    /// Opaque, echoed in `prover.submit`.
    pub job_id: String,
    /// SHA-256 of the zkey.
    pub circuit_id: ArtifactId,
    pub zkey_url: String,
    pub zkey_size: Option<u64>,
    pub witness: WitnessSource,
    /// Unix seconds after which the pool no longer takes a proof.
    pub deadline: u64,
}

impl ProofJob {
    pub fn to_params(&self) -> Vec<Value> {
        let witness = match &self.witness {
            WitnessSource::Inline(b) => json!({ "inline": hex::encode(b) }),
            WitnessSource::Url { url, sha256, size } => {
                let mut m = Map::new();
                m.insert("url".into(), json!(url));
                m.insert("sha256".into(), json!(sha256.to_hex()));
                if let Some(s) = size {
                    m.insert("size".into(), json!(s));
                }
                Value::Object(m)
            }
        };
        let mut m = Map::new();
        m.insert("job_id".into(), json!(self.job_id));
        m.insert("circuit_id".into(), json!(self.circuit_id.to_hex()));
        m.insert("zkey_url".into(), json!(self.zkey_url));
        if let Some(s) = self.zkey_size {
            m.insert("zkey_size".into(), json!(s));
        }
        m.insert("witness".into(), witness);
        m.insert("deadline".into(), json!(self.deadline));
        vec![Value::Object(m)]
    }

    pub fn from_params(params: &[Value]) -> Result<ProofJob, ProtocolError> {
        const M: &str = "prover.notify";
        let o = params
            .first()
            .and_then(Value::as_object)
            .ok_or_else(|| bad(M, "expected one job object"))?;
        let string = |key: &str| -> Result<String, ProtocolError> {
            o.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(M, format!("{key} must be a string")))
        };
        let opt_u64 = |v: Option<&Value>, key: &str| -> Result<Option<u64>, ProtocolError> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| bad(M, format!("{key} must be a non-negative integer"))),
            }
        };
        let job_id = string("job_id")?;
        if job_id.is_empty() {
            return Err(bad(M, "job_id is empty"));
        }
        let circuit_id = ArtifactId::from_hex(&string("circuit_id")?)
            .ok_or_else(|| bad(M, "circuit_id must be 64 hex digits (SHA-256 of the zkey)"))?;
        let zkey_url = string("zkey_url")?;
        let zkey_size = opt_u64(o.get("zkey_size"), "zkey_size")?;
        let deadline = opt_u64(o.get("deadline"), "deadline")?
            .ok_or_else(|| bad(M, "deadline (Unix seconds) is missing"))?;
        let w = o
            .get("witness")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(M, "witness must be an object"))?;
        let witness = if let Some(h) = w.get("inline") {
            let h = h
                .as_str()
                .ok_or_else(|| bad(M, "witness.inline must be a hex string"))?;
            WitnessSource::Inline(
                hex::decode(h).map_err(|_| bad(M, "witness.inline is not valid hex"))?,
            )
        } else {
            let url = w
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(M, "witness needs `inline` or `url`"))?
                .to_string();
            let sha256 = w
                .get("sha256")
                .and_then(Value::as_str)
                .and_then(ArtifactId::from_hex)
                .ok_or_else(|| bad(M, "witness.sha256 must be 64 hex digits"))?;
            let size = opt_u64(w.get("size"), "witness.size")?;
            WitnessSource::Url { url, sha256, size }
        };
        Ok(ProofJob {
            job_id,
            circuit_id,
            zkey_url,
            zkey_size,
            witness,
            deadline,
        })
    }
}

/// One proof for a job (`prover.submit`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProofSubmit {
    pub worker: String,
    pub job_id: String,
    /// snarkjs `proof.json`, as an object.
    pub proof: Value,
    /// snarkjs `public.json`: decimal strings.
    pub public: Vec<String>,
}

impl ProofSubmit {
    pub fn to_params(&self) -> Vec<Value> {
        vec![
            json!(self.worker),
            json!(self.job_id),
            self.proof.clone(),
            json!(self.public),
        ]
    }

    pub fn from_params(params: &[Value]) -> Result<ProofSubmit, ProtocolError> {
        const M: &str = "prover.submit";
        if params.len() != 4 {
            return Err(bad(
                M,
                format!(
                    "expected [worker, job_id, proof, public], got {} params",
                    params.len()
                ),
            ));
        }
        let s = |i: usize, what: &str| -> Result<String, ProtocolError> {
            params[i]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(M, format!("{what} must be a string")))
        };
        let worker = s(0, "worker")?;
        let job_id = s(1, "job_id")?;
        let proof = params[2].clone();
        if !proof.is_object() {
            return Err(bad(M, "proof must be an object (snarkjs proof.json)"));
        }
        let public = params[3]
            .as_array()
            .ok_or_else(|| bad(M, "public must be a list of decimal strings"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(M, "public must be a list of decimal strings"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProofSubmit {
            worker,
            job_id,
            proof,
            public,
        })
    }
}

/// A job the worker will not prove (`prover.decline`): its queue was full, or the job cannot be
/// started (deadline passed, artifacts refused). The pool may give the job to another worker
/// at once instead of waiting for its deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofDecline {
    pub worker: String,
    pub job_id: String,
    /// Why, for the pool's log (the pool escapes it like any peer text).
    pub reason: String,
}

/// The longest reason a decline carries; longer ones are cut (at a character boundary).
pub const MAX_DECLINE_REASON: usize = 256;

impl ProofDecline {
    pub fn to_params(&self) -> Vec<Value> {
        vec![json!(self.worker), json!(self.job_id), json!(self.reason)]
    }

    pub fn from_params(params: &[Value]) -> Result<ProofDecline, ProtocolError> {
        const M: &str = "prover.decline";
        let [worker, job_id, reason] = params else {
            return Err(bad(
                M,
                format!(
                    "expected [worker, job_id, reason], got {} params",
                    params.len()
                ),
            ));
        };
        let s = |v: &Value, what: &str| -> Result<String, ProtocolError> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(M, format!("{what} must be a string")))
        };
        let mut reason = s(reason, "reason")?;
        if reason.len() > MAX_DECLINE_REASON {
            let mut cut = MAX_DECLINE_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Ok(ProofDecline {
            worker: s(worker, "worker")?,
            job_id: s(job_id, "job_id")?,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decline_round_trips_and_its_reason_is_bounded() {
        let d = ProofDecline {
            worker: "w.rig".into(),
            job_id: "p7".into(),
            reason: "queue full".into(),
        };
        assert_eq!(ProofDecline::from_params(&d.to_params()).unwrap(), d);
        let long = json!(["w", "p", "é".repeat(300)]);
        let cut = ProofDecline::from_params(long.as_array().unwrap()).unwrap();
        assert!(cut.reason.len() <= MAX_DECLINE_REASON && cut.reason.starts_with('é'));
        assert!(ProofDecline::from_params(&[json!("w"), json!("p")]).is_err());
        assert!(ProofDecline::from_params(&[json!("w"), json!(1), json!("r")]).is_err());
    }

    fn job(witness: WitnessSource) -> ProofJob {
        ProofJob {
            job_id: "p1".into(),
            circuit_id: ArtifactId::of(b"zkey"),
            zkey_url: "http://127.0.0.1:1/artifacts/x".into(),
            zkey_size: Some(4),
            witness,
            deadline: 1_764_660_000,
        }
    }

    #[test]
    fn jobs_round_trip() {
        for w in [
            WitnessSource::Inline(vec![1, 2, 3]),
            WitnessSource::Url {
                url: "/artifacts/ab".into(),
                sha256: ArtifactId([7; 32]),
                size: None,
            },
        ] {
            let j = job(w);
            assert_eq!(ProofJob::from_params(&j.to_params()).unwrap(), j);
        }
    }

    #[test]
    fn bad_jobs_are_errors() {
        let good = job(WitnessSource::Inline(vec![1])).to_params();
        let mutate = |k: &str, v: Value| {
            let mut p = good.clone();
            p[0][k] = v;
            p
        };
        for p in [
            vec![],
            vec![json!("x")],
            mutate("job_id", json!(1)),
            mutate("job_id", json!("")),
            mutate("circuit_id", json!("abc")),
            mutate("deadline", json!(-1)),
            mutate("deadline", Value::Null),
            mutate("witness", json!({"inline": "zz"})),
            mutate("witness", json!({})),
            mutate("witness", json!({"url": "/a", "sha256": "00"})),
            mutate("zkey_size", json!("big")),
        ] {
            assert!(ProofJob::from_params(&p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn submits_and_capabilities_round_trip() {
        let s = ProofSubmit {
            worker: "w".into(),
            job_id: "p1".into(),
            proof: json!({"protocol": "groth16"}),
            public: vec!["33".into()],
        };
        assert_eq!(ProofSubmit::from_params(&s.to_params()).unwrap(), s);
        assert!(ProofSubmit::from_params(&[json!("w"), json!("p"), json!(1), json!([])]).is_err());
        let c = ProverCapabilities::groth16_bn254(1 << 20, vec!["cpu".into()]);
        let back = ProverCapabilities::from_params(&c.to_params()).unwrap();
        assert_eq!(back, c);
        assert!(back.accepts_groth16_bn254(1 << 16));
        assert!(!back.accepts_groth16_bn254(1 << 21));
        assert!(ProverCapabilities::from_params(&[json!({"curves": "bn254"})]).is_err());
    }
}
