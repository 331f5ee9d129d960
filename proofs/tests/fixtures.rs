//! End-to-end checks on the committed circom fixtures (`fixtures/regenerate.sh`): our proofs
//! verify with our verifier and with snarkjs itself, snarkjs's proofs verify with ours, the
//! files we write have snarkjs's shape, and mismatched inputs give clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ark_ff::{PrimeField, Zero};
use proofs::json::{self, Proof, VerifyingKey};
use proofs::prover::{PreparedKey, ProveOptions};
use proofs::r1cs::R1cs;
use proofs::zkey::ZkeyFile;
use proofs::{Error, Fr, Precompute, Witness, verify};

const CIRCUITS: [&str; 2] = ["mulchain", "poseidon"];

fn fixture(name: &str, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.{ext}"))
}

fn backend() -> Arc<dyn proofs::ProveBackend> {
    Arc::new(backends::prove::CpuProveBackend::new())
}

fn load_key(name: &str, pre: Precompute) -> PreparedKey {
    PreparedKey::load(&fixture(name, "zkey"), backend(), pre).unwrap()
}

/// snarkjs from $SNARKJS or PATH; None (with a SKIPPED line) when absent, a failure under CI.
fn snarkjs() -> Option<String> {
    let cmd = std::env::var("SNARKJS").unwrap_or_else(|_| "snarkjs".into());
    let found = Command::new(&cmd).arg("--version").output().is_ok();
    if found {
        return Some(cmd);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "snarkjs is required under CI (npm install -g snarkjs@0.7.6) but `{cmd}` was not found"
        );
    }
    println!(
        "SKIPPED (snarkjs): `{cmd}` not found; install it with `npm install -g snarkjs@0.7.6` or set SNARKJS"
    );
    None
}

#[test]
fn our_proofs_verify_with_our_verifier() {
    for name in CIRCUITS {
        for pre in [Precompute::None, Precompute::Tables] {
            let key = load_key(name, pre);
            let w = Witness::load(&fixture(name, "wtns")).unwrap();
            let out = key.prove(&w, ProveOptions::default()).unwrap();
            assert!(out.timings.verify.is_some());
            let vk = VerifyingKey::load(&fixture(name, "vkey.json")).unwrap();
            assert!(
                verify(&vk, &out.proof, &out.public).unwrap(),
                "{name} {pre:?}"
            );
            // Tampered public input or proof: rejected.
            let mut public = out.public.clone();
            public[0] += Fr::from(1u64);
            assert!(!verify(&vk, &out.proof, &public).unwrap());
            let mut bad = out.proof;
            bad.c = out.proof.a;
            assert!(!verify(&vk, &bad, &out.public).unwrap());
        }
    }
}

#[test]
fn snarkjs_proofs_verify_with_ours_and_public_matches_witness() {
    for name in CIRCUITS {
        let vk = VerifyingKey::load(&fixture(name, "vkey.json")).unwrap();
        let proof = Proof::load(&fixture(name, "proof.json")).unwrap();
        let public = json::load_public(&fixture(name, "public.json")).unwrap();
        assert!(verify(&vk, &proof, &public).unwrap(), "{name}");
        let key = load_key(name, Precompute::None);
        let out = key
            .prove(
                &Witness::load(&fixture(name, "wtns")).unwrap(),
                ProveOptions::default(),
            )
            .unwrap();
        assert_eq!(out.public, public);
        // Byte for byte what snarkjs wrote for the same witness.
        assert_eq!(
            json::public_to_json(&out.public),
            std::fs::read_to_string(fixture(name, "public.json")).unwrap()
        );
        assert!(verify(&vk, &out.proof, &public).unwrap());
    }
}

#[test]
fn json_shapes_match_snarkjs() {
    for name in CIRCUITS {
        // proof.json: re-serialising snarkjs's proof gives snarkjs's text.
        let text = std::fs::read_to_string(fixture(name, "proof.json")).unwrap();
        assert_eq!(Proof::from_json(&text).unwrap().to_json(), text, "{name}");
        // verification_key.json: the key exported from the zkey, e(α, β) included, is snarkjs's.
        let text = std::fs::read_to_string(fixture(name, "vkey.json")).unwrap();
        let key = load_key(name, Precompute::None);
        assert_eq!(VerifyingKey::from_json(&text).unwrap(), key.vk);
        assert_eq!(key.vk.to_json(), text, "{name}");
    }
}

#[test]
fn our_proofs_verify_with_snarkjs() {
    let Some(cmd) = snarkjs() else { return };
    let dir = std::env::temp_dir().join(format!("proofs-snarkjs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in CIRCUITS {
        let key = load_key(name, Precompute::Tables);
        let out = key
            .prove(
                &Witness::load(&fixture(name, "wtns")).unwrap(),
                ProveOptions::default(),
            )
            .unwrap();
        let (p, q) = (
            dir.join(format!("{name}.proof.json")),
            dir.join(format!("{name}.public.json")),
        );
        out.proof.save(&p).unwrap();
        json::save_public(&q, &out.public).unwrap();
        let res = Command::new(&cmd)
            .args(["groth16", "verify"])
            .arg(fixture(name, "vkey.json"))
            .arg(&q)
            .arg(&p)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&res.stdout);
        assert!(
            res.status.success() && stdout.contains("OK"),
            "snarkjs rejected our {name} proof: {stdout}"
        );
        // And a tampered one is rejected by snarkjs too (the check is not vacuous).
        let mut bad = out.public.clone();
        bad[0] += Fr::from(1u64);
        json::save_public(&q, &bad).unwrap();
        let res = Command::new(&cmd)
            .args(["groth16", "verify"])
            .arg(fixture(name, "vkey.json"))
            .arg(&q)
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&res.stdout).contains("OK!"),
            "snarkjs accepted a tampered {name} proof"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn proofs_are_randomised_and_blinding_is_applied() {
    let key = load_key("mulchain", Precompute::None);
    let w = Witness::load(&fixture("mulchain", "wtns")).unwrap();
    let opts = ProveOptions::default();
    let p1 = key.prove(&w, opts).unwrap().proof;
    let p2 = key.prove(&w, opts).unwrap().proof;
    assert_ne!(p1, p2);
    let z1 = key
        .prove_with_blinding(&w, Fr::zero(), Fr::zero(), opts)
        .unwrap()
        .proof;
    let z2 = key
        .prove_with_blinding(&w, Fr::zero(), Fr::zero(), opts)
        .unwrap()
        .proof;
    assert_eq!(z1, z2);
    key.prove_with_blinding(&w, Fr::from(5u64), Fr::from(7u64), opts)
        .unwrap();
}

/// A zkey with its coefficient entries (section 4) permuted by `order`: the same key to a reader
/// that does not depend on their order.
fn with_coefficients_reordered(zkey: &[u8], order: impl Fn(usize) -> usize) -> Vec<u8> {
    let bf = proofs::binfile::BinFile::parse(zkey, "zkey", 1).unwrap();
    let s = bf.section(4).unwrap();
    let body = &zkey[s.offset + 4..s.offset + s.len];
    let n = body.len() / proofs::zkey::COEF_ENTRY;
    let mut out = zkey.to_vec();
    for i in 0..n {
        let j = order(i) % n;
        let e = proofs::zkey::COEF_ENTRY;
        out[s.offset + 4 + i * e..][..e].copy_from_slice(&body[j * e..][..e]);
    }
    out
}

/// A single proof streams the key ([`proofs::prover::prove_once`]: coefficients evaluated
/// straight from the file, each query read just before its MSM) and must give exactly the proof
/// of a resident key: snarkjs's layout (A and B interleaved per constraint), our synthetic
/// keys' (all of A, then all of B: two runs), and entries in no order at all (parsed instead).
#[test]
fn a_streamed_proof_equals_the_resident_one() {
    let dir = std::env::temp_dir().join(format!("rigworker-stream-{}", std::process::id()));
    let c = proofs::synth::generate(300).unwrap();
    proofs::synth::write(&c, &dir, "chain").unwrap();
    let mut cases: Vec<(String, Vec<u8>, Witness)> = CIRCUITS
        .iter()
        .map(|n| {
            (
                n.to_string(),
                std::fs::read(fixture(n, "zkey")).unwrap(),
                Witness::load(&fixture(n, "wtns")).unwrap(),
            )
        })
        .collect();
    cases.push((
        "synthetic".into(),
        std::fs::read(dir.join("chain.zkey")).unwrap(),
        c.witness.clone(),
    ));
    let posei = std::fs::read(fixture("poseidon", "zkey")).unwrap();
    let pw = Witness::load(&fixture("poseidon", "wtns")).unwrap();
    // A stride coprime to the count visits every entry once, in scrambled order.
    let bf = proofs::binfile::BinFile::parse(&posei, "zkey", 1).unwrap();
    let count = (bf.section(4).unwrap().len - 4) / proofs::zkey::COEF_ENTRY;
    let stride = (1..count)
        .rev()
        .find(|k| gcd(*k, count) == 1 && *k < count / 2 + 7)
        .unwrap();
    cases.push((
        "poseidon, scrambled coefficients".into(),
        with_coefficients_reordered(&posei, |i| i * stride),
        pw.clone(),
    ));
    cases.push((
        "poseidon, coefficients reversed".into(),
        with_coefficients_reordered(&posei, |i| count - 1 - i),
        pw,
    ));
    let (r, s) = (Fr::from(5u64), Fr::from(7u64));
    for (name, bytes, w) in cases {
        let z = ZkeyFile::from_bytes(proofs::binfile::FileBytes::from_vec(&name, bytes)).unwrap();
        let resident =
            PreparedKey::from_zkey(&z, backend(), Precompute::None, std::time::Instant::now())
                .unwrap()
                .prove_with_blinding(&w, r, s, ProveOptions::default())
                .unwrap();
        let (streamed, figures) = proofs::prover::prove_once_with_blinding(
            &z,
            backend(),
            &w,
            r,
            s,
            ProveOptions::default(),
        )
        .unwrap();
        assert_eq!(streamed.proof, resident.proof, "{name}");
        assert_eq!(streamed.public, resident.public, "{name}");
        assert!(figures.peak_prepared_bytes > 0, "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CPU backend, but with its G2 MSM run beside the G1 ones (as a GPU does with
/// `G2Placement::Cpu`).
struct G2Beside(backends::prove::CpuProveBackend);

impl proofs::ProveBackend for G2Beside {
    fn name(&self) -> &str {
        "cpu, G2 beside"
    }
    fn prepare_g1(
        &self,
        bases: &[proofs::G1Affine],
        pre: Precompute,
    ) -> Result<backends::prove::G1Msm, proofs::ProveError> {
        self.0.prepare_g1(bases, pre)
    }
    fn prepare_g2(
        &self,
        bases: &[proofs::G2Affine],
        pre: Precompute,
    ) -> Result<backends::prove::G2Msm, proofs::ProveError> {
        self.0.prepare_g2(bases, pre)
    }
    fn intt(&self, values: &mut Vec<Fr>) -> Result<(), proofs::ProveError> {
        self.0.intt(values)
    }
    fn coset_ntt(&self, values: &mut Vec<Fr>, shift: Fr) -> Result<(), proofs::ProveError> {
        self.0.coset_ntt(values, shift)
    }
    fn g2_beside_g1(&self) -> bool {
        true
    }
}

#[test]
fn a_streamed_key_s_peak_counts_b2_kept_beside_the_g1_msms() {
    let z = ZkeyFile::open(&fixture("poseidon", "zkey")).unwrap();
    let w = Witness::load(&fixture("poseidon", "wtns")).unwrap();
    let (r, s) = (Fr::from(5u64), Fr::from(7u64));
    let prove = |b: Arc<dyn proofs::ProveBackend>| {
        proofs::prover::prove_once_with_blinding(&z, b, &w, r, s, ProveOptions::default()).unwrap()
    };
    let (one_at_a_time, alone) = prove(backend());
    let (beside, together) = prove(Arc::new(G2Beside(backends::prove::CpuProveBackend::new())));
    assert_eq!(one_at_a_time.proof, beside.proof);
    // B2 alone, then with A, B1 and C each prepared beside it: more at once.
    assert!(
        together.peak_prepared_bytes > alone.peak_prepared_bytes,
        "{} vs {}",
        together.peak_prepared_bytes,
        alone.peak_prepared_bytes
    );
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Witness downloads are bounded by what the key's circuit needs: the real files fit.
#[test]
fn witness_files_fit_the_bound_their_circuit_gives() {
    for name in CIRCUITS {
        let z = ZkeyFile::open(&fixture(name, "zkey")).unwrap();
        let bytes = std::fs::metadata(fixture(name, "wtns")).unwrap().len();
        let bound = Witness::max_file_bytes(z.header.n_vars);
        assert!(bytes <= bound, "{name}: {bytes} > {bound}");
        assert_eq!(bytes, 76 + 32 * u64::from(z.header.n_vars), "{name}");
        let w = Witness::load(&fixture(name, "wtns")).unwrap();
        assert_eq!(w.to_bytes().len() as u64, bytes, "{name}");
    }
}

/// circom writes custom gates (PLONK only) as sections 4 and 5; their constraints are not in
/// section 2, so a reader that skipped them would pass witnesses the circuit does not.
#[test]
fn r1cs_with_custom_gates_is_refused() {
    let plain = std::fs::read(fixture("mulchain", "r1cs")).unwrap();
    for ids in [&[4u32, 5][..], &[4], &[5]] {
        let mut f = plain.clone();
        let count = u32::from_le_bytes(f[8..12].try_into().unwrap());
        f[8..12].copy_from_slice(&(count + ids.len() as u32).to_le_bytes());
        for id in ids {
            // An empty list: a u32 count of 0.
            f.extend_from_slice(&id.to_le_bytes());
            f.extend_from_slice(&4u64.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
        }
        let e = R1cs::parse(&f).unwrap_err().to_string();
        assert!(e.contains("custom gates"), "{ids:?}: {e}");
    }
    assert!(R1cs::parse(&plain).is_ok());
}

#[test]
fn r1cs_reader_checks_witnesses() {
    for name in CIRCUITS {
        let r = R1cs::load(&fixture(name, "r1cs")).unwrap();
        let w = Witness::load(&fixture(name, "wtns")).unwrap();
        r.check_witness(&w).unwrap();
        let z = ZkeyFile::open(&fixture(name, "zkey")).unwrap();
        assert_eq!(z.header.n_vars, r.n_wires);
        assert_eq!(z.header.n_public, r.n_public());
        assert!(z.header.domain_size as usize > r.constraints.len() + r.n_public() as usize);
        let mut bad = w.clone();
        let last = bad.values.len() - 1;
        bad.values[last] =
            (Fr::from_bigint(bad.values[last]).unwrap() + Fr::from(1u64)).into_bigint();
        assert!(
            matches!(r.check_witness(&bad), Err(Error::Mismatch(m)) if m.contains("constraint"))
        );
    }
}

#[test]
fn mismatched_files_give_clear_errors() {
    // zkey of one circuit, witness of another (different sizes).
    let key = load_key("mulchain", Precompute::None);
    let other = Witness::load(&fixture("poseidon", "wtns")).unwrap();
    let e = key.prove(&other, ProveOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::Mismatch(ref m) if m.contains("different circuits")),
        "{e}"
    );
    // A witness of the right size that does not satisfy the circuit: the self-check refuses.
    let mut w = Witness::load(&fixture("mulchain", "wtns")).unwrap();
    let last = w.values.len() - 1;
    w.values[last] = (Fr::from_bigint(w.values[last]).unwrap() + Fr::from(1u64)).into_bigint();
    let e = key.prove(&w, ProveOptions::default()).unwrap_err();
    assert!(matches!(e, Error::SelfCheckFailed(_)), "{e}");
    // Without the self-check the (invalid) proof comes out, and the verifier rejects it.
    let out = key.prove(&w, ProveOptions { self_check: false }).unwrap();
    assert!(!verify(&key.vk, &out.proof, &out.public).unwrap());
    // Verification key of one circuit, proof and public signals of another.
    let vk = VerifyingKey::load(&fixture("poseidon", "vkey.json")).unwrap();
    let proof = Proof::load(&fixture("mulchain", "proof.json")).unwrap();
    let public = json::load_public(&fixture("mulchain", "public.json")).unwrap();
    assert_eq!(vk.n_public(), public.len());
    assert!(!verify(&vk, &proof, &public).unwrap());
    let e = verify(&vk, &proof, &public[..1]).unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)), "{e}");
    // Files of the wrong kind.
    let e = Witness::load(&fixture("mulchain", "zkey")).unwrap_err();
    assert!(e.to_string().contains("not a wtns file"), "{e}");
    let e = ZkeyFile::open(&fixture("mulchain", "wtns")).err().unwrap();
    assert!(e.to_string().contains("not a zkey file"), "{e}");
    let e = Proof::load(&fixture("mulchain", "vkey.json")).unwrap_err();
    assert!(matches!(e, Error::Json { .. }), "{e}");
    let e = ZkeyFile::open(Path::new("/nonexistent/c.zkey"))
        .err()
        .unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

/// rapidsnark writes its proofs without snarkjs's `curve` field: one it wrote for the committed
/// Poseidon key (`poseidon.rapidsnark.proof.json`, the witness's public signals as in
/// `poseidon.public.json`) reads and verifies, and the same proof altered does not.
#[test]
fn rapidsnark_proofs_read_and_verify() {
    let path = fixture("poseidon", "rapidsnark.proof.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("curve"), "the fixture is rapidsnark's shape");
    let proof = Proof::load(&path).unwrap();
    let vk = VerifyingKey::load(&fixture("poseidon", "vkey.json")).unwrap();
    let public = json::load_public(&fixture("poseidon", "public.json")).unwrap();
    assert!(verify(&vk, &proof, &public).unwrap());
    let mut other = public.clone();
    other[0] += Fr::from(1u64);
    assert!(!verify(&vk, &proof, &other).unwrap());
}

#[test]
fn json_inputs_are_checked() {
    let text = std::fs::read_to_string(fixture("mulchain", "proof.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Off the curve.
    let mut off = v.clone();
    off["pi_a"][1] = "5".into();
    assert!(
        Proof::from_json(&off.to_string())
            .unwrap_err()
            .contains("not a point")
    );
    // Not below q.
    let mut big = v.clone();
    big["pi_a"][0] =
        "21888242871839275222246405745257275088696311157297823662689037894645226208583".into();
    assert!(Proof::from_json(&big.to_string()).is_err());
    // Junk.
    v["pi_c"][0] = "12a".into();
    assert!(Proof::from_json(&v.to_string()).is_err());
    assert!(
        json::public_from_json(
            r#"["21888242871839275222246405745257275088548364400416034343698204186575808495617"]"#
        )
        .is_err()
    );
    assert!(json::public_from_json(r#"["-1"]"#).is_err());
    assert_eq!(
        json::public_from_json(r#"["0", "7"]"#).unwrap(),
        vec![Fr::from(0u64), Fr::from(7u64)]
    );
    assert_eq!(
        json::parse_decimal(
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        ),
        Some([u64::MAX; 4])
    );
    assert_eq!(
        json::parse_decimal(
            "115792089237316195423570985008687907853269984665640564039457584007913129639936"
        ),
        None
    );
}

/// Our own setup (`proofs::synth`, used by `rigworker bench --work prove`) makes keys snarkjs
/// reads as its own: snarkjs exports their verification key, proves with them, and verifies
/// both its proof and ours.
#[test]
fn synthetic_keys_are_snarkjs_keys() {
    let Some(snarkjs) = snarkjs() else { return };
    let dir = std::env::temp_dir().join(format!("rigworker-synth-{}", std::process::id()));
    let c = proofs::synth::generate(300).unwrap();
    proofs::synth::write(&c, &dir, "chain").unwrap();
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let o = Command::new(&snarkjs).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "snarkjs {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&[
        "zkey",
        "export",
        "verificationkey",
        &p("chain.zkey"),
        &p("vkey.json"),
    ]);
    run(&[
        "groth16",
        "prove",
        &p("chain.zkey"),
        &p("chain.wtns"),
        &p("sj.proof.json"),
        &p("sj.public.json"),
    ]);
    let out = run(&[
        "groth16",
        "verify",
        &p("vkey.json"),
        &p("sj.public.json"),
        &p("sj.proof.json"),
    ]);
    assert!(out.contains("OK"), "{out}");
    let key = PreparedKey::load(&dir.join("chain.zkey"), backend(), Precompute::None).unwrap();
    let ours = key.prove(&c.witness, ProveOptions::default()).unwrap();
    ours.proof.save(&dir.join("ours.proof.json")).unwrap();
    json::save_public(&dir.join("ours.public.json"), &ours.public).unwrap();
    let out = run(&[
        "groth16",
        "verify",
        &p("vkey.json"),
        &p("ours.public.json"),
        &p("ours.proof.json"),
    ]);
    assert!(out.contains("OK"), "{out}");
    let vk = VerifyingKey::load(&dir.join("vkey.json")).unwrap();
    let sj = Proof::load(&dir.join("sj.proof.json")).unwrap();
    assert!(verify(&vk, &sj, &ours.public).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
