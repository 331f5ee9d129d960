// SHA-256d block-header nonce search in WGSL (32-bit integers only).
//
// The host does everything that does not depend on the nonce once per job (see
// `backends/src/wgpu.rs`): the midstate of header bytes 0..64, rounds 0..=2 of the second block,
// round 3 as a function linear in the nonce word, and the nonce-independent parts of the
// schedule. Each invocation then hashes PER_INVOCATION consecutive nonces from round 4 of the
// second block, and stops the second hash at round 60, because only digest word 7 is needed
// to reject a nonce. Straight-line code (no loops, no arrays) keeps every value in a register
// on every driver; the skipped padding words are folded into constants.
//
// A nonce is a candidate when digest word 7, read little-endian (as `ScanTarget` reads it),
// is <= the target's top word. Candidates go to `out.nonces` through an atomic counter. The
// counter keeps counting past the buffer's capacity, so the host knows when (and by how much)
// the buffer overflowed: it then grows the buffer and rescans that batch, so no nonce is lost.
// The host re-checks every candidate against the full 256-bit target.
//
// Notation follows FIPS 180-4: `bsig*` are the round functions, `ssig*` the schedule
// functions. All u32 arithmetic wraps, as SHA-256 needs.

struct Params {
    // State after block 1 (header bytes 0..64): words 0..4 and 4..8.
    mid_lo: vec4<u32>,
    mid_hi: vec4<u32>,
    // State a..h after rounds 0..=2 of block 2.
    st3_lo: vec4<u32>,
    st3_hi: vec4<u32>,
    // a4, e4 (after round 3 with W3 = 0: a and e are then `a4 + W3`, `e4 + W3`), W16, W17.
    pre: vec4<u32>,
    // The nonce-independent parts of W18, W19, W31, W32.
    pre2: vec4<u32>,
    // First nonce of this dispatch, nonces in it, the target's top word, unused.
    run: vec4<u32>,
}

struct Found {
    // Candidates found; may exceed arrayLength(&nonces) (the host then rescans bigger).
    count: atomic<u32>,
    nonces: array<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: Found;

// Must match `WORKGROUP_SIZE` and `PER_INVOCATION` in backends/src/wgpu.rs.
const WORKGROUP_SIZE: u32 = 64u;
const PER_INVOCATION: u32 = 4u;

// Round 0 of the second hash starts from the IV, so all of it but W0 is constant: after it
// a = W0 + H2_A1 and e = W0 + H2_E1.
const H2_A1: u32 = 0xfc08884du;
const H2_E1: u32 = 0x98c7e2a2u;
// sigma1(256) (W17), sigma0(0x80000000) (W23), sigma0(256) (W30) of the second hash, and
// sigma0(640), part of W30 of block 2.
const H2_W17C: u32 = 0x00a00000u;
const H2_W23C: u32 = 0x11002000u;
const H2_W30C: u32 = 0x00400022u;
const B2_W30C: u32 = 0x00a00055u;


struct St { a: u32, b: u32, c: u32, d: u32, e: u32, f: u32, g: u32, h: u32 }

fn bsig0(x: u32) -> u32 {
    return ((x >> 2u) | (x << 30u)) ^ ((x >> 13u) | (x << 19u)) ^ ((x >> 22u) | (x << 10u));
}
fn bsig1(x: u32) -> u32 {
    return ((x >> 6u) | (x << 26u)) ^ ((x >> 11u) | (x << 21u)) ^ ((x >> 25u) | (x << 7u));
}
fn ssig0(x: u32) -> u32 {
    return ((x >> 7u) | (x << 25u)) ^ ((x >> 18u) | (x << 14u)) ^ (x >> 3u);
}
fn ssig1(x: u32) -> u32 {
    return ((x >> 17u) | (x << 15u)) ^ ((x >> 19u) | (x << 13u)) ^ (x >> 10u);
}

// One round; `kw` is K[t] + W[t]. Returning the shifted state (instead of moving eight
// variables) costs nothing once the compiler renames the values.
fn rnd(s: St, kw: u32) -> St {
    let t1 = s.h + kw + bsig1(s.e) + (s.g ^ (s.e & (s.f ^ s.g)));
    let t2 = bsig0(s.a) + (s.b ^ ((s.a ^ s.b) & (s.b ^ s.c)));
    return St(t1 + t2, s.a, s.b, s.c, s.d + t1, s.e, s.f, s.g);
}

// SHA-256 reads the little-endian header nonce big-endian, and `ScanTarget` reads the
// big-endian digest word little-endian: both are a byte swap.
fn bswap(x: u32) -> u32 {
    return (x << 24u) | ((x & 0xff00u) << 8u) | ((x >> 8u) & 0xff00u) | (x >> 24u);
}

// Digest word 7 of SHA-256d (as the SHA state word, not yet byte-swapped) for the nonce whose
// block-2 word W3 is `w3`.
fn top_word(w3: u32) -> u32 {
    // ---- first hash, block 2, from round 4 (rounds 0..=3 are on the host; round 3 is linear in W3) ----
    var s = St(p.pre.x + w3, p.st3_lo.x, p.st3_lo.y, p.st3_lo.z, p.pre.y + w3, p.st3_hi.x, p.st3_hi.y, p.st3_hi.z);
    // W4 = 0x80000000, W5..W14 = 0, W15 = 640: K + W is a constant.
    s = rnd(s, 0xb956c25bu);
    s = rnd(s, 0x59f111f1u);
    s = rnd(s, 0x923f82a4u);
    s = rnd(s, 0xab1c5ed5u);
    s = rnd(s, 0xd807aa98u);
    s = rnd(s, 0x12835b01u);
    s = rnd(s, 0x243185beu);
    s = rnd(s, 0x550c7dc3u);
    s = rnd(s, 0x72be5d74u);
    s = rnd(s, 0x80deb1feu);
    s = rnd(s, 0x9bdc06a7u);
    s = rnd(s, 0xc19bf3f4u);
    // Schedule: the terms that are padding (zero) or nonce-independent (from the host) are folded.
    let w16 = p.pre.z;
    s = rnd(s, 0xe49b69c1u + w16);
    let w17 = p.pre.w;
    s = rnd(s, 0xefbe4786u + w17);
    let w18 = p.pre2.x + ssig0(w3);
    s = rnd(s, 0x0fc19dc6u + w18);
    let w19 = p.pre2.y + w3;
    s = rnd(s, 0x240ca1ccu + w19);
    let w20 = ssig1(w18) + 0x80000000u;
    s = rnd(s, 0x2de92c6fu + w20);
    let w21 = ssig1(w19);
    s = rnd(s, 0x4a7484aau + w21);
    let w22 = ssig1(w20) + 640u;
    s = rnd(s, 0x5cb0a9dcu + w22);
    let w23 = ssig1(w21) + w16;
    s = rnd(s, 0x76f988dau + w23);
    let w24 = ssig1(w22) + w17;
    s = rnd(s, 0x983e5152u + w24);
    let w25 = ssig1(w23) + w18;
    s = rnd(s, 0xa831c66du + w25);
    let w26 = ssig1(w24) + w19;
    s = rnd(s, 0xb00327c8u + w26);
    let w27 = ssig1(w25) + w20;
    s = rnd(s, 0xbf597fc7u + w27);
    let w28 = ssig1(w26) + w21;
    s = rnd(s, 0xc6e00bf3u + w28);
    let w29 = ssig1(w27) + w22;
    s = rnd(s, 0xd5a79147u + w29);
    let w30 = ssig1(w28) + w23 + B2_W30C;
    s = rnd(s, 0x06ca6351u + w30);
    let w31 = ssig1(w29) + w24 + p.pre2.z;
    s = rnd(s, 0x14292967u + w31);
    let w32 = ssig1(w30) + w25 + p.pre2.w;
    s = rnd(s, 0x27b70a85u + w32);
    let w33 = ssig1(w31) + w26 + ssig0(w18) + w17;
    s = rnd(s, 0x2e1b2138u + w33);
    let w34 = ssig1(w32) + w27 + ssig0(w19) + w18;
    s = rnd(s, 0x4d2c6dfcu + w34);
    let w35 = ssig1(w33) + w28 + ssig0(w20) + w19;
    s = rnd(s, 0x53380d13u + w35);
    let w36 = ssig1(w34) + w29 + ssig0(w21) + w20;
    s = rnd(s, 0x650a7354u + w36);
    let w37 = ssig1(w35) + w30 + ssig0(w22) + w21;
    s = rnd(s, 0x766a0abbu + w37);
    let w38 = ssig1(w36) + w31 + ssig0(w23) + w22;
    s = rnd(s, 0x81c2c92eu + w38);
    let w39 = ssig1(w37) + w32 + ssig0(w24) + w23;
    s = rnd(s, 0x92722c85u + w39);
    let w40 = ssig1(w38) + w33 + ssig0(w25) + w24;
    s = rnd(s, 0xa2bfe8a1u + w40);
    let w41 = ssig1(w39) + w34 + ssig0(w26) + w25;
    s = rnd(s, 0xa81a664bu + w41);
    let w42 = ssig1(w40) + w35 + ssig0(w27) + w26;
    s = rnd(s, 0xc24b8b70u + w42);
    let w43 = ssig1(w41) + w36 + ssig0(w28) + w27;
    s = rnd(s, 0xc76c51a3u + w43);
    let w44 = ssig1(w42) + w37 + ssig0(w29) + w28;
    s = rnd(s, 0xd192e819u + w44);
    let w45 = ssig1(w43) + w38 + ssig0(w30) + w29;
    s = rnd(s, 0xd6990624u + w45);
    let w46 = ssig1(w44) + w39 + ssig0(w31) + w30;
    s = rnd(s, 0xf40e3585u + w46);
    let w47 = ssig1(w45) + w40 + ssig0(w32) + w31;
    s = rnd(s, 0x106aa070u + w47);
    let w48 = ssig1(w46) + w41 + ssig0(w33) + w32;
    s = rnd(s, 0x19a4c116u + w48);
    let w49 = ssig1(w47) + w42 + ssig0(w34) + w33;
    s = rnd(s, 0x1e376c08u + w49);
    let w50 = ssig1(w48) + w43 + ssig0(w35) + w34;
    s = rnd(s, 0x2748774cu + w50);
    let w51 = ssig1(w49) + w44 + ssig0(w36) + w35;
    s = rnd(s, 0x34b0bcb5u + w51);
    let w52 = ssig1(w50) + w45 + ssig0(w37) + w36;
    s = rnd(s, 0x391c0cb3u + w52);
    let w53 = ssig1(w51) + w46 + ssig0(w38) + w37;
    s = rnd(s, 0x4ed8aa4au + w53);
    let w54 = ssig1(w52) + w47 + ssig0(w39) + w38;
    s = rnd(s, 0x5b9cca4fu + w54);
    let w55 = ssig1(w53) + w48 + ssig0(w40) + w39;
    s = rnd(s, 0x682e6ff3u + w55);
    let w56 = ssig1(w54) + w49 + ssig0(w41) + w40;
    s = rnd(s, 0x748f82eeu + w56);
    let w57 = ssig1(w55) + w50 + ssig0(w42) + w41;
    s = rnd(s, 0x78a5636fu + w57);
    let w58 = ssig1(w56) + w51 + ssig0(w43) + w42;
    s = rnd(s, 0x84c87814u + w58);
    let w59 = ssig1(w57) + w52 + ssig0(w44) + w43;
    s = rnd(s, 0x8cc70208u + w59);
    let w60 = ssig1(w58) + w53 + ssig0(w45) + w44;
    s = rnd(s, 0x90befffau + w60);
    let w61 = ssig1(w59) + w54 + ssig0(w46) + w45;
    s = rnd(s, 0xa4506cebu + w61);
    let w62 = ssig1(w60) + w55 + ssig0(w47) + w46;
    s = rnd(s, 0xbef9a3f7u + w62);
    let w63 = ssig1(w61) + w56 + ssig0(w48) + w47;
    s = rnd(s, 0xc67178f2u + w63);
    // ---- second hash: its message is the first digest, W8..W15 are padding ----
    let v0 = s.a + p.mid_lo.x;
    let v1 = s.b + p.mid_lo.y;
    let v2 = s.c + p.mid_lo.z;
    let v3 = s.d + p.mid_lo.w;
    let v4 = s.e + p.mid_hi.x;
    let v5 = s.f + p.mid_hi.y;
    let v6 = s.g + p.mid_hi.z;
    let v7 = s.h + p.mid_hi.w;
    s = St(v0 + H2_A1, 0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, v0 + H2_E1, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu);
    s = rnd(s, 0x71374491u + v1);
    s = rnd(s, 0xb5c0fbcfu + v2);
    s = rnd(s, 0xe9b5dba5u + v3);
    s = rnd(s, 0x3956c25bu + v4);
    s = rnd(s, 0x59f111f1u + v5);
    s = rnd(s, 0x923f82a4u + v6);
    s = rnd(s, 0xab1c5ed5u + v7);
    s = rnd(s, 0x5807aa98u);
    s = rnd(s, 0x12835b01u);
    s = rnd(s, 0x243185beu);
    s = rnd(s, 0x550c7dc3u);
    s = rnd(s, 0x72be5d74u);
    s = rnd(s, 0x80deb1feu);
    s = rnd(s, 0x9bdc06a7u);
    s = rnd(s, 0xc19bf274u);
    let x16 = ssig0(v1) + v0;
    s = rnd(s, 0xe49b69c1u + x16);
    let x17 = ssig0(v2) + v1 + H2_W17C;
    s = rnd(s, 0xefbe4786u + x17);
    let x18 = ssig1(x16) + ssig0(v3) + v2;
    s = rnd(s, 0x0fc19dc6u + x18);
    let x19 = ssig1(x17) + ssig0(v4) + v3;
    s = rnd(s, 0x240ca1ccu + x19);
    let x20 = ssig1(x18) + ssig0(v5) + v4;
    s = rnd(s, 0x2de92c6fu + x20);
    let x21 = ssig1(x19) + ssig0(v6) + v5;
    s = rnd(s, 0x4a7484aau + x21);
    let x22 = ssig1(x20) + ssig0(v7) + v6 + 256u;
    s = rnd(s, 0x5cb0a9dcu + x22);
    let x23 = ssig1(x21) + x16 + v7 + H2_W23C;
    s = rnd(s, 0x76f988dau + x23);
    let x24 = ssig1(x22) + x17 + 0x80000000u;
    s = rnd(s, 0x983e5152u + x24);
    let x25 = ssig1(x23) + x18;
    s = rnd(s, 0xa831c66du + x25);
    let x26 = ssig1(x24) + x19;
    s = rnd(s, 0xb00327c8u + x26);
    let x27 = ssig1(x25) + x20;
    s = rnd(s, 0xbf597fc7u + x27);
    let x28 = ssig1(x26) + x21;
    s = rnd(s, 0xc6e00bf3u + x28);
    let x29 = ssig1(x27) + x22;
    s = rnd(s, 0xd5a79147u + x29);
    let x30 = ssig1(x28) + x23 + H2_W30C;
    s = rnd(s, 0x06ca6351u + x30);
    let x31 = ssig1(x29) + x24 + ssig0(x16) + 256u;
    s = rnd(s, 0x14292967u + x31);
    let x32 = ssig1(x30) + x25 + ssig0(x17) + x16;
    s = rnd(s, 0x27b70a85u + x32);
    let x33 = ssig1(x31) + x26 + ssig0(x18) + x17;
    s = rnd(s, 0x2e1b2138u + x33);
    let x34 = ssig1(x32) + x27 + ssig0(x19) + x18;
    s = rnd(s, 0x4d2c6dfcu + x34);
    let x35 = ssig1(x33) + x28 + ssig0(x20) + x19;
    s = rnd(s, 0x53380d13u + x35);
    let x36 = ssig1(x34) + x29 + ssig0(x21) + x20;
    s = rnd(s, 0x650a7354u + x36);
    let x37 = ssig1(x35) + x30 + ssig0(x22) + x21;
    s = rnd(s, 0x766a0abbu + x37);
    let x38 = ssig1(x36) + x31 + ssig0(x23) + x22;
    s = rnd(s, 0x81c2c92eu + x38);
    let x39 = ssig1(x37) + x32 + ssig0(x24) + x23;
    s = rnd(s, 0x92722c85u + x39);
    let x40 = ssig1(x38) + x33 + ssig0(x25) + x24;
    s = rnd(s, 0xa2bfe8a1u + x40);
    let x41 = ssig1(x39) + x34 + ssig0(x26) + x25;
    s = rnd(s, 0xa81a664bu + x41);
    let x42 = ssig1(x40) + x35 + ssig0(x27) + x26;
    s = rnd(s, 0xc24b8b70u + x42);
    let x43 = ssig1(x41) + x36 + ssig0(x28) + x27;
    s = rnd(s, 0xc76c51a3u + x43);
    let x44 = ssig1(x42) + x37 + ssig0(x29) + x28;
    s = rnd(s, 0xd192e819u + x44);
    let x45 = ssig1(x43) + x38 + ssig0(x30) + x29;
    s = rnd(s, 0xd6990624u + x45);
    let x46 = ssig1(x44) + x39 + ssig0(x31) + x30;
    s = rnd(s, 0xf40e3585u + x46);
    let x47 = ssig1(x45) + x40 + ssig0(x32) + x31;
    s = rnd(s, 0x106aa070u + x47);
    let x48 = ssig1(x46) + x41 + ssig0(x33) + x32;
    s = rnd(s, 0x19a4c116u + x48);
    let x49 = ssig1(x47) + x42 + ssig0(x34) + x33;
    s = rnd(s, 0x1e376c08u + x49);
    let x50 = ssig1(x48) + x43 + ssig0(x35) + x34;
    s = rnd(s, 0x2748774cu + x50);
    let x51 = ssig1(x49) + x44 + ssig0(x36) + x35;
    s = rnd(s, 0x34b0bcb5u + x51);
    let x52 = ssig1(x50) + x45 + ssig0(x37) + x36;
    s = rnd(s, 0x391c0cb3u + x52);
    let x53 = ssig1(x51) + x46 + ssig0(x38) + x37;
    s = rnd(s, 0x4ed8aa4au + x53);
    let x54 = ssig1(x52) + x47 + ssig0(x39) + x38;
    s = rnd(s, 0x5b9cca4fu + x54);
    let x55 = ssig1(x53) + x48 + ssig0(x40) + x39;
    s = rnd(s, 0x682e6ff3u + x55);
    let x56 = ssig1(x54) + x49 + ssig0(x41) + x40;
    s = rnd(s, 0x748f82eeu + x56);
    let x57 = ssig1(x55) + x50 + ssig0(x42) + x41;
    s = rnd(s, 0x78a5636fu + x57);
    let x58 = ssig1(x56) + x51 + ssig0(x43) + x42;
    s = rnd(s, 0x84c87814u + x58);
    let x59 = ssig1(x57) + x52 + ssig0(x44) + x43;
    s = rnd(s, 0x8cc70208u + x59);
    let x60 = ssig1(x58) + x53 + ssig0(x45) + x44;
    s = rnd(s, 0x90befffau + x60);
    // Digest word 7 is h after round 63, which is e after round 60 (rounds 61..63 only shift it).
    return s.e + 0x5be0cd19u;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Large batches are dispatched as a 2-D grid (at most 65535 workgroups per dimension);
    // the grid may overshoot the batch, so every offset is checked against `count`.
    let inv = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    let count = p.run.y;
    let first = inv * PER_INVOCATION;
    for (var k = 0u; k < PER_INVOCATION; k++) {
        let off = first + k;
        if off >= count {
            break;
        }
        let nonce = p.run.x + off;
        if bswap(top_word(bswap(nonce))) <= p.run.z {
            let i = atomicAdd(&out.count, 1u);
            if i < arrayLength(&out.nonces) {
                out.nonces[i] = nonce;
            }
        }
    }
}
