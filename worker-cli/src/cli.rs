//! The command line: subcommands and flags, following xmrig/cpuminer conventions
//! (`-o URL -u USER -p PASS`, repeated `-o` for failover pools). Every flag can also come from
//! an environment variable (`RIGWORKER_*`) or the TOML config file; flags win, then the
//! environment, then the file.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use backends::prove::arith::ArithPath;

use crate::secret::Secret;

#[derive(Parser, Debug)]
#[command(
    name = "rigworker",
    version,
    about = "Headless mining and proving worker: SHA-256d on CPU, GPU (CUDA, OpenCL, WebGPU) and \
             FPGA/USB-ASIC boards, and Groth16/BN254 proofs of circom circuits, over Stratum",
    long_about = "Headless mining and proving worker for rigs.\n\n\
        Mining: SHA-256d block-header search (Stratum V1 over TCP, TLS or WebSocket, with \
        failover pools) on CPU (SHA-NI, AVX-512, AVX2), CUDA, OpenCL and WebGPU devices, and on \
        Icarus-protocol FPGA boards and USB ASIC sticks.\n\n\
        Proving: Groth16 proofs over BN254 of circom circuits (snarkjs .zkey/.wtns), made alone \
        (`rigworker prove`) or as proving jobs from the pool while mining (`rigworker mine \
        --prove`).\n\n\
        With no pool given, `rigworker mine` mines against the built-in pool on loopback.",
    propagate_version = true
)]
pub struct Cli {
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format.
    #[arg(long, value_enum, global = true, env = "RIGWORKER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

/// Parses a command line as `rigworker` does: clap, then, for `mine`, which pool each
/// per-pool TLS flag belongs to (the -o it follows).
pub fn parse_from<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(argv)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Mine(a), Some(("mine", m))) = (&mut cli.command, matches.subcommand()) {
        a.tls_fingerprint_pools = pools_of_flag(m, "tls_fingerprint");
        a.tls_insecure_pools = pools_of_flag(m, "tls_insecure");
    }
    Ok(cli)
}

/// [`parse_from`] on the process's arguments; prints the error (or help) and exits on failure.
pub fn parse() -> Cli {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// For each value of flag `id`, the index of the -o value given before it on the command line
/// (0 when none was, or when the value came from the environment).
fn pools_of_flag(m: &clap::ArgMatches, id: &str) -> Vec<usize> {
    let Some(flag) = m.indices_of(id) else {
        return Vec::new();
    };
    let from_env = m.value_source(id) != Some(clap::parser::ValueSource::CommandLine);
    let urls: Vec<usize> = match m.value_source("urls") {
        Some(clap::parser::ValueSource::CommandLine) => m
            .indices_of("urls")
            .map(Iterator::collect)
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    flag.map(|at| {
        if from_env {
            return 0;
        }
        urls.iter().filter(|u| **u < at).count().saturating_sub(1)
    })
    .collect()
}

impl MineArgs {
    /// The TLS flags given for pool `index`: its fingerprint and its insecure switch (`None`:
    /// not given for it).
    pub fn tls_flags_for(&self, index: usize) -> (Option<&str>, Option<bool>) {
        let pool_of = |placed: &[usize], i: usize| placed.get(i).copied().unwrap_or(0);
        let fingerprint = self
            .tls_fingerprint
            .iter()
            .enumerate()
            .filter(|(i, _)| pool_of(&self.tls_fingerprint_pools, *i) == index)
            .map(|(_, f)| f.as_str())
            .next_back();
        let insecure = self
            .tls_insecure
            .iter()
            .enumerate()
            .filter(|(i, _)| pool_of(&self.tls_insecure_pools, *i) == index)
            .map(|(_, b)| *b)
            .next_back();
        (fingerprint, insecure)
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at start and moved into its subcommand: boxing the large variants would buy
// nothing but `*` at every use.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Mine against a pool (or, with no -o, against the built-in pool on loopback).
    Mine(MineArgs),
    /// Run the built-in Stratum V1 pool alone.
    Pool(PoolArgs),
    /// Measure each device's hashrate, or (--work prove) proof and MSM times against the CPU.
    Bench(BenchArgs),
    /// List compiled-in backends, the devices they find, and why a backend has none.
    Devices(DevicesArgs),
    /// Make a Groth16 proof from a snarkjs .zkey and a .wtns; print the time of each phase.
    Prove(ProveArgs),
    /// Verify a Groth16 proof against a snarkjs verification key.
    Verify(VerifyArgs),
}

/// Device selection, shared by `mine` and `bench`.
#[derive(Args, Debug, Clone, Default)]
pub struct DeviceArgs {
    // The help is built at run time from what this build contains, so `--help` never lists
    // a backend that was compiled out. Not a `value_parser` list: an unknown name gets the
    // engine's own message (with the compiled-in names) from `select::chosen`.
    #[arg(
        long,
        value_delimiter = ',',
        env = "RIGWORKER_BACKEND",
        help = backend_help()
    )]
    pub backend: Vec<String>,
    /// Device indices within the chosen backends (default: all).
    #[arg(long, value_delimiter = ',', env = "RIGWORKER_DEVICES")]
    pub devices: Vec<usize>,
    /// CPU mining threads (default: one per logical core).
    #[arg(short = 't', long, env = "RIGWORKER_THREADS")]
    pub threads: Option<usize>,
    /// Pin CPU mining thread i to core i.
    #[arg(long, env = "RIGWORKER_CPU_AFFINITY")]
    pub cpu_affinity: bool,
    /// GPU work per launch as log2 of nonces (default: tuned so a launch takes 50-100 ms).
    #[arg(long, env = "RIGWORKER_INTENSITY", value_parser = clap::value_parser!(u32).range(8..=32))]
    pub intensity: Option<u32>,
    /// Force a CPU kernel (portable, sha-ni, avx2, avx512, ...; default: the fastest here).
    #[arg(long, env = "RIGWORKER_CPU_KERNEL")]
    pub cpu_kernel: Option<String>,
    #[command(flatten)]
    pub fpga: FpgaArgs,
}

/// Icarus-protocol FPGA boards and USB ASIC sticks (`docs/fpga.md`).
#[derive(Args, Debug, Clone, Default)]
pub struct FpgaArgs {
    /// Serial ports of FPGA boards / USB ASIC sticks, comma-separated (default: probe
    /// /dev/ttyUSB* and /dev/ttyACM*). Without --backend, mine on these boards only.
    #[arg(long = "fpga", value_delimiter = ',', env = "RIGWORKER_FPGA")]
    pub fpga_ports: Vec<PathBuf>,
    /// Baud rate of the boards' serial line.
    #[arg(long, env = "RIGWORKER_FPGA_BAUD")]
    pub fpga_baud: Option<u32>,
    /// Seconds per hash of a board (Hs, e.g. 2.6316e-9 for 380 MH/s); default: measured by
    /// the probe, then calibrated from the hits.
    #[arg(long, env = "RIGWORKER_FPGA_HS")]
    pub fpga_hs: Option<f64>,
    /// Chips splitting each board's nonce range (1, 2, 4 or 8).
    #[arg(long, env = "RIGWORKER_FPGA_WORK_DIVISION")]
    pub fpga_work_division: Option<u32>,
    /// Leading zero bits of a board's hits: 32 for real boards; the simulated RTL is built
    /// with fewer.
    #[arg(long, env = "RIGWORKER_FPGA_ZERO_BITS", value_parser = clap::value_parser!(u32).range(1..=32))]
    pub fpga_zero_bits: Option<u32>,
    /// Reopen the port after every silent range end (for USB-UARTs that stall).
    #[arg(long, env = "RIGWORKER_FPGA_REOPEN")]
    pub fpga_reopen: bool,
    /// Seconds a probe waits for the golden job's answer.
    #[arg(long, env = "RIGWORKER_FPGA_PROBE_TIMEOUT")]
    pub fpga_probe_timeout: Option<f64>,
    /// Test only: the counter the (simulated) board starts each job from.
    #[arg(long, hide = true)]
    pub fpga_first_counter: Option<u32>,
}

/// "Backends to use ... (compiled in: cpu, cuda, ...)".
fn backend_help() -> String {
    format!(
        "Backends to use, comma-separated, or `all` (compiled in: {}; default: cpu; devices: see `rigworker devices`)",
        crate::select::compiled_names().join(", ")
    )
}

#[derive(Args, Debug, Clone)]
pub struct MineArgs {
    /// Pool URL (stratum+tcp://, stratum+ssl://, ws://, wss://, or Stratum V2:
    /// stratum2+tcp://HOST:PORT/AUTHORITY_KEY). Repeat for failover pools, in order.
    #[arg(
        short = 'o',
        long = "url",
        value_delimiter = ',',
        env = "RIGWORKER_URL"
    )]
    pub urls: Vec<String>,
    /// Pool user (usually WALLET.WORKER). Repeat to give each -o its own.
    #[arg(short = 'u', long = "user", env = "RIGWORKER_USER")]
    pub users: Vec<String>,
    /// Pool password. Repeat to give each -o its own. Never logged.
    #[arg(
        short = 'p',
        long = "pass",
        env = "RIGWORKER_PASS",
        hide_env_values = true
    )]
    pub passwords: Vec<Secret>,
    /// SHA-256 fingerprint of a pool's TLS certificate (hex): pins it, self-signed allowed.
    /// Applies to the -o it follows (given before any -o, or in the environment: to the first
    /// pool).
    #[arg(long, env = "RIGWORKER_TLS_FINGERPRINT", action = clap::ArgAction::Append)]
    pub tls_fingerprint: Vec<String>,
    /// Accept any TLS certificate (encrypted, not authenticated) from the pool of the -o it
    /// follows (given before any -o, or in the environment: the first pool). For testing only:
    /// logs a warning, and is refused together with a --tls-fingerprint for the same pool.
    #[arg(
        long,
        env = "RIGWORKER_TLS_INSECURE",
        action = clap::ArgAction::Append,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub tls_insecure: Vec<bool>,
    /// The pool (index of its -o) each `tls_fingerprint` value belongs to, from where the
    /// flag stood on the command line ([`parse_from`]); a value without one: the first pool.
    #[arg(skip)]
    pub tls_fingerprint_pools: Vec<usize>,
    /// The same for each `tls_insecure` value.
    #[arg(skip)]
    pub tls_insecure_pools: Vec<usize>,
    /// TOML config file (every flag has a key of the same name, with underscores).
    #[arg(short = 'c', long, env = "RIGWORKER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub devices: DeviceArgs,
    /// Seconds between speed lines.
    #[arg(long, env = "RIGWORKER_PRINT_TIME")]
    pub print_time: Option<u64>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, env = "RIGWORKER_DURATION")]
    pub duration: Option<f64>,
    /// Seconds of pool silence after which the connection is considered dead; 0 turns it off.
    #[arg(long, env = "RIGWORKER_KEEPALIVE")]
    pub keepalive: Option<u64>,
    /// While on a backup pool, seconds between checks whether the first pool is back.
    #[arg(long, env = "RIGWORKER_FAILBACK_INTERVAL")]
    pub failback_interval: Option<f64>,
    /// Do not ask the pool for version rolling (BIP310).
    #[arg(long, env = "RIGWORKER_NO_VERSION_ROLLING")]
    pub no_version_rolling: bool,
    /// Ask the pool for this starting difficulty.
    #[arg(long, env = "RIGWORKER_SUGGEST_DIFFICULTY")]
    pub suggest_difficulty: Option<f64>,
    /// Share difficulty of the built-in pool when no -o is given.
    #[arg(long, env = "RIGWORKER_POOL_DIFFICULTY")]
    pub pool_difficulty: Option<f64>,
    /// With no -o: mine against the built-in pool over Stratum V2 (Noise, header-only jobs)
    /// instead of V1. A V2 pool of your own is a `-o stratum2+tcp://HOST:PORT/KEY`.
    #[arg(long, env = "RIGWORKER_SV2")]
    pub sv2: bool,
    /// Write the final summary as JSON to this file.
    #[arg(long, env = "RIGWORKER_SUMMARY_JSON")]
    pub summary_json: Option<PathBuf>,
    /// Pause a device whose temperature is above this many °C; resume it 5 °C lower
    /// (sensors: NVML for NVIDIA, hwmon for AMD GPUs and CPUs; see docs/deploy.md).
    #[arg(long, env = "RIGWORKER_TEMP_LIMIT")]
    pub temp_limit: Option<f64>,
    /// Seconds without progress (while there is work) after which a device's worker is
    /// rebuilt on a new thread; 0 turns the watchdog off (default 30).
    #[arg(long, env = "RIGWORKER_WATCHDOG")]
    pub watchdog: Option<f64>,
    /// Rebuilds of one device before the watchdog disables it (default 3).
    #[arg(long, env = "RIGWORKER_WATCHDOG_REBUILDS")]
    pub watchdog_rebuilds: Option<u32>,
    /// Serve the HTTP API, Prometheus /metrics and the dashboard on this address (`PORT`,
    /// `HOST:PORT` or `[V6]:PORT`; a bare port listens on 127.0.0.1). Off unless given. A
    /// non-loopback address needs --http-token. See docs/api.md.
    #[arg(long, env = "RIGWORKER_HTTP", value_name = "ADDR")]
    pub http: Option<String>,
    /// Bearer token for the API's control requests (pause, resume, pool switch, reload);
    /// without one they are refused. Never logged.
    #[arg(long, env = "RIGWORKER_HTTP_TOKEN", hide_env_values = true)]
    pub http_token: Option<Secret>,
    #[command(flatten)]
    pub proving: MineProvingArgs,
}

/// Proving jobs inside `mine` (`docs/protocol.md`).
#[derive(Args, Debug, Clone, Default)]
pub struct MineProvingArgs {
    /// Take Groth16 proving jobs from the pool (prover.subscribe); hashing pauses while proving.
    #[arg(long, env = "RIGWORKER_PROVE")]
    pub prove: bool,
    /// With no -o: the built-in pool also offers the circuits (NAME.zkey) and witnesses
    /// (NAME.wtns, NAME.*.wtns) of this folder as proving jobs. Implies --prove.
    #[arg(long, env = "RIGWORKER_PROVING_DIR")]
    pub proving_dir: Option<PathBuf>,
    /// Folder of cached proving keys (default: ~/.cache/rigworker/zkeys).
    #[arg(long, env = "RIGWORKER_PROVING_CACHE")]
    pub proving_cache: Option<PathBuf>,
    /// Size bound of that folder in MiB; least recently used keys go first.
    #[arg(long, env = "RIGWORKER_PROVING_CACHE_MB")]
    pub proving_cache_mb: Option<u64>,
    /// Precompute MSM tables for each proving key (more memory, faster repeated proofs).
    #[arg(long, env = "RIGWORKER_PROVE_PRECOMPUTE")]
    pub prove_precompute: bool,
    /// The largest circuit (constraints, rounded down to a power of two) to ask pools for in
    /// `prover.subscribe`; a pool's larger key is refused before it is loaded (default: what
    /// the memory available at start holds).
    #[arg(long, env = "RIGWORKER_PROVE_MAX_CONSTRAINTS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=(1 << 28)))]
    pub prove_max_constraints: Option<u64>,
    /// Force the CPU prover's arithmetic path: ifma, adx or portable (default: the fastest
    /// this CPU has); refused when the CPU lacks it. For measuring one path against another.
    #[arg(long, env = "RIGWORKER_PROVE_ARITH", value_name = "PATH", value_parser = parse_arith)]
    pub prove_arith: Option<ArithPath>,
    /// Where proofs run: cpu, cuda, opencl or wgpu (default: cpu). An operation that fails
    /// on the device runs on the CPU instead (logged, counted in the API and metrics).
    #[arg(long, env = "RIGWORKER_PROVE_BACKEND", default_value = "cpu")]
    pub prove_backend: String,
    /// The device of --prove-backend that proves (its index in `rigworker devices`).
    #[arg(long, env = "RIGWORKER_PROVE_DEVICE", default_value_t = 0)]
    pub prove_device: usize,
    /// With a GPU --prove-backend: where the proof's G2 MSM runs, on the device after the G1
    /// MSMs, or on the CPU at the same time (`bench --work prove --g2-on device,cpu` measures
    /// both).
    #[arg(long, env = "RIGWORKER_PROVE_G2_ON", value_enum, default_value_t = G2On::Device)]
    pub prove_g2_on: G2On,
    /// Do not verify our own proofs before submitting them (on by default).
    #[arg(long, env = "RIGWORKER_NO_VERIFY_PROOFS")]
    pub no_verify_proofs: bool,
    /// Hosts besides the pool's own that proving keys and witnesses may be fetched from,
    /// comma-separated (`*`: any). By default only the host the worker connected to, so a
    /// pool cannot make the rig send requests into its network.
    #[arg(
        long,
        value_delimiter = ',',
        env = "RIGWORKER_PROVING_ARTIFACT_HOSTS",
        value_name = "HOSTS"
    )]
    pub proving_artifact_hosts: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct PoolArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, env = "RIGWORKER_LISTEN")]
    pub listen: Option<String>,
    /// Share difficulty sent to miners (fractional allowed, e.g. 0.001).
    #[arg(long, env = "RIGWORKER_DIFFICULTY")]
    pub difficulty: Option<f64>,
    /// Retarget each miner's difficulty toward one share every N seconds.
    #[arg(long, env = "RIGWORKER_VARDIFF")]
    pub vardiff: Option<f64>,
    /// Seconds between new jobs.
    #[arg(long, env = "RIGWORKER_JOB_INTERVAL")]
    pub job_interval: Option<f64>,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "RIGWORKER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "RIGWORKER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Speak Stratum over WebSocket instead of raw lines.
    #[arg(long, env = "RIGWORKER_WEBSOCKET")]
    pub websocket: bool,
    /// Most simultaneous miner connections.
    #[arg(long, env = "RIGWORKER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds between statistics lines.
    #[arg(long, env = "RIGWORKER_PRINT_TIME")]
    pub print_time: Option<u64>,
    /// TOML config file.
    #[arg(short = 'c', long, env = "RIGWORKER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also offer proving jobs: the circuits (NAME.zkey) and witnesses (NAME.wtns,
    /// NAME.*.wtns) of this folder; every submitted proof is verified.
    #[arg(long, env = "RIGWORKER_PROVING_DIR")]
    pub proving_dir: Option<PathBuf>,
    /// Seconds between a worker's answered proof and its next proving job.
    #[arg(long, env = "RIGWORKER_PROVING_INTERVAL")]
    pub proving_interval: Option<f64>,
    /// Also serve Stratum V2 on this address (e.g. 127.0.0.1:34254); the URL miners use,
    /// with the pool's authority key, is printed at start.
    #[arg(long, env = "RIGWORKER_SV2")]
    pub sv2: Option<String>,
    /// The pool's Stratum V2 authority key file, made on first use (default:
    /// $XDG_STATE_HOME/rigworker/sv2-authority.key or ~/.local/state/rigworker/...).
    #[arg(long, env = "RIGWORKER_SV2_KEY", requires = "sv2")]
    pub sv2_key: Option<PathBuf>,
}

/// `--g2-on` / `--prove-g2-on`: where a GPU proving backend runs the G2 MSM.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum G2On {
    /// On the device, after the G1 MSMs.
    #[default]
    Device,
    /// On the CPU, at the same time as the device runs the G1 MSMs.
    Cpu,
}

impl From<G2On> for backends::prove::G2Placement {
    fn from(g: G2On) -> Self {
        match g {
            G2On::Device => backends::prove::G2Placement::Device,
            G2On::Cpu => backends::prove::G2Placement::Cpu,
        }
    }
}

/// What `bench` measures.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WorkKind {
    /// SHA-256d hashrate per device.
    #[default]
    Hash,
    /// Groth16 proving (circuits of 2^16 and 2^18 constraints) and MSMs of 2^16..2^20 points.
    Prove,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = WorkKind::Hash)]
    pub work: WorkKind,
    /// With --work prove: also the 2^20-constraint circuit, and 2^22 where memory allows (rows
    /// with tables are skipped, with a note, where they would not fit in half the free memory).
    #[arg(long)]
    pub large: bool,
    /// With --work prove: proofs (and MSMs) per size; the figures are medians.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// With --work prove: where the generated benchmark circuits are kept between runs
    /// (default: ~/.cache/rigworker/bench-circuits).
    #[arg(long)]
    pub circuits: Option<PathBuf>,
    /// With --work prove: bench this circuit (snarkjs .zkey, needs --wtns) instead.
    #[arg(long, requires = "wtns")]
    pub zkey: Option<PathBuf>,
    /// Witness for --zkey.
    #[arg(long, requires = "zkey")]
    pub wtns: Option<PathBuf>,
    /// With --work prove: MSM sizes as log2 of points (default 16,18 and 20 with --large); G2
    /// is timed at the smallest.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=24))]
    pub msm_log: Vec<u32>,
    /// With --work prove: also time `snarkjs groth16 prove` (from PATH or $SNARKJS) on the
    /// same files, as the baseline of the same run.
    #[arg(long)]
    pub snarkjs: bool,
    /// With --work prove: also run another prover as a whole process beside `rigworker prove`
    /// (on each arithmetic path this CPU has, or the one --prove-arith names), interleaved,
    /// and report each one's time and peak memory with the ratios: NAME=COMMAND, the command
    /// taking ZKEY WTNS PROOF PUBLIC after its own words (`rapidsnark=/path/to/prover`,
    /// `snarkjs=snarkjs groth16 prove`). Repeatable. Every proof is verified.
    #[arg(long, value_name = "NAME=COMMAND", value_parser = crate::commands::bench_whole::parse_peer)]
    pub against: Vec<crate::commands::bench_whole::Peer>,
    /// Force the CPU prover's arithmetic path: ifma, adx or portable (default: the fastest
    /// this CPU has); refused when the CPU lacks it. For measuring one path against another.
    #[arg(long, env = "RIGWORKER_PROVE_ARITH", value_name = "PATH", value_parser = parse_arith)]
    pub prove_arith: Option<ArithPath>,
    /// With --work prove and a GPU --backend: where its G2 MSM runs, one set of rows each
    /// (device: after the G1 MSMs; cpu: on the CPU at the same time).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "device")]
    pub g2_on: Vec<G2On>,
    #[command(flatten)]
    pub devices: DeviceArgs,
    /// Seconds per device.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Benchmark every CPU kernel this machine supports, not just the default.
    #[arg(long)]
    pub all_kernels: bool,
    /// Also draw the results as an SVG chart to this file: each device's hashrate per
    /// interval (with --work prove: MSM and proving times by size).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fpga: FpgaArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ProveArgs {
    /// snarkjs Groth16 proving key (BN254).
    #[arg(long)]
    pub zkey: PathBuf,
    /// Witness (.wtns) of the same circuit.
    #[arg(long)]
    pub wtns: PathBuf,
    /// Write the proof here (snarkjs proof.json format).
    #[arg(long)]
    pub proof: Option<PathBuf>,
    /// Write the public signals here (snarkjs public.json format).
    #[arg(long)]
    pub public: Option<PathBuf>,
    /// Where the MSMs and NTTs run: cpu, cuda, opencl or wgpu. A GPU falls back to the CPU
    /// for an operation that fails on the device (logged and counted).
    #[arg(long, default_value = "cpu", env = "RIGWORKER_PROVE_BACKEND")]
    pub backend: String,
    /// The device of that backend to prove on (its index in `rigworker devices`).
    #[arg(long, default_value_t = 0, env = "RIGWORKER_PROVE_DEVICE")]
    pub devices: usize,
    /// With a GPU --backend: where the G2 MSM runs, on the device after the G1 MSMs, or on
    /// the CPU at the same time.
    #[arg(long, value_enum, default_value_t = G2On::Device, env = "RIGWORKER_PROVE_G2_ON")]
    pub g2_on: G2On,
    /// Do not verify the proof before writing it (verification is on by default).
    #[arg(long)]
    pub no_verify: bool,
    /// Precompute MSM tables from the key first (slower load, faster proofs: what a worker
    /// that proves the same circuit repeatedly does).
    #[arg(long)]
    pub precompute: bool,
    /// Prove this many times with the key loaded once and kept; timings are medians. A single
    /// proof (the default) instead reads the key part by part as it goes: the least memory.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Force the CPU prover's arithmetic path: ifma, adx or portable (default: the fastest
    /// this CPU has); refused when the CPU lacks it. For measuring one path against another.
    #[arg(long, env = "RIGWORKER_PROVE_ARITH", value_name = "PATH", value_parser = parse_arith)]
    pub prove_arith: Option<ArithPath>,
    /// Threads for the MSMs and NTTs (default: one per logical core).
    #[arg(short = 't', long, env = "RIGWORKER_THREADS")]
    pub threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// snarkjs verification_key.json.
    #[arg(long)]
    pub vkey: PathBuf,
    /// proof.json.
    #[arg(long)]
    pub proof: PathBuf,
    /// public.json.
    #[arg(long)]
    pub public: PathBuf,
}

/// `--prove-arith`: one of the paths [`ArithPath`] names (whether the CPU has it is checked
/// when the command starts, with the list of what it has).
fn parse_arith(s: &str) -> Result<ArithPath, String> {
    s.parse()
}
