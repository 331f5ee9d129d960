/*
 * CUDA C spelling of what the shared BN254 proving source (../opencl/bn254_*.h) expects, then
 * that source. Compiled to PTX by clang without the CUDA toolkit (build-ptx.sh); the committed
 * bn254.ptx is JIT-compiled by the driver for whatever GPU the rig has.
 *
 * The carry-chain primitives are single PTX instructions linked by the carry flag
 * (mad.lo.cc.u32, madc.hi.cc.u32, addc.u32, ...): a 256-bit Montgomery multiplication is then
 * two chains of eight multiply-adds per word instead of 64-bit emulation. Each is its own
 * `asm volatile`, so the compiler keeps their order; nothing between two of them in a chain
 * touches the flag (the chains are straight-line code in MUL_ROW).
 */

typedef unsigned int uint;
typedef unsigned long long ulong;

#define KERNEL extern "C" __attribute__((global))
#define GLOBAL
#define DEV static __attribute__((device)) __attribute__((always_inline)) inline
/* Point operations stay calls: inlined into every loop they would make the PTX tens of MB. */
#define DEV_NOINLINE static __attribute__((device)) __attribute__((noinline))
#define GID                                                                                   \
    ((uint)(__nvvm_read_ptx_sreg_ctaid_x() * __nvvm_read_ptx_sreg_ntid_x() +                  \
            __nvvm_read_ptx_sreg_tid_x()))
#define ATOMIC_INC(p) __atomic_fetch_add((p), 1U, __ATOMIC_RELAXED)
#define BITREV32(x) __builtin_bitreverse32(x)
#define min(a, b) ((a) < (b) ? (a) : (b))

#define CARRY_DECL
#define MAD_LO_CC(d, a, b, c) asm volatile("mad.lo.cc.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c))
#define MADC_LO_CC(d, a, b, c) asm volatile("madc.lo.cc.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c))
#define MAD_HI_CC(d, a, b, c) asm volatile("mad.hi.cc.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c))
#define MADC_HI_CC(d, a, b, c) asm volatile("madc.hi.cc.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c))
#define ADDC_CC(d, a, b) asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b))
#define ADDC(d, a, b) asm volatile("addc.u32 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b))

#include "../opencl/bn254_field.h"
#include "../opencl/bn254_g1.h"
#include "../opencl/bn254_curve.h"
#include "../opencl/bn254_g2.h"
#include "../opencl/bn254_curve.h"
#include "../opencl/bn254_kernels.h"
