/*
 * OpenCL C spelling of what the shared BN254 proving source expects (bn254_field.h,
 * bn254_curve.h twice through bn254_g1.h / bn254_g2.h, bn254_kernels.h).
 * `kernels::opencl::BN254` is this file followed by those, in that order: the run-time compiler
 * gets one string and cannot open files. OpenCL C 1.2.
 */

#define KERNEL __kernel
#define GLOBAL __global
#define DEV static inline
/* Point operations: large, called from loops; the compiler decides. */
#define DEV_NOINLINE static
#define GID ((uint)get_global_id(0))
#define ATOMIC_INC(p) atomic_inc(p)

/* Bit reversal without a builtin (OpenCL 1.2 has none). */
static inline uint BITREV32(uint x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}

/*
 * The carry chain of CUDA's mad.lo.cc / madc.hi.cc / addc instructions, with the carry flag in
 * a variable: the same sequence of operations, so pocl runs (and the tests check) exactly what
 * CUDA runs.
 */
#define CARRY_DECL uint cf_ = 0; ulong s_;
#define MAD_LO_CC(d, a, b, c) { s_ = (ulong)((a) * (b)) + (c); d = (uint)s_; cf_ = (uint)(s_ >> 32); }
#define MADC_LO_CC(d, a, b, c) { s_ = (ulong)((a) * (b)) + (c) + cf_; d = (uint)s_; cf_ = (uint)(s_ >> 32); }
#define MAD_HI_CC(d, a, b, c) { s_ = (ulong)mul_hi((a), (b)) + (c); d = (uint)s_; cf_ = (uint)(s_ >> 32); }
#define MADC_HI_CC(d, a, b, c) { s_ = (ulong)mul_hi((a), (b)) + (c) + cf_; d = (uint)s_; cf_ = (uint)(s_ >> 32); }
#define ADDC_CC(d, a, b) { s_ = (ulong)(a) + (b) + cf_; d = (uint)s_; cf_ = (uint)(s_ >> 32); }
#define ADDC(d, a, b) { d = (a) + (b) + cf_; }

/* bn254_field.h follows. */
