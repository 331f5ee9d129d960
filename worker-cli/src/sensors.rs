//! Device temperatures, power draw and fan speed, and the temperature guard that pauses a
//! device that runs too hot (`--temp-limit`).
//!
//! Sources:
//! - NVIDIA GPUs: NVML (`libnvidia-ml.so.1`), opened with dlopen by `nvml-wrapper` at run
//!   time, never linked, so the binary still starts on a rig without the NVIDIA driver.
//! - AMD GPUs: the `amdgpu` hwmon chip of each card, `<sysfs>/class/drm/cardN/device/hwmon/*`.
//! - CPUs: the CPU hwmon chips in `<sysfs>/class/hwmon/*` (`k10temp`, `coretemp`, `zenpower`,
//!   ...). pocl and lavapipe devices are the CPU too, so they get the CPU's reading.
//!
//! Everything is best effort: a missing library, chip or file is "not available" (`None`),
//! never an error, because a worker must mine the same with or without sensors. A device is
//! only given a reading when it can be matched to its sensor without guessing: a wrong card's
//! temperature would pause the wrong device.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use backends::{BackendKind, DeviceInfo};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;

/// One reading of one device; each field is `None` when this rig has no sensor for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Reading {
    /// Degrees Celsius (the GPU die / edge sensor; the CPU package).
    pub temperature_c: Option<f64>,
    /// Watts drawn by the device.
    pub power_w: Option<f64>,
    /// Fan duty, percent of its maximum.
    pub fan_percent: Option<f64>,
}

/// hwmon chip names that measure the CPU itself (not the board, not a disk).
const CPU_CHIPS: &[&str] = &[
    "k10temp",
    "zenpower",
    "coretemp",
    "k8temp",
    "fam15h_power",
    "cpu_thermal",
    "via_cputemp",
];

/// The PCI vendor id of AMD/ATI in `device/vendor`.
const PCI_VENDOR_AMD: &str = "0x1002";

/// One NVML device, listed once at start so each read is one index lookup.
#[derive(Clone, Debug)]
struct NvmlGpu {
    index: u32,
    name: String,
    uuid: Option<String>,
}

/// One AMD card and its `amdgpu` hwmon folder.
#[derive(Clone, Debug, PartialEq)]
pub struct AmdCard {
    /// `card0`, ...
    pub card: String,
    /// PCI address (`0000:03:00.0`), by which cards are ordered.
    pub pci_slot: String,
    pub hwmon: PathBuf,
}

/// What this rig has to read from, found once by [`Sensors::detect`].
pub struct Sensors {
    nvml: Option<Nvml>,
    nvml_gpus: Vec<NvmlGpu>,
    /// Why NVML is not used (for `describe`).
    nvml_missing: Option<String>,
    amd: Vec<AmdCard>,
    cpu: Vec<PathBuf>,
}

impl std::fmt::Debug for Sensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensors")
            .field("nvml_gpus", &self.nvml_gpus)
            .field("amd", &self.amd)
            .field("cpu", &self.cpu)
            .finish()
    }
}

impl Sensors {
    /// NVML (when the NVIDIA driver is installed) and the hwmon chips of `/sys`.
    pub fn detect() -> Sensors {
        let mut s = Sensors::detect_sysfs(Path::new("/sys"));
        // `Nvml::init` dlopens libnvidia-ml.so.1; a rig without the NVIDIA driver gets an
        // error here, and a library that misbehaves must not take the worker down with it.
        match std::panic::catch_unwind(Nvml::init) {
            Ok(Ok(nvml)) => {
                s.nvml_gpus = list_nvml(&nvml);
                s.nvml = Some(nvml);
            }
            Ok(Err(e)) => s.nvml_missing = Some(e.to_string()),
            Err(_) => s.nvml_missing = Some("NVML panicked while starting".into()),
        }
        s
    }

    /// Only the hwmon chips under `sysfs` (the mount point of sysfs: `/sys`, or a copy of
    /// its layout), no NVML.
    pub fn detect_sysfs(sysfs: &Path) -> Sensors {
        Sensors {
            nvml: None,
            nvml_gpus: Vec::new(),
            nvml_missing: Some("not loaded".into()),
            amd: amd_cards(sysfs),
            cpu: cpu_chips(sysfs),
        }
    }

    /// The AMD cards found, in PCI order.
    pub fn amd_cards(&self) -> &[AmdCard] {
        &self.amd
    }

    /// The CPU hwmon folders found.
    pub fn cpu_chips(&self) -> &[PathBuf] {
        &self.cpu
    }

    /// One line saying what was found, for the log at start.
    pub fn describe(&self) -> String {
        let nvml = match (&self.nvml, &self.nvml_missing) {
            (Some(_), _) => format!("NVML: {} GPU(s)", self.nvml_gpus.len()),
            (None, Some(why)) => format!("NVML: none ({why})"),
            (None, None) => "NVML: none".into(),
        };
        let cpu: Vec<String> = self
            .cpu
            .iter()
            .filter_map(|p| read_trimmed(&p.join("name")))
            .collect();
        format!(
            "{nvml}; amdgpu: {} card(s); CPU chips: {}",
            self.amd.len(),
            if cpu.is_empty() {
                "none".into()
            } else {
                cpu.join(", ")
            }
        )
    }

    /// The current reading of `device`; all `None` when it has no sensor or cannot be matched
    /// to one for sure.
    pub fn read(&self, device: &DeviceInfo) -> Reading {
        match vendor(device) {
            Vendor::Cpu => self.read_cpu(),
            Vendor::Nvidia => self
                .nvml_index(device)
                .and_then(|i| self.read_nvml(i))
                .unwrap_or_default(),
            Vendor::Amd => self
                .amd_card(device)
                .map(|c| read_amdgpu(&c.hwmon))
                .unwrap_or_default(),
            Vendor::Unknown => Reading::default(),
        }
    }

    fn read_cpu(&self) -> Reading {
        // Several chips on a multi-socket board (one coretemp per package): the hottest one
        // is what a limit must look at; power adds up.
        let mut out = Reading::default();
        for chip in &self.cpu {
            let r = read_cpu_chip(chip);
            out.temperature_c = max_opt(out.temperature_c, r.temperature_c);
            out.power_w = match (out.power_w, r.power_w) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
        out
    }

    /// The NVML index of a CUDA/OpenCL/WebGPU NVIDIA device.
    fn nvml_index(&self, device: &DeviceInfo) -> Option<u32> {
        let gpus = &self.nvml_gpus;
        let same_name = |g: &&NvmlGpu| g.name.eq_ignore_ascii_case(device.name.trim());
        if device.backend == BackendKind::Cuda {
            // CUDA's index i is NVML's (PCI-ordered) i-th visible GPU when CUDA orders by
            // PCI bus (CUDA_DEVICE_ORDER=PCI_BUS_ID, set by contrib/rigworker.service) or the
            // cards are alike. The name check catches the remaining case (mixed cards, CUDA's
            // fastest-first order) instead of reading the wrong card.
            let visible = cuda_visible(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref());
            let candidate = match visible {
                Some(list) => list.get(device.index).and_then(|v| match v {
                    Visible::Index(i) => gpus.iter().find(|g| g.index == *i),
                    Visible::Uuid(u) => gpus
                        .iter()
                        .find(|g| g.uuid.as_deref().is_some_and(|id| id.starts_with(u))),
                }),
                None => gpus.get(device.index),
            };
            if let Some(g) = candidate.filter(same_name) {
                return Some(g.index);
            }
        }
        // Otherwise only a name that one GPU alone has identifies it.
        let mut named = gpus.iter().filter(same_name);
        match (named.next(), named.next()) {
            (Some(g), None) => Some(g.index),
            _ => None,
        }
    }

    fn read_nvml(&self, index: u32) -> Option<Reading> {
        let nvml = self.nvml.as_ref()?;
        let dev = nvml.device_by_index(index).ok()?;
        // Each value is its own call: a GPU without fans (passively cooled data-centre
        // cards) answers NotSupported for the fan and still has a temperature.
        Some(Reading {
            temperature_c: dev.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
            power_w: dev.power_usage().ok().map(|mw| f64::from(mw) / 1e3),
            fan_percent: dev.fan_speed(0).ok().map(f64::from),
        })
    }

    /// The card of an AMD GPU: only when the rig has exactly one, since OpenCL and Vulkan
    /// device names do not say which card they are.
    fn amd_card(&self, _device: &DeviceInfo) -> Option<&AmdCard> {
        match self.amd.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

fn list_nvml(nvml: &Nvml) -> Vec<NvmlGpu> {
    let n = nvml.device_count().unwrap_or(0);
    (0..n)
        .filter_map(|index| {
            let d = nvml.device_by_index(index).ok()?;
            Some(NvmlGpu {
                index,
                name: d.name().ok()?.trim().to_string(),
                uuid: d.uuid().ok(),
            })
        })
        .collect()
}

/// One entry of CUDA_VISIBLE_DEVICES.
#[derive(Debug, PartialEq)]
enum Visible {
    Index(u32),
    /// `GPU-xxxxxxxx...` (a prefix is enough for CUDA, so it is here too).
    Uuid(String),
}

/// CUDA_VISIBLE_DEVICES as CUDA reads it: entries up to the first invalid one.
fn cuda_visible(value: Option<&str>) -> Option<Vec<Visible>> {
    let value = value?;
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim) {
        if let Ok(i) = part.parse::<u32>() {
            out.push(Visible::Index(i));
        } else if part.starts_with("GPU-") && part.len() > 4 {
            out.push(Visible::Uuid(part.to_string()));
        } else {
            // MIG-... or garbage: CUDA ignores the rest; we cannot map it to NVML's list.
            break;
        }
    }
    Some(out)
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Vendor {
    Cpu,
    Nvidia,
    Amd,
    Unknown,
}

fn vendor(d: &DeviceInfo) -> Vendor {
    let text = format!("{} {}", d.name, d.detail).to_ascii_lowercase();
    match d.backend {
        BackendKind::Cpu => Vendor::Cpu,
        BackendKind::Cuda => Vendor::Nvidia,
        BackendKind::OpenCl | BackendKind::Wgpu => {
            // pocl and lavapipe run on the CPU: their kind is in the detail ("…, cpu, …",
            // "Vulkan cpu (…)").
            let words: Vec<&str> = text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect();
            if words.contains(&"cpu") || text.contains("llvmpipe") || text.contains("pthread") {
                Vendor::Cpu
            } else if ["nvidia", "geforce", "quadro", "tesla"]
                .iter()
                .any(|w| words.contains(w))
            {
                Vendor::Nvidia
            } else if words.iter().any(|w| {
                matches!(*w, "amd" | "radeon" | "radv" | "amdgpu")
                    || (w.len() > 3
                        && w.starts_with("gfx")
                        && w[3..].chars().all(|c| c.is_ascii_hexdigit()))
            }) {
                Vendor::Amd
            } else {
                Vendor::Unknown
            }
        }
        _ => Vendor::Unknown,
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// A sysfs integer file (hwmon values are integers in milli-units or micro-units).
fn read_int(p: &Path) -> Option<i64> {
    read_trimmed(p)?.parse().ok()
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Sorted folder entries (sysfs order is creation order; sorted keeps results repeatable).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn cpu_chips(sysfs: &Path) -> Vec<PathBuf> {
    entries(&sysfs.join("class/hwmon"))
        .into_iter()
        .filter(|h| read_trimmed(&h.join("name")).is_some_and(|n| CPU_CHIPS.contains(&n.as_str())))
        .collect()
}

fn amd_cards(sysfs: &Path) -> Vec<AmdCard> {
    let mut cards: Vec<AmdCard> = entries(&sysfs.join("class/drm"))
        .into_iter()
        .filter_map(|card_dir| {
            let card = card_dir.file_name()?.to_str()?.to_string();
            // `card0` only, not its connectors (`card0-DP-1`) or render nodes.
            if !(card.len() > 4 && card.starts_with("card") && card[4..].parse::<u32>().is_ok()) {
                return None;
            }
            let dev = card_dir.join("device");
            if read_trimmed(&dev.join("vendor")).as_deref() != Some(PCI_VENDOR_AMD) {
                return None;
            }
            let hwmon = entries(&dev.join("hwmon"))
                .into_iter()
                .find(|h| read_trimmed(&h.join("name")).as_deref() == Some("amdgpu"))?;
            let pci_slot = std::fs::read_to_string(dev.join("uevent"))
                .ok()
                .and_then(|u| {
                    u.lines()
                        .find_map(|l| l.strip_prefix("PCI_SLOT_NAME=").map(str::to_string))
                })
                .unwrap_or_default();
            Some(AmdCard {
                card,
                pci_slot,
                hwmon,
            })
        })
        .collect();
    cards.sort_by(|a, b| a.pci_slot.cmp(&b.pci_slot).then(a.card.cmp(&b.card)));
    cards
}

/// `tempN_input` (millidegrees) of the input labelled one of `labels` (first match wins, in
/// the order of `labels`); without such a label, the hottest input.
fn temperature(chip: &Path, labels: &[&str]) -> Option<f64> {
    let mut inputs: Vec<(Option<String>, f64)> = Vec::new();
    for p in entries(chip) {
        let Some(file) = p.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(n) = file
            .strip_prefix("temp")
            .and_then(|r| r.strip_suffix("_input"))
        else {
            continue;
        };
        let Some(milli) = read_int(&p) else {
            continue;
        };
        let label = read_trimmed(&chip.join(format!("temp{n}_label")));
        inputs.push((label, milli as f64 / 1e3));
    }
    for want in labels {
        if let Some((_, t)) = inputs
            .iter()
            .find(|(l, _)| l.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(want)))
        {
            return Some(*t);
        }
    }
    inputs.iter().map(|(_, t)| *t).reduce(f64::max)
}

/// Watts from `powerN_average` or `powerN_input` (microwatts), summed over N.
fn power(chip: &Path) -> Option<f64> {
    let mut total: Option<f64> = None;
    for n in 1..=8 {
        // amdgpu has `power1_average` on older kernels and `power1_input` on newer ones, some
        // kernels both (the same value): one per N.
        let uw = read_int(&chip.join(format!("power{n}_average")))
            .or_else(|| read_int(&chip.join(format!("power{n}_input"))));
        if let Some(uw) = uw {
            total = Some(total.unwrap_or(0.0) + uw as f64 / 1e6);
        }
    }
    total
}

/// Fan duty in percent: `pwm1` (0..=255) or `fan1_input` against `fan1_max` (RPM).
fn fan(chip: &Path) -> Option<f64> {
    if let Some(pwm) = read_int(&chip.join("pwm1")) {
        return Some((pwm as f64 / 255.0 * 100.0).clamp(0.0, 100.0));
    }
    let rpm = read_int(&chip.join("fan1_input"))?;
    let max = read_int(&chip.join("fan1_max")).filter(|&m| m > 0)?;
    Some((rpm as f64 / max as f64 * 100.0).clamp(0.0, 100.0))
}

/// An `amdgpu` chip: the edge sensor (what other tools call "the GPU temperature"; the
/// junction hot spot runs 10-20 °C above it and has its own, higher limit).
pub fn read_amdgpu(chip: &Path) -> Reading {
    Reading {
        temperature_c: temperature(chip, &["edge"]),
        power_w: power(chip),
        fan_percent: fan(chip),
    }
}

/// A CPU chip. Tdie before Tctl: on some Ryzen/Threadripper parts Tctl carries an offset of
/// up to 27 °C meant for fan control, not a real temperature.
pub fn read_cpu_chip(chip: &Path) -> Reading {
    Reading {
        temperature_c: temperature(chip, &["Tdie", "Tctl", "Package id 0"]),
        power_w: power(chip),
        // A CPU's fan is on the board's chip, which does not say which fan is the CPU's.
        fan_percent: None,
    }
}

/// What [`TempGuard::update`] asks the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardAction {
    /// Nothing changes.
    Keep,
    /// Stop giving the device work: it is above the limit.
    Pause,
    /// Give the device work again: it has cooled to the resume temperature.
    Resume,
}

/// Pauses a device above `limit` °C and resumes it at `limit - HYSTERESIS_C`, so a device
/// near its limit is not switched on and off at every reading.
#[derive(Clone, Debug)]
pub struct TempGuard {
    limit_c: f64,
    paused: bool,
}

impl TempGuard {
    /// How far below the limit a paused device must cool before it resumes.
    pub const HYSTERESIS_C: f64 = 5.0;

    /// A guard for `--temp-limit limit_c`: a number in 30..=120 °C, the range where a real
    /// limit lies (below it a device never runs, above it the hardware throttles itself).
    pub fn new(limit_c: f64) -> Result<TempGuard> {
        if !(limit_c.is_finite() && (30.0..=120.0).contains(&limit_c)) {
            bail!("--temp-limit must be between 30 and 120 °C, got {limit_c}");
        }
        Ok(TempGuard {
            limit_c,
            paused: false,
        })
    }

    pub fn limit_c(&self) -> f64 {
        self.limit_c
    }

    pub fn resume_c(&self) -> f64 {
        self.limit_c - Self::HYSTERESIS_C
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Feeds one reading. `None` (no reading this time) changes nothing: a paused device
    /// stays paused until a reading says it has cooled, because a sensor that stops answering
    /// while the device is hot is no proof that it cooled.
    pub fn update(&mut self, temperature_c: Option<f64>) -> GuardAction {
        let Some(t) = temperature_c.filter(|t| t.is_finite()) else {
            return GuardAction::Keep;
        };
        match (self.paused, t) {
            (false, t) if t > self.limit_c => {
                self.paused = true;
                GuardAction::Pause
            }
            (true, t) if t <= self.resume_c() => {
                self.paused = false;
                GuardAction::Resume
            }
            _ => GuardAction::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A sysfs tree in a fresh temp folder, removed on drop.
    struct FakeSys(PathBuf);

    impl FakeSys {
        fn new(tag: &str) -> FakeSys {
            let d = std::env::temp_dir().join(format!(
                "rigworker-sensors-{tag}-{}-{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            fs::create_dir_all(&d).unwrap();
            FakeSys(d)
        }
        fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, format!("{text}\n")).unwrap();
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn dev(backend: BackendKind, index: usize, name: &str, detail: &str) -> DeviceInfo {
        DeviceInfo {
            backend,
            index,
            name: name.into(),
            compute_units: 1,
            memory_bytes: None,
            detail: detail.into(),
        }
    }

    /// A Ryzen (k10temp with Tctl offset), an nvme chip that must be ignored, one amdgpu
    /// card with connectors and a render node beside it.
    fn ryzen_with_one_radeon(s: &FakeSys) {
        s.write("class/hwmon/hwmon0/name", "nvme");
        s.write("class/hwmon/hwmon0/temp1_input", "99000");
        s.write("class/hwmon/hwmon1/name", "k10temp");
        s.write("class/hwmon/hwmon1/temp1_input", "75500");
        s.write("class/hwmon/hwmon1/temp1_label", "Tctl");
        s.write("class/hwmon/hwmon1/temp2_input", "48250");
        s.write("class/hwmon/hwmon1/temp2_label", "Tdie");
        s.write("class/hwmon/hwmon1/temp3_input", "51000");
        s.write("class/hwmon/hwmon1/temp3_label", "Tccd1");
        let card = "class/drm/card1/device";
        s.write(&format!("{card}/vendor"), "0x1002");
        s.write(
            &format!("{card}/uevent"),
            "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_SLOT_NAME=0000:03:00.0",
        );
        let h = format!("{card}/hwmon/hwmon4");
        s.write(&format!("{h}/name"), "amdgpu");
        s.write(&format!("{h}/temp1_input"), "61000");
        s.write(&format!("{h}/temp1_label"), "edge");
        s.write(&format!("{h}/temp2_input"), "78000");
        s.write(&format!("{h}/temp2_label"), "junction");
        s.write(&format!("{h}/power1_average"), "187000000");
        s.write(&format!("{h}/pwm1"), "102");
        s.write("class/drm/card1-DP-1/status", "connected");
        s.write("class/drm/renderD128/dev", "226:128");
    }

    #[test]
    fn reads_cpu_and_amd_gpu_from_a_sysfs_tree() {
        let s = FakeSys::new("ryzen");
        ryzen_with_one_radeon(&s);
        let sensors = Sensors::detect_sysfs(&s.0);
        assert_eq!(sensors.cpu_chips(), &[s.0.join("class/hwmon/hwmon1")]);
        assert_eq!(sensors.amd_cards().len(), 1);
        assert_eq!(sensors.amd_cards()[0].card, "card1");
        assert_eq!(sensors.amd_cards()[0].pci_slot, "0000:03:00.0");

        let cpu = sensors.read(&dev(BackendKind::Cpu, 0, "AMD Ryzen 9 5950X", "avx2"));
        // Tdie, not the offset Tctl, and not the nvme's 99 °C.
        assert_eq!(cpu.temperature_c, Some(48.25));
        assert_eq!(cpu.power_w, None);
        assert_eq!(cpu.fan_percent, None);

        let radeon = Reading {
            temperature_c: Some(61.0),
            power_w: Some(187.0),
            fan_percent: Some(40.0),
        };
        let cl = dev(
            BackendKind::OpenCl,
            1,
            "gfx1030",
            "AMD Accelerated Parallel Processing, gpu, OpenCL 2.0",
        );
        assert_eq!(sensors.read(&cl), radeon);
        let vk = dev(
            BackendKind::Wgpu,
            0,
            "AMD Radeon RX 6800 (RADV NAVI21)",
            "Vulkan discrete GPU (radv Mesa 22.3.6)",
        );
        assert_eq!(sensors.read(&vk), radeon);
        // pocl and lavapipe are the CPU.
        let pocl = dev(
            BackendKind::OpenCl,
            0,
            "cpu-haswell-AMD Ryzen 9 5950X 16-Core Processor",
            "Portable Computing Language, cpu, OpenCL 3.0",
        );
        assert_eq!(sensors.read(&pocl).temperature_c, Some(48.25));
        let lavapipe = dev(
            BackendKind::Wgpu,
            1,
            "llvmpipe (LLVM 15.0.6, 256 bits)",
            "Vulkan cpu (llvmpipe Mesa 22.3.6)",
        );
        assert_eq!(sensors.read(&lavapipe).temperature_c, Some(48.25));
        // No NVML here: an NVIDIA device has nothing, and no error.
        let cuda = dev(BackendKind::Cuda, 0, "NVIDIA GeForce RTX 3090", "sm_86");
        assert_eq!(sensors.read(&cuda), Reading::default());
        assert!(
            sensors.describe().contains("k10temp"),
            "{}",
            sensors.describe()
        );
    }

    #[test]
    fn several_intel_packages_take_the_hottest_and_fans_scale_by_rpm() {
        let s = FakeSys::new("xeon");
        for (h, pkg, core) in [("hwmon2", "55000", "60000"), ("hwmon3", "71000", "52000")] {
            s.write(&format!("class/hwmon/{h}/name"), "coretemp");
            s.write(&format!("class/hwmon/{h}/temp1_input"), pkg);
            s.write(&format!("class/hwmon/{h}/temp1_label"), "Package id 0");
            s.write(&format!("class/hwmon/{h}/temp2_input"), core);
            s.write(&format!("class/hwmon/{h}/temp2_label"), "Core 0");
        }
        // zenpower-style power (microwatts, several inputs add up).
        s.write("class/hwmon/hwmon5/name", "zenpower");
        s.write("class/hwmon/hwmon5/power1_input", "45500000");
        s.write("class/hwmon/hwmon5/power2_input", "12500000");
        let sensors = Sensors::detect_sysfs(&s.0);
        let r = sensors.read(&dev(BackendKind::Cpu, 0, "Xeon", "sha-ni"));
        // The second package's "Package id 0" (its own package sensor) is hotter.
        assert_eq!(r.temperature_c, Some(71.0));
        assert_eq!(r.power_w, Some(58.0));

        // A card with RPM fans and no pwm file; a chip without a label gets its hottest input.
        s.write("fan/fan1_input", "1650");
        s.write("fan/fan1_max", "3300");
        s.write("fan/temp1_input", "40000");
        s.write("fan/temp2_input", "45000");
        s.write("fan/power1_input", "90000000");
        let r = read_amdgpu(&s.0.join("fan"));
        assert_eq!(r.fan_percent, Some(50.0));
        assert_eq!(r.temperature_c, Some(45.0));
        assert_eq!(r.power_w, Some(90.0));
    }

    #[test]
    fn two_amd_cards_are_ordered_by_pci_slot_and_not_guessed() {
        let s = FakeSys::new("two");
        for (card, slot) in [("card0", "0000:0a:00.0"), ("card1", "0000:03:00.0")] {
            let d = format!("class/drm/{card}/device");
            s.write(&format!("{d}/vendor"), "0x1002");
            s.write(&format!("{d}/uevent"), &format!("PCI_SLOT_NAME={slot}"));
            s.write(&format!("{d}/hwmon/hwmon0/name"), "amdgpu");
            s.write(&format!("{d}/hwmon/hwmon0/temp1_input"), "50000");
        }
        // An NVIDIA card's drm node is not an AMD card.
        s.write("class/drm/card2/device/vendor", "0x10de");
        s.write("class/drm/card2/device/hwmon/hwmon9/name", "amdgpu");
        let sensors = Sensors::detect_sysfs(&s.0);
        let names: Vec<&str> = sensors
            .amd_cards()
            .iter()
            .map(|c| c.card.as_str())
            .collect();
        assert_eq!(names, ["card1", "card0"]);
        let gpu = dev(
            BackendKind::OpenCl,
            0,
            "gfx1030",
            "AMD APP, gpu, OpenCL 2.0",
        );
        assert_eq!(sensors.read(&gpu), Reading::default());
    }

    #[test]
    fn missing_and_unreadable_files_are_not_errors() {
        let s = FakeSys::new("empty");
        let none = Sensors::detect_sysfs(&s.0.join("does-not-exist"));
        assert_eq!(
            none.read(&dev(BackendKind::Cpu, 0, "x", "y")),
            Reading::default()
        );
        s.write("class/hwmon/hwmon0/name", "k10temp");
        s.write("class/hwmon/hwmon0/temp1_input", "not a number");
        let sensors = Sensors::detect_sysfs(&s.0);
        assert_eq!(sensors.cpu_chips().len(), 1);
        assert_eq!(
            sensors.read(&dev(BackendKind::Cpu, 0, "x", "y")),
            Reading::default()
        );
        let fpga = dev(BackendKind::Fpga, 0, "Icarus", "/dev/ttyUSB0");
        assert_eq!(sensors.read(&fpga), Reading::default());
    }

    /// Whatever this machine has (a container may have no hwmon, no NVIDIA driver), detection
    /// and reading work, and a value that is there is in physical units.
    #[test]
    fn the_real_sysfs_and_nvml_of_this_machine() {
        let sensors = Sensors::detect();
        println!("{}", sensors.describe());
        let mut devices = vec![dev(BackendKind::Cpu, 0, "cpu", "")];
        for (i, g) in sensors.nvml_gpus.iter().enumerate() {
            devices.push(dev(BackendKind::Cuda, i, &g.name, ""));
        }
        for d in &devices {
            let r = sensors.read(d);
            println!("{}#{}: {r:?}", d.backend, d.index);
            if let Some(t) = r.temperature_c {
                // Millidegrees read as degrees would be thousands.
                assert!((-60.0..200.0).contains(&t), "{t} °C");
            }
            if let Some(p) = r.power_w {
                assert!((0.0..5000.0).contains(&p), "{p} W");
            }
            if let Some(f) = r.fan_percent {
                assert!((0.0..=100.0).contains(&f), "{f} %");
            }
        }
        // Every NVML GPU the driver lists is matched back to itself.
        for (i, g) in sensors.nvml_gpus.iter().enumerate() {
            let d = dev(BackendKind::Cuda, i, &g.name, "");
            if std::env::var_os("CUDA_VISIBLE_DEVICES").is_none() {
                assert_eq!(sensors.nvml_index(&d), Some(g.index));
            }
        }
    }

    /// The engine reads sensors from its own thread.
    #[test]
    fn sensors_can_move_to_another_thread() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Sensors>();
        let s = Sensors::detect_sysfs(Path::new("/nonexistent"));
        let r = std::thread::spawn(move || s.read(&dev(BackendKind::Cpu, 0, "x", "y")))
            .join()
            .unwrap();
        assert_eq!(r, Reading::default());
    }

    #[test]
    fn cuda_visible_devices_is_parsed_as_cuda_does() {
        assert_eq!(cuda_visible(None), None);
        assert_eq!(
            cuda_visible(Some("2, 0,GPU-8f3a,MIG-x,1")),
            Some(vec![
                Visible::Index(2),
                Visible::Index(0),
                Visible::Uuid("GPU-8f3a".into())
            ])
        );
        assert_eq!(cuda_visible(Some("")), Some(vec![]));
    }

    #[test]
    fn nvidia_devices_match_by_index_and_name_never_by_guess() {
        let mut s = Sensors::detect_sysfs(Path::new("/nonexistent"));
        s.nvml_gpus = vec![
            NvmlGpu {
                index: 0,
                name: "NVIDIA GeForce RTX 3060".into(),
                uuid: Some("GPU-aaaa".into()),
            },
            NvmlGpu {
                index: 1,
                name: "NVIDIA GeForce RTX 4090".into(),
                uuid: Some("GPU-bbbb".into()),
            },
            NvmlGpu {
                index: 2,
                name: "NVIDIA GeForce RTX 3060".into(),
                uuid: Some("GPU-cccc".into()),
            },
        ];
        // Tests never set CUDA_VISIBLE_DEVICES (that would race other tests); skip if the
        // environment did.
        if std::env::var_os("CUDA_VISIBLE_DEVICES").is_some() {
            return;
        }
        let cuda = |i, n| dev(BackendKind::Cuda, i, n, "");
        // PCI order: index and name agree.
        assert_eq!(s.nvml_index(&cuda(2, "NVIDIA GeForce RTX 3060")), Some(2));
        // Fastest first: CUDA's 0 is the 4090, NVML's 0 a 3060: the unique name decides.
        assert_eq!(s.nvml_index(&cuda(0, "NVIDIA GeForce RTX 4090")), Some(1));
        // CUDA's 1 is some 3060, but which? Not guessed.
        assert_eq!(s.nvml_index(&cuda(1, "NVIDIA GeForce RTX 3060")), None);
        // OpenCL/Vulkan: only a unique name.
        let cl = dev(
            BackendKind::OpenCl,
            3,
            "NVIDIA GeForce RTX 4090",
            "NVIDIA CUDA, gpu, OpenCL 3.0",
        );
        assert_eq!(vendor(&cl), Vendor::Nvidia);
        assert_eq!(s.nvml_index(&cl), Some(1));
        let cl = dev(
            BackendKind::OpenCl,
            0,
            "NVIDIA GeForce RTX 3060",
            "NVIDIA CUDA, gpu, OpenCL 3.0",
        );
        assert_eq!(s.nvml_index(&cl), None);
        // No NVML loaded: no reading even for a matched index.
        assert_eq!(
            s.read(&cuda(2, "NVIDIA GeForce RTX 3060")),
            Reading::default()
        );
    }

    #[test]
    fn temp_guard_pauses_above_the_limit_and_resumes_five_below() {
        let mut g = TempGuard::new(80.0).unwrap();
        assert_eq!(g.resume_c(), 75.0);
        let steps = [
            (Some(70.0), GuardAction::Keep, false),
            // At the limit is allowed; above it is not.
            (Some(80.0), GuardAction::Keep, false),
            (Some(80.5), GuardAction::Pause, true),
            (Some(85.0), GuardAction::Keep, true),
            // Cooling, but not yet 5 °C below.
            (Some(79.0), GuardAction::Keep, true),
            (Some(75.1), GuardAction::Keep, true),
            // No reading: stays paused.
            (None, GuardAction::Keep, true),
            (Some(f64::NAN), GuardAction::Keep, true),
            (Some(75.0), GuardAction::Resume, false),
            (Some(79.9), GuardAction::Keep, false),
            (None, GuardAction::Keep, false),
            (Some(90.0), GuardAction::Pause, true),
            (Some(20.0), GuardAction::Resume, false),
        ];
        for (i, (t, action, paused)) in steps.into_iter().enumerate() {
            assert_eq!(g.update(t), action, "step {i}: {t:?}");
            assert_eq!(g.is_paused(), paused, "step {i}");
        }
    }

    #[test]
    fn temp_limit_outside_a_real_range_is_an_error() {
        for bad in [0.0, 29.9, 120.1, -5.0, f64::NAN, f64::INFINITY] {
            let e = TempGuard::new(bad).unwrap_err().to_string();
            assert!(e.contains("--temp-limit"), "{bad}: {e}");
        }
        assert!(TempGuard::new(30.0).is_ok() && TempGuard::new(120.0).is_ok());
    }
}
