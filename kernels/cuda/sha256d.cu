/*
 * CUDA C spelling of the macros that `../opencl/sha256d_common.h` (the SHA-256d nonce search
 * shared with OpenCL) expects, then that file.
 *
 * Compiled to PTX by clang without the CUDA toolkit (`build-ptx.sh`: --cuda-device-only
 * -nocudainc -nocudalib), so nothing from the CUDA headers is available: what they would
 * provide (__global__, threadIdx..., atomicAdd, __byte_perm) is spelled with clang's own
 * attributes and NVPTX builtins here. The generated `sha256d.ptx` is committed next to this
 * file; the CUDA driver JIT-compiles it for whatever GPU the rig has.
 */

typedef unsigned int uint;

/* extern "C": the host looks the kernel up by its unmangled name. */
#define KERNEL extern "C" __attribute__((global))
/* CUDA pointers are generic; no address-space qualifier is needed. */
#define GLOBAL
#define GID                                                                                   \
    ((uint)(__nvvm_read_ptx_sreg_ctaid_x() * __nvvm_read_ptx_sreg_ntid_x() +                  \
            __nvvm_read_ptx_sreg_tid_x()))
#define GSIZE ((uint)(__nvvm_read_ptx_sreg_nctaid_x() * __nvvm_read_ptx_sreg_ntid_x()))
/* atomicAdd(p, 1) without the headers: a relaxed fetch-add is what it compiles to. */
#define ATOMIC_INC(p) __atomic_fetch_add((p), 1U, __ATOMIC_RELAXED)
/* Both lower to single instructions (shf.r.wrap, prmt) on every GPU with PTX support. */
#define ROTR(x, n) __builtin_rotateright32((x), (n))
#define SWAP32(x) __builtin_bswap32(x)

#include "../opencl/sha256d_common.h"
