/*
 * SHA-256d block-header nonce search, written once for OpenCL C and CUDA C.
 *
 * This file is the one SHA-256 source of both GPU backends. It is not compiled on its own:
 * `sha256d.cl` (OpenCL) or `../cuda/sha256d.cu` (CUDA) comes first and defines the few
 * things the two languages spell differently:
 *
 *   KERNEL          qualifiers of a kernel entry point
 *   GLOBAL          address-space qualifier of a pointer to device memory
 *   GID, GSIZE      this work item's global index and the number of work items (as uint)
 *   ATOMIC_INC(p)   atomically increment *p (a GLOBAL uint), returning the old value
 *   ROTR(x, n)      rotate a uint right by a constant 1..31
 *   uint            32-bit unsigned integer (built into OpenCL; a typedef in CUDA)
 *
 * and may define CH, MAJ and SWAP32 when the language has a faster spelling than the
 * portable defaults below. OpenCL gets both texts concatenated by `kernels::opencl::SOURCE`
 * (its run-time compiler cannot open files); CUDA #includes this file.
 *
 * Design (mirrors the CPU backend, backends/src/cpu/job.rs and lanes.rs): the host does all
 * that does not depend on the nonce once per job -- the midstate of header bytes 0..63,
 * rounds 0..2 of block 2, round 3 as a function linear in the nonce word W3, and the
 * nonce-independent parts of the schedule -- and passes it as kernel arguments
 * (`backends/src/gpu.rs`, `KernelJob`, owns their order). Each work item then hashes nonces
 * `base + i` for i = GID, GID + GSIZE, ... < count (a grid-stride loop, so any count and any
 * launch size are handled), from round 4 of block 2, and stops the second hash at round 60:
 * digest word 7 is h after round 63, which is e after round 60.
 *
 * A nonce is a candidate when digest word 7, read little-endian (as `ScanTarget` reads
 * it), is <= the target's top word; the host re-checks each candidate against the full
 * 256-bit target, so a tie on the top word is decided there. Candidates go to
 * out[1 + slot] with slot = ATOMIC_INC(&out[0]). out[0] keeps counting past `out_cap`:
 * the host then knows the buffer overflowed and by how much, and rescans that launch with a
 * bigger buffer or in smaller pieces, so no nonce is ever lost.
 *
 * Straight-line code with named variables (no arrays, no inner loops) keeps every value in
 * a register on every compiler. Notation follows FIPS 180-4: BSIG0/1 (capital sigma) are the
 * round functions, SSIG0/1 (small sigma) the schedule functions; all uint arithmetic wraps,
 * as SHA-256 needs.
 */

#ifndef CH
#define CH(e, f, g) ((g) ^ ((e) & ((f) ^ (g))))
#endif
#ifndef MAJ
#define MAJ(a, b, c) ((b) ^ (((a) ^ (b)) & ((b) ^ (c))))
#endif
#ifndef SWAP32
#define SWAP32(x) (ROTR((x) & 0x00ff00ffU, 8) | ROTR((x) & 0xff00ff00U, 24))
#endif

#define BSIG0(x) (ROTR((x), 2) ^ ROTR((x), 13) ^ ROTR((x), 22))
#define BSIG1(x) (ROTR((x), 6) ^ ROTR((x), 11) ^ ROTR((x), 25))
#define SSIG0(x) (ROTR((x), 7) ^ ROTR((x), 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR((x), 17) ^ ROTR((x), 19) ^ ((x) >> 10))

/*
 * One round. Only d (which becomes the new e) and h (the new a) are written; the caller
 * rotates the names instead of moving eight values: round t passes the variables starting
 * at the one holding logical `a`. h + kw does not depend on e, so it stays off the
 * e -> e dependency chain.
 */
#define RND(a, b, c, d, e, f, g, h, kw)                                                       \
    {                                                                                         \
        uint t1_ = BSIG1(e) + CH(e, f, g) + ((h) + (kw));                                     \
        uint t2_ = BSIG0(a) + MAJ(a, b, c);                                                   \
        (d) += t1_;                                                                           \
        (h) = t1_ + t2_;                                                                      \
    }

/* Round constants K[t]. */
#define K0 0x428a2f98U
#define K1 0x71374491U
#define K2 0xb5c0fbcfU
#define K3 0xe9b5dba5U
#define K4 0x3956c25bU
#define K5 0x59f111f1U
#define K6 0x923f82a4U
#define K7 0xab1c5ed5U
#define K8 0xd807aa98U
#define K9 0x12835b01U
#define K10 0x243185beU
#define K11 0x550c7dc3U
#define K12 0x72be5d74U
#define K13 0x80deb1feU
#define K14 0x9bdc06a7U
#define K15 0xc19bf174U
#define K16 0xe49b69c1U
#define K17 0xefbe4786U
#define K18 0x0fc19dc6U
#define K19 0x240ca1ccU
#define K20 0x2de92c6fU
#define K21 0x4a7484aaU
#define K22 0x5cb0a9dcU
#define K23 0x76f988daU
#define K24 0x983e5152U
#define K25 0xa831c66dU
#define K26 0xb00327c8U
#define K27 0xbf597fc7U
#define K28 0xc6e00bf3U
#define K29 0xd5a79147U
#define K30 0x06ca6351U
#define K31 0x14292967U
#define K32 0x27b70a85U
#define K33 0x2e1b2138U
#define K34 0x4d2c6dfcU
#define K35 0x53380d13U
#define K36 0x650a7354U
#define K37 0x766a0abbU
#define K38 0x81c2c92eU
#define K39 0x92722c85U
#define K40 0xa2bfe8a1U
#define K41 0xa81a664bU
#define K42 0xc24b8b70U
#define K43 0xc76c51a3U
#define K44 0xd192e819U
#define K45 0xd6990624U
#define K46 0xf40e3585U
#define K47 0x106aa070U
#define K48 0x19a4c116U
#define K49 0x1e376c08U
#define K50 0x2748774cU
#define K51 0x34b0bcb5U
#define K52 0x391c0cb3U
#define K53 0x4ed8aa4aU
#define K54 0x5b9cca4fU
#define K55 0x682e6ff3U
#define K56 0x748f82eeU
#define K57 0x78a5636fU
#define K58 0x84c87814U
#define K59 0x8cc70208U
#define K60 0x90befffaU
#define K61 0xa4506cebU
#define K62 0xbef9a3f7U
#define K63 0xc67178f2U

/* SHA-256 initial hash value (the second hash starts from it). */
#define IV0 0x6a09e667U
#define IV1 0xbb67ae85U
#define IV2 0x3c6ef372U
#define IV4 0x510e527fU
#define IV5 0x9b05688cU
#define IV6 0x1f83d9abU
#define IV7 0x5be0cd19U

/* Padding: the leading 1 bit, and the message length in bits (80-byte header, 32-byte digest). */
#define PAD_BIT 0x80000000U
#define LEN_HEADER 640U
#define LEN_DIGEST 256U
/* Round 0 of the second hash starts from the IV, so all of it but W0 is constant: after it
 * a = W0 + H2_A1 and e = W0 + H2_E1. */
#define H2_A1 0xfc08884dU
#define H2_E1 0x98c7e2a2U
/* SSIG1(256) (W17), SSIG0(0x80000000) (W23), SSIG0(256) (W30) of the second hash;
 * SSIG0(640), part of W30 of block 2. */
#define H2_W17C 0x00a00000U
#define H2_W23C 0x11002000U
#define H2_W30C 0x00400022U
#define B2_W30C 0x00a00055U

/*
 * out:      out[0] counts candidates (zeroed by the host before each launch); out[1..] holds
 *           up to out_cap of them, in no particular order.
 * base:     the first nonce of this launch; count: nonces in it (<= 2^31, base + count - 1
 *           does not wrap). Work items beyond count do nothing.
 * mid0..7:  state after block 1.
 * st0..7:   state a..h before round 4 of block 2 computed with W3 = 0 (st0 = a4, st4 = e4;
 *           with the real W3, a = a4 + W3 and e = e4 + W3, the rest is unchanged).
 * job_w16, job_w17:  W16, W17 of block 2 (nonce independent).
 * job_w18c, job_w19c, job_w31c, job_w32c:  the nonce-independent parts of W18 (+ SSIG0(W3)),
 *           W19 (+ W3), W31 and W32.
 * top:      the target's most significant 32-bit word.
 */
KERNEL void sha256d_scan(GLOBAL uint *out, uint out_cap, uint base, uint count,
                         uint mid0, uint mid1, uint mid2, uint mid3,
                         uint mid4, uint mid5, uint mid6, uint mid7,
                         uint st0, uint st1, uint st2, uint st3,
                         uint st4, uint st5, uint st6, uint st7,
                         uint job_w16, uint job_w17, uint job_w18c, uint job_w19c,
                         uint job_w31c, uint job_w32c, uint top)
{
    for (uint i = GID; i < count; i += GSIZE) {
        uint nonce = base + i;
        /* The header stores the nonce little-endian; SHA-256 reads words big-endian. */
        uint w3 = SWAP32(nonce);

        /* ---- first hash, block 2, from round 4 (logical a lives in E here) ---- */
        uint E = st0 + w3, F = st1, G = st2, H = st3;
        uint A = st4 + w3, B = st5, C = st6, D = st7;
        /* Rounds 4..15: W4..W15 are padding, folded into the constants. */
        RND(E, F, G, H, A, B, C, D, (K4 + PAD_BIT));
        RND(D, E, F, G, H, A, B, C, K5);
        RND(C, D, E, F, G, H, A, B, K6);
        RND(B, C, D, E, F, G, H, A, K7);
        RND(A, B, C, D, E, F, G, H, K8);
        RND(H, A, B, C, D, E, F, G, K9);
        RND(G, H, A, B, C, D, E, F, K10);
        RND(F, G, H, A, B, C, D, E, K11);
        RND(E, F, G, H, A, B, C, D, K12);
        RND(D, E, F, G, H, A, B, C, K13);
        RND(C, D, E, F, G, H, A, B, K14);
        RND(B, C, D, E, F, G, H, A, (K15 + LEN_HEADER));
        /* Rounds 16..23. */
        uint w16 = job_w16;
        uint w17 = job_w17;
        uint w18 = job_w18c + SSIG0(w3);
        uint w19 = job_w19c + w3;
        uint w20 = SSIG1(w18) + PAD_BIT;
        uint w21 = SSIG1(w19);
        uint w22 = SSIG1(w20) + LEN_HEADER;
        uint w23 = SSIG1(w21) + w16;
        RND(A, B, C, D, E, F, G, H, K16 + w16);
        RND(H, A, B, C, D, E, F, G, K17 + w17);
        RND(G, H, A, B, C, D, E, F, K18 + w18);
        RND(F, G, H, A, B, C, D, E, K19 + w19);
        RND(E, F, G, H, A, B, C, D, K20 + w20);
        RND(D, E, F, G, H, A, B, C, K21 + w21);
        RND(C, D, E, F, G, H, A, B, K22 + w22);
        RND(B, C, D, E, F, G, H, A, K23 + w23);
        /* Rounds 24..31. */
        uint w24 = SSIG1(w22) + w17;
        uint w25 = SSIG1(w23) + w18;
        uint w26 = SSIG1(w24) + w19;
        uint w27 = SSIG1(w25) + w20;
        uint w28 = SSIG1(w26) + w21;
        uint w29 = SSIG1(w27) + w22;
        uint w30 = SSIG1(w28) + w23 + B2_W30C;
        uint w31 = SSIG1(w29) + w24 + job_w31c;
        RND(A, B, C, D, E, F, G, H, K24 + w24);
        RND(H, A, B, C, D, E, F, G, K25 + w25);
        RND(G, H, A, B, C, D, E, F, K26 + w26);
        RND(F, G, H, A, B, C, D, E, K27 + w27);
        RND(E, F, G, H, A, B, C, D, K28 + w28);
        RND(D, E, F, G, H, A, B, C, K29 + w29);
        RND(C, D, E, F, G, H, A, B, K30 + w30);
        RND(B, C, D, E, F, G, H, A, K31 + w31);
        /* Rounds 32..39. */
        uint w32 = SSIG1(w30) + w25 + job_w32c;
        uint w33 = SSIG1(w31) + w26 + SSIG0(w18) + w17;
        uint w34 = SSIG1(w32) + w27 + SSIG0(w19) + w18;
        uint w35 = SSIG1(w33) + w28 + SSIG0(w20) + w19;
        uint w36 = SSIG1(w34) + w29 + SSIG0(w21) + w20;
        uint w37 = SSIG1(w35) + w30 + SSIG0(w22) + w21;
        uint w38 = SSIG1(w36) + w31 + SSIG0(w23) + w22;
        uint w39 = SSIG1(w37) + w32 + SSIG0(w24) + w23;
        RND(A, B, C, D, E, F, G, H, K32 + w32);
        RND(H, A, B, C, D, E, F, G, K33 + w33);
        RND(G, H, A, B, C, D, E, F, K34 + w34);
        RND(F, G, H, A, B, C, D, E, K35 + w35);
        RND(E, F, G, H, A, B, C, D, K36 + w36);
        RND(D, E, F, G, H, A, B, C, K37 + w37);
        RND(C, D, E, F, G, H, A, B, K38 + w38);
        RND(B, C, D, E, F, G, H, A, K39 + w39);
        /* Rounds 40..47. */
        uint w40 = SSIG1(w38) + w33 + SSIG0(w25) + w24;
        uint w41 = SSIG1(w39) + w34 + SSIG0(w26) + w25;
        uint w42 = SSIG1(w40) + w35 + SSIG0(w27) + w26;
        uint w43 = SSIG1(w41) + w36 + SSIG0(w28) + w27;
        uint w44 = SSIG1(w42) + w37 + SSIG0(w29) + w28;
        uint w45 = SSIG1(w43) + w38 + SSIG0(w30) + w29;
        uint w46 = SSIG1(w44) + w39 + SSIG0(w31) + w30;
        uint w47 = SSIG1(w45) + w40 + SSIG0(w32) + w31;
        RND(A, B, C, D, E, F, G, H, K40 + w40);
        RND(H, A, B, C, D, E, F, G, K41 + w41);
        RND(G, H, A, B, C, D, E, F, K42 + w42);
        RND(F, G, H, A, B, C, D, E, K43 + w43);
        RND(E, F, G, H, A, B, C, D, K44 + w44);
        RND(D, E, F, G, H, A, B, C, K45 + w45);
        RND(C, D, E, F, G, H, A, B, K46 + w46);
        RND(B, C, D, E, F, G, H, A, K47 + w47);
        /* Rounds 48..55. */
        uint w48 = SSIG1(w46) + w41 + SSIG0(w33) + w32;
        uint w49 = SSIG1(w47) + w42 + SSIG0(w34) + w33;
        uint w50 = SSIG1(w48) + w43 + SSIG0(w35) + w34;
        uint w51 = SSIG1(w49) + w44 + SSIG0(w36) + w35;
        uint w52 = SSIG1(w50) + w45 + SSIG0(w37) + w36;
        uint w53 = SSIG1(w51) + w46 + SSIG0(w38) + w37;
        uint w54 = SSIG1(w52) + w47 + SSIG0(w39) + w38;
        uint w55 = SSIG1(w53) + w48 + SSIG0(w40) + w39;
        RND(A, B, C, D, E, F, G, H, K48 + w48);
        RND(H, A, B, C, D, E, F, G, K49 + w49);
        RND(G, H, A, B, C, D, E, F, K50 + w50);
        RND(F, G, H, A, B, C, D, E, K51 + w51);
        RND(E, F, G, H, A, B, C, D, K52 + w52);
        RND(D, E, F, G, H, A, B, C, K53 + w53);
        RND(C, D, E, F, G, H, A, B, K54 + w54);
        RND(B, C, D, E, F, G, H, A, K55 + w55);
        /* Rounds 56..63. */
        uint w56 = SSIG1(w54) + w49 + SSIG0(w41) + w40;
        uint w57 = SSIG1(w55) + w50 + SSIG0(w42) + w41;
        uint w58 = SSIG1(w56) + w51 + SSIG0(w43) + w42;
        uint w59 = SSIG1(w57) + w52 + SSIG0(w44) + w43;
        uint w60 = SSIG1(w58) + w53 + SSIG0(w45) + w44;
        uint w61 = SSIG1(w59) + w54 + SSIG0(w46) + w45;
        uint w62 = SSIG1(w60) + w55 + SSIG0(w47) + w46;
        uint w63 = SSIG1(w61) + w56 + SSIG0(w48) + w47;
        RND(A, B, C, D, E, F, G, H, K56 + w56);
        RND(H, A, B, C, D, E, F, G, K57 + w57);
        RND(G, H, A, B, C, D, E, F, K58 + w58);
        RND(F, G, H, A, B, C, D, E, K59 + w59);
        RND(E, F, G, H, A, B, C, D, K60 + w60);
        RND(D, E, F, G, H, A, B, C, K61 + w61);
        RND(C, D, E, F, G, H, A, B, K62 + w62);
        RND(B, C, D, E, F, G, H, A, K63 + w63);

        /* ---- second hash: its message is the first digest ---- */
        uint x0 = A + mid0, x1 = B + mid1, x2 = C + mid2, x3 = D + mid3;
        uint x4 = E + mid4, x5 = F + mid5, x6 = G + mid6, x7 = H + mid7;
        /* After round 0 (logical a lives in H). */
        H = x0 + H2_A1;
        A = IV0;
        B = IV1;
        C = IV2;
        D = x0 + H2_E1;
        E = IV4;
        F = IV5;
        G = IV6;
        RND(H, A, B, C, D, E, F, G, K1 + x1);
        RND(G, H, A, B, C, D, E, F, K2 + x2);
        RND(F, G, H, A, B, C, D, E, K3 + x3);
        RND(E, F, G, H, A, B, C, D, K4 + x4);
        RND(D, E, F, G, H, A, B, C, K5 + x5);
        RND(C, D, E, F, G, H, A, B, K6 + x6);
        RND(B, C, D, E, F, G, H, A, K7 + x7);
        /* Rounds 8..15: W8..W15 are padding. */
        RND(A, B, C, D, E, F, G, H, (K8 + PAD_BIT));
        RND(H, A, B, C, D, E, F, G, K9);
        RND(G, H, A, B, C, D, E, F, K10);
        RND(F, G, H, A, B, C, D, E, K11);
        RND(E, F, G, H, A, B, C, D, K12);
        RND(D, E, F, G, H, A, B, C, K13);
        RND(C, D, E, F, G, H, A, B, K14);
        RND(B, C, D, E, F, G, H, A, (K15 + LEN_DIGEST));
        /* Rounds 16..23. */
        uint x16 = SSIG0(x1) + x0;
        uint x17 = SSIG0(x2) + x1 + H2_W17C;
        uint x18 = SSIG1(x16) + SSIG0(x3) + x2;
        uint x19 = SSIG1(x17) + SSIG0(x4) + x3;
        uint x20 = SSIG1(x18) + SSIG0(x5) + x4;
        uint x21 = SSIG1(x19) + SSIG0(x6) + x5;
        uint x22 = SSIG1(x20) + SSIG0(x7) + x6 + LEN_DIGEST;
        uint x23 = SSIG1(x21) + x16 + x7 + H2_W23C;
        RND(A, B, C, D, E, F, G, H, K16 + x16);
        RND(H, A, B, C, D, E, F, G, K17 + x17);
        RND(G, H, A, B, C, D, E, F, K18 + x18);
        RND(F, G, H, A, B, C, D, E, K19 + x19);
        RND(E, F, G, H, A, B, C, D, K20 + x20);
        RND(D, E, F, G, H, A, B, C, K21 + x21);
        RND(C, D, E, F, G, H, A, B, K22 + x22);
        RND(B, C, D, E, F, G, H, A, K23 + x23);
        /* Rounds 24..31. */
        uint x24 = SSIG1(x22) + x17 + PAD_BIT;
        uint x25 = SSIG1(x23) + x18;
        uint x26 = SSIG1(x24) + x19;
        uint x27 = SSIG1(x25) + x20;
        uint x28 = SSIG1(x26) + x21;
        uint x29 = SSIG1(x27) + x22;
        uint x30 = SSIG1(x28) + x23 + H2_W30C;
        uint x31 = SSIG1(x29) + x24 + SSIG0(x16) + LEN_DIGEST;
        RND(A, B, C, D, E, F, G, H, K24 + x24);
        RND(H, A, B, C, D, E, F, G, K25 + x25);
        RND(G, H, A, B, C, D, E, F, K26 + x26);
        RND(F, G, H, A, B, C, D, E, K27 + x27);
        RND(E, F, G, H, A, B, C, D, K28 + x28);
        RND(D, E, F, G, H, A, B, C, K29 + x29);
        RND(C, D, E, F, G, H, A, B, K30 + x30);
        RND(B, C, D, E, F, G, H, A, K31 + x31);
        /* Rounds 32..39. */
        uint x32 = SSIG1(x30) + x25 + SSIG0(x17) + x16;
        uint x33 = SSIG1(x31) + x26 + SSIG0(x18) + x17;
        uint x34 = SSIG1(x32) + x27 + SSIG0(x19) + x18;
        uint x35 = SSIG1(x33) + x28 + SSIG0(x20) + x19;
        uint x36 = SSIG1(x34) + x29 + SSIG0(x21) + x20;
        uint x37 = SSIG1(x35) + x30 + SSIG0(x22) + x21;
        uint x38 = SSIG1(x36) + x31 + SSIG0(x23) + x22;
        uint x39 = SSIG1(x37) + x32 + SSIG0(x24) + x23;
        RND(A, B, C, D, E, F, G, H, K32 + x32);
        RND(H, A, B, C, D, E, F, G, K33 + x33);
        RND(G, H, A, B, C, D, E, F, K34 + x34);
        RND(F, G, H, A, B, C, D, E, K35 + x35);
        RND(E, F, G, H, A, B, C, D, K36 + x36);
        RND(D, E, F, G, H, A, B, C, K37 + x37);
        RND(C, D, E, F, G, H, A, B, K38 + x38);
        RND(B, C, D, E, F, G, H, A, K39 + x39);
        /* Rounds 40..47. */
        uint x40 = SSIG1(x38) + x33 + SSIG0(x25) + x24;
        uint x41 = SSIG1(x39) + x34 + SSIG0(x26) + x25;
        uint x42 = SSIG1(x40) + x35 + SSIG0(x27) + x26;
        uint x43 = SSIG1(x41) + x36 + SSIG0(x28) + x27;
        uint x44 = SSIG1(x42) + x37 + SSIG0(x29) + x28;
        uint x45 = SSIG1(x43) + x38 + SSIG0(x30) + x29;
        uint x46 = SSIG1(x44) + x39 + SSIG0(x31) + x30;
        uint x47 = SSIG1(x45) + x40 + SSIG0(x32) + x31;
        RND(A, B, C, D, E, F, G, H, K40 + x40);
        RND(H, A, B, C, D, E, F, G, K41 + x41);
        RND(G, H, A, B, C, D, E, F, K42 + x42);
        RND(F, G, H, A, B, C, D, E, K43 + x43);
        RND(E, F, G, H, A, B, C, D, K44 + x44);
        RND(D, E, F, G, H, A, B, C, K45 + x45);
        RND(C, D, E, F, G, H, A, B, K46 + x46);
        RND(B, C, D, E, F, G, H, A, K47 + x47);
        /* Rounds 48..55. */
        uint x48 = SSIG1(x46) + x41 + SSIG0(x33) + x32;
        uint x49 = SSIG1(x47) + x42 + SSIG0(x34) + x33;
        uint x50 = SSIG1(x48) + x43 + SSIG0(x35) + x34;
        uint x51 = SSIG1(x49) + x44 + SSIG0(x36) + x35;
        uint x52 = SSIG1(x50) + x45 + SSIG0(x37) + x36;
        uint x53 = SSIG1(x51) + x46 + SSIG0(x38) + x37;
        uint x54 = SSIG1(x52) + x47 + SSIG0(x39) + x38;
        uint x55 = SSIG1(x53) + x48 + SSIG0(x40) + x39;
        RND(A, B, C, D, E, F, G, H, K48 + x48);
        RND(H, A, B, C, D, E, F, G, K49 + x49);
        RND(G, H, A, B, C, D, E, F, K50 + x50);
        RND(F, G, H, A, B, C, D, E, K51 + x51);
        RND(E, F, G, H, A, B, C, D, K52 + x52);
        RND(D, E, F, G, H, A, B, C, K53 + x53);
        RND(C, D, E, F, G, H, A, B, K54 + x54);
        RND(B, C, D, E, F, G, H, A, K55 + x55);
        /* Rounds 56..60. */
        uint x56 = SSIG1(x54) + x49 + SSIG0(x41) + x40;
        uint x57 = SSIG1(x55) + x50 + SSIG0(x42) + x41;
        uint x58 = SSIG1(x56) + x51 + SSIG0(x43) + x42;
        uint x59 = SSIG1(x57) + x52 + SSIG0(x44) + x43;
        uint x60 = SSIG1(x58) + x53 + SSIG0(x45) + x44;
        RND(A, B, C, D, E, F, G, H, K56 + x56);
        RND(H, A, B, C, D, E, F, G, K57 + x57);
        RND(G, H, A, B, C, D, E, F, K58 + x58);
        RND(F, G, H, A, B, C, D, E, K59 + x59);
        RND(E, F, G, H, A, B, C, D, K60 + x60);

        /* Digest word 7 (as the SHA state word) is e after round 60, which is in H, plus IV7. */
        uint h7 = H + IV7;
        if (SWAP32(h7) <= top) {
            uint slot = ATOMIC_INC(&out[0]);
            if (slot < out_cap) {
                out[1 + slot] = nonce;
            }
        }
    }
}
