/*
 * OpenCL C spelling of the macros that `sha256d_common.h` (the SHA-256d nonce search shared
 * with CUDA) expects. `kernels::opencl::SOURCE` is this file followed by that header: the
 * OpenCL run-time compiler gets one string and cannot open files, so there is no #include.
 * Targets OpenCL C 1.1 and later (atomic_inc is core since 1.1).
 */

#define KERNEL __kernel
#define GLOBAL __global
#define GID ((uint)get_global_id(0))
#define GSIZE ((uint)get_global_size(0))
#define ATOMIC_INC(p) atomic_inc(p)
/* rotate() rotates left; a right rotation by n is a left one by 32 - n. */
#define ROTR(x, n) rotate((uint)(x), (uint)(32 - (n)))
/* bitselect(a, b, c) takes b where c is set, else a: one instruction on most GPUs. */
#define CH(e, f, g) bitselect((uint)(g), (uint)(f), (uint)(e))
#define MAJ(a, b, c) bitselect((uint)(a), (uint)(b), (uint)((a) ^ (c)))

/* sha256d_common.h follows. */
