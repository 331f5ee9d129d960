#!/usr/bin/env bash
# Builds the seed corpora (fuzz/corpus/TARGET/) from real data already in the repository: the
# Stratum lines the tests send and expect, the block-100000 vector's captured session, the
# protocol document's examples, the circuit fixtures (zkey, wtns, r1cs, proof, key, public
# JSON), the HTTP responses of the fetcher's tests, the example config file and the configs
# in tests, plus the hand-picked seeds under fuzz/seeds/TARGET/. Idempotent: files are named
# by content, so reruns add nothing twice and never remove what fuzzing found.
set -euo pipefail
cd "$(dirname "$0")"
exec python3 - "$@" <<'PY'
import hashlib, json, os, re, glob, shutil

ROOT = os.path.abspath("..")
CORPUS = "corpus"

def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)

def read(rel, mode="r"):
    with open(os.path.join(ROOT, rel), mode) as f:
        return f.read()

def sources(*globs):
    for g in globs:
        for p in sorted(glob.glob(os.path.join(ROOT, g), recursive=True)):
            with open(p, encoding="utf-8", errors="replace") as f:
                yield p, f.read()

# Stratum lines as written in the tests and the built-in pool (raw strings holding JSON-RPC).
rpc = set()
for _, text in sources("stratum/src/**/*.rs", "stratum/tests/**/*.rs", "worker-cli/tests/**/*.rs"):
    for m in re.finditer(r'r#"(\{.*?\})"#', text, re.S):
        s = m.group(1)
        if '"method"' in s or '"result"' in s or '"error"' in s:
            rpc.add(" ".join(s.split()) if "\n" in s else s)
# The protocol document's examples (JSON blocks that start with {"id").
doc = read("docs/protocol.md")
for m in re.finditer(r'```json\n(\{"id".*?)\n```', doc, re.S):
    try:
        rpc.add(json.dumps(json.loads(m.group(1))))
    except ValueError:
        pass

# The block-100000 vector: a real job as a captured session.
job = json.loads(read("stratum/tests/data/block-100000.json"))["job"]
sub = job["mining.subscribe"]
notify = json.dumps(job["mining.notify"])
diff = json.dumps(job["mining.set_difficulty"])
submit_req = job.get("mining.submit", {})
for line in [notify, diff, json.dumps(sub["request"]), json.dumps(job["mining.authorize"]["request"]),
             json.dumps(job["mining.authorize"]["response"])]:
    rpc.add(line)
if submit_req:
    rpc.add(json.dumps(submit_req.get("request", submit_req)))

for line in sorted(rpc):
    for t in ("stratum_message", "client_session", "prover_message", "pool_session"):
        add(t, line + "\n")

# Whole sessions from the pool's side, answering the client's request ids (client_session.rs:
# 1 configure, 2 subscribe, 3 extranonce.subscribe, 4 authorize, 5 suggest_difficulty,
# 6 prover.subscribe, 7 the queued share).
def resp(i, result, error=None):
    return json.dumps({"id": i, "result": result, "error": error})
handshake = [
    resp(1, {"version-rolling": True, "version-rolling.mask": "1fffe000"}),
    resp(2, sub["result"]),
    resp(3, True),
    resp(4, True),
    resp(5, True),
    resp(6, True),
]
session = handshake + [diff, notify, resp(7, True)]
add("client_session", "\n".join(session) + "\n")
add("client_session", "\n".join(handshake + [notify, resp(7, None, [21, "Job not found", None])]) + "\n")
add("stratum_message", "\n".join(session) + "\n")

# The miner's side of the same session, for the built-in pool.
miner = [json.dumps(sub["request"]), json.dumps(job["mining.authorize"]["request"])]
if submit_req:
    miner.append(json.dumps(submit_req.get("request", submit_req)))
add("pool_session", "\n".join(miner) + "\n")

# Circuit fixtures.
fx = "proofs/fixtures"
for name in ("mulchain", "poseidon"):
    # poseidon.zkey (680 KB) would slow every zkey mutation ~5x; mulchain's has every section.
    if name == "mulchain":
        add("zkey", read(f"{fx}/{name}.zkey", "rb"))
    add("r1cs", read(f"{fx}/{name}.r1cs", "rb"))
    wtns = read(f"{fx}/{name}.wtns", "rb")
    add("wtns", wtns)
    proof, vkey, public = (read(f"{fx}/{name}.{k}.json") for k in ("proof", "vkey", "public"))
    add("proof_json", proof + "\0" + vkey + "\0" + public)
    for part in (proof, vkey, public):
        add("proof_json", part)
    # A submit carrying the fixture's proof, as a worker sends it.
    p = json.loads(proof)
    pub = json.loads(public)
    line = json.dumps({"id": 9, "method": "prover.submit", "params": ["rig1", "p1", p, pub]})
    add("prover_message", line + "\n")
    caps = json.dumps({"id": 6, "method": "prover.subscribe", "params": [{
        "protocols": ["groth16"], "curves": ["bn254"], "formats": ["snarkjs"],
        "max_constraints": 1 << 20, "backends": ["cpu"]}]})
    add("pool_session", "\n".join(miner[:2] + [caps, line]) + "\n")
    if len(wtns) <= 24 * 1024:
        note = json.dumps({"id": None, "method": "prover.notify", "params": [{
            "job_id": "p1", "circuit_id": hashlib.sha256(read(f"{fx}/{name}.zkey", "rb")).hexdigest(),
            "zkey_url": "http://0.0.0.0:8081/artifacts/" + hashlib.sha256(read(f"{fx}/{name}.zkey", "rb")).hexdigest(),
            "witness": {"inline": wtns.hex()}, "deadline": 4102444800}]})
        add("prover_message", note + "\n")
        add("client_session", "\n".join(handshake + [note]) + "\n")
    # What the pool's artifact server answers for a witness.
    add("http_response", b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
        + str(len(wtns[:3000])).encode() + b"\r\nConnection: close\r\n\r\n" + wtns[:3000])

# HTTP responses from the fetcher's tests (`canned(b"...")`).
for _, text in sources("stratum/src/http.rs", "stratum/tests/**/*.rs"):
    for m in re.finditer(r'canned\(\s*b"((?:[^"\\]|\\.)*)"', text):
        add("http_response", m.group(1).encode().decode("unicode_escape").encode("latin-1"))

# Icarus: [zero_bits, job_seed, then (len, gap_ms, bytes)...]: the golden job's reply, the
# same split across reads, and after two stray bytes.
golden = bytes.fromhex("000187a2")
add("icarus_replies", bytes([32, 0, 4, 0]) + golden)
add("icarus_replies", bytes([32, 0, 2, 0]) + golden[:2] + bytes([2, 5]) + golden[2:])
add("icarus_replies", bytes([32, 0, 6, 0, 0xa5, 0x5a]) + golden + bytes([0, 120]))
add("icarus_replies", bytes([8, 0, 12, 0]) + bytes.fromhex("deadbeef0102030400018 7a2".replace(" ", "")))

# Config files: the example, and the TOML the tests write.
add("config", read("contrib/config.example.toml"))
for _, text in sources("worker-cli/src/config.rs", "worker-cli/tests/**/*.rs"):
    for m in re.finditer(r'r#"(.*?)"#', text, re.S):
        s = m.group(1)
        if "[[pools]]" in s or re.search(r'^\s*(url|backend|threads|print_time)\s*=', s, re.M):
            add("config", s)
add("config", '[[pools]]\nurl = "stratum+tcp://a:1"\npass = "SECRET-pass"\nuser = "u"\nhttp_token = "SECRET-token"\n')

# Hand-picked seeds.
for d in sorted(glob.glob("seeds/*/")):
    target = os.path.basename(os.path.dirname(d))
    for p in sorted(glob.glob(os.path.join(d, "*"))):
        with open(p, "rb") as f:
            add(target, f.read())

for t in sorted(os.listdir(CORPUS)):
    print(f"{t}: {len(os.listdir(os.path.join(CORPUS, t)))} seeds")
PY
