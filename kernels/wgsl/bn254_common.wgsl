// The part every BN254 proving kernel in WGSL shares: the launch geometry, 32-bit carry
// helpers and the moduli. `kernels::wgsl::bn254_kernel` puts it first in each kernel's module
// (one module per kernel: each binds its own buffers, see docs/gpu-proving.md).
//
// Launch geometry: a launch of `threads` invocations dispatches ceil(threads / 64) workgroups
// as an x × y grid (WebGPU allows at most 65535 workgroups per dimension), and the backend
// puts `threads` in word 7 of the parameter block, after the kernel's own parameters (at most
// 4 words), so every kernel can return early past it whatever its parameters are.
//
// Every kernel declares its parameter block as `prm` (the functions below read it).
//
// Code size and loops. Mesa's NIR (lavapipe, RADV) inlines every function call, so each call
// site of a field multiplication is a full copy of it; the kernels keep call sites few (one
// curve addition per kernel, one Fq multiplication per Fq2 multiplication) so that lavapipe
// compiles the G2 kernels in seconds rather than minutes. And llvmpipe, lavapipe's back end
// (Mesa 22 at least), silently ends every loop of an invocation once its loops together have
// run 65535 iterations (a guard against endless loops; each 8-lane group of invocations
// counts separately). An Fq multiplication counts 5, an Fq2 multiplication 19, so one G1
// addition about 70 and one G2 addition about 270: on lavapipe an invocation may do at most
// about 900 G1 or 240 G2 additions (the scheduler's defaults, 32 entries per accumulation
// invocation, 32 buckets per reduction segment and 8 sums per window-sum invocation, stay
// well inside, at any MSM size). GPUs have no such limit.

// Must match `kernels::wgsl::BN254_WORKGROUP_SIZE`.
const WORKGROUP_SIZE: u32 = 64u;

// The scratch block that points travel through between storage and the field types (the
// largest value moved at once is a G2 XYZZ point: 64 words).
alias block_t = array<u32, 64>;

// Invocations in this launch (word 7 of the parameters).
fn thread_count() -> u32 {
    return prm[1].w;
}

// This invocation's index in the launch: workgroups are numbered row by row.
fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// a + b + carry_in (carry_in <= 1) as (sum, carry out).
fn adc(a: u32, b: u32, c: u32) -> vec2<u32> {
    let s = a + b;
    let t = s + c;
    return vec2<u32>(t, select(0u, 1u, s < a) | select(0u, 1u, t < s));
}

// a - b - borrow_in (borrow_in <= 1) as (difference, borrow out).
fn sbb(a: u32, b: u32, c: u32) -> vec2<u32> {
    let d = a - b;
    let e = d - c;
    return vec2<u32>(e, select(0u, 1u, a < b) | select(0u, 1u, d < c));
}

// ---- moduli (the field template reads FIELD_P16, FIELD_P32, FIELD_INV, FIELD_ONE) ----

// BN254 base field Fq: p = 21888242871839275222246405745257275088696311157297823662689037894645226208583.
// p as 16 limbs of 16 bits and as 8 words of 32 bits, little-endian.
const fq_P16 = array<u32, 16>(
    0xfd47u, 0xd87cu, 0x8c16u, 0x3c20u, 0xca8du, 0x6871u, 0x6a91u, 0x9781u,
    0x585du, 0x8181u, 0x45b6u, 0xb850u, 0xa029u, 0xe131u, 0x4e72u, 0x3064u);
const fq_P32 = array<u32, 8>(
    0xd87cfd47u, 0x3c208c16u, 0x6871ca8du, 0x97816a91u,
    0x8181585du, 0xb85045b6u, 0xe131a029u, 0x30644e72u);
// -p^-1 mod 2^16 (Montgomery reduction, one 16-bit limb at a time).
const fq_INV: u32 = 0x6389u;
// 1 in Montgomery form: 2^256 mod p.
const fq_ONE = array<u32, 8>(
    0xc58f0d9du, 0xd35d438du, 0xf5c70b3du, 0x0a78eb28u,
    0x7879462cu, 0x666ea36fu, 0x9a07df2fu, 0x0e0a77c1u);

// BN254 scalar field Fr: r = 21888242871839275222246405745257275088548364400416034343698204186575808495617.
const fr_P16 = array<u32, 16>(
    0x0001u, 0xf000u, 0xf593u, 0x43e1u, 0x7091u, 0x79b9u, 0xe848u, 0x2833u,
    0x585du, 0x8181u, 0x45b6u, 0xb850u, 0xa029u, 0xe131u, 0x4e72u, 0x3064u);
const fr_P32 = array<u32, 8>(
    0xf0000001u, 0x43e1f593u, 0x79b97091u, 0x2833e848u,
    0x8181585du, 0xb85045b6u, 0xe131a029u, 0x30644e72u);
const fr_INV: u32 = 0xffffu;
const fr_ONE = array<u32, 8>(
    0x4ffffffbu, 0xac96341cu, 0x9f60cd29u, 0x36fc7695u,
    0x7879462eu, 0x666ea36fu, 0x9a07df2fu, 0x0e0a77c1u);
