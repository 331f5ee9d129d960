/*
 * Instantiates bn254_curve.h a second time, for G2: points over Fq2 (the same a = 0 formulas;
 * the twist only changes the curve constant, which addition and doubling never use).
 */
#undef FE
#undef FE_WORDS
#undef FE_ADD
#undef FE_SUB
#undef FE_MUL
#undef FE_SQR
#undef FE_IS_ZERO
#undef FE_ZERO
#undef FE_ONE
#undef FE_LOAD
#undef FE_STORE
#undef CURVE_FN
#define FE fe2_t
#define FE_WORDS 16
#define FE_ADD fq2_add
#define FE_SUB fq2_sub
#define FE_MUL fq2_mul
#define FE_SQR fq2_sqr
#define FE_IS_ZERO fq2_is_zero
#define FE_ZERO fq2_zero
#define FE_ONE fq2_one
#define FE_LOAD fq2_load
#define FE_STORE fq2_store
#define CURVE_FN(name) g2_##name
