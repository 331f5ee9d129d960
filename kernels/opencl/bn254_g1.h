/*
 * Instantiates bn254_curve.h for G1: points over Fq. Included (concatenated, for OpenCL)
 * right before bn254_curve.h; bn254_g2.h undoes these names for the second instance.
 */
#define FE fe_t
#define FE_WORDS 8
#define FE_ADD fq_add
#define FE_SUB fq_sub
#define FE_MUL fq_mul
#define FE_SQR fq_sqr
#define FE_IS_ZERO fe_is_zero
#define FE_ZERO fe_zero
#define FE_ONE fq_one
#define FE_LOAD fe_load
#define FE_STORE fe_store
#define CURVE_FN(name) g1_##name
