//go:build amd64 && !purego

#include "textflag.h"

// AVX2 (and F16C) reduction kernels: dst[i] = a[i] op b[i] over n bytes,
// n a multiple of 32 (the Go side does the remainder). Loads and stores
// are unaligned; every 32-byte block is loaded before it is stored, so dst
// may be a or b. Registers: DI dst, SI a, DX b, CX n-64, AX offset;
// Y0-Y7 scratch, Y8 and Y13-Y15 constants set up once per call.

// KERNEL emits one kernel: SETUP once, then BODY(off) for 32 bytes at
// AX+off, 64 bytes per loop iteration and a last 32-byte step.
#define KERNEL(name, SETUP, BODY) \
TEXT name(SB), NOSPLIT, $0-32; \
	MOVQ dst+0(FP), DI; \
	MOVQ a+8(FP), SI; \
	MOVQ b+16(FP), DX; \
	MOVQ n+24(FP), CX; \
	SETUP; \
	XORQ AX, AX; \
	SUBQ $64, CX; \
	JL   tail; \
loop: \
	BODY(0); \
	BODY(32); \
	ADDQ $64, AX; \
	CMPQ AX, CX; \
	JLE  loop; \
tail: \
	ADDQ $64, CX; \
	CMPQ AX, CX; \
	JGE  done; \
	BODY(0); \
done: \
	VZEROUPPER; \
	RET

#define NOSETUP XORQ R8, R8

// One-instruction integer and float ops straight from memory.
#define SIMPLE(op, off) \
	VMOVDQU off(SI)(AX*1), Y0; \
	op      off(DX)(AX*1), Y0, Y0; \
	VMOVDQU Y0, off(DI)(AX*1)

// Register ops: x = x op y, t1 and t2 clobbered. Float min and max run
// the instruction both ways round: on a tie (+0 and -0 compare equal)
// OR-ing the results gives -0 for min and AND-ing gives +0 for max, as
// math.Min/Max do; any unordered pair is forced to the all-ones NaN, since
// MINPS/MAXPS alone would return the second operand.
#define ADDPS_R(x, y, t1, t2) VADDPS y, x, x
#define MULPS_R(x, y, t1, t2) VMULPS y, x, x
#define MINPS_R(x, y, t1, t2) \
	VMINPS y, x, t1; VMINPS x, y, t2; VCMPPS $3, y, x, x; \
	VORPS t2, t1, t1; VORPS t1, x, x
#define MAXPS_R(x, y, t1, t2) \
	VMAXPS y, x, t1; VMAXPS x, y, t2; VCMPPS $3, y, x, x; \
	VANDPS t2, t1, t1; VORPS t1, x, x
#define MINPD_R(x, y, t1, t2) \
	VMINPD y, x, t1; VMINPD x, y, t2; VCMPPD $3, y, x, x; \
	VORPD t2, t1, t1; VORPD t1, x, x
#define MAXPD_R(x, y, t1, t2) \
	VMAXPD y, x, t1; VMAXPD x, y, t2; VCMPPD $3, y, x, x; \
	VANDPD t2, t1, t1; VORPD t1, x, x

// Signed 64-bit min/max (AVX2 has no VPMINSQ): compare, then blend.
#define MINQ_R(x, y, t1, t2) VPCMPGTQ y, x, t1; VPBLENDVB t1, y, x, x
#define MAXQ_R(x, y, t1, t2) VPCMPGTQ y, x, t1; VPBLENDVB t1, x, y, x

// Low 64 bits of a 64x64 product from three 32x32->64 multiplies.
#define MULQ_R(x, y, t1, t2) \
	VPSRLQ $32, x, t1; VPMULUDQ y, t1, t1; \
	VPSRLQ $32, y, t2; VPMULUDQ t2, x, t2; \
	VPADDQ t2, t1, t1; VPSLLQ $32, t1, t1; \
	VPMULUDQ y, x, x; VPADDQ t1, x, x

// Byte products (no VPMULLB): even bytes in the low half of each word,
// odd bytes shifted down; Y15 holds 0x00ff in every word.
#define MULB_R(x, y, t1, t2) \
	VPSRLW $8, x, t1; VPSRLW $8, y, t2; VPMULLW t2, t1, t1; VPSLLW $8, t1, t1; \
	VPMULLW y, x, x; VPAND Y15, x, x; VPOR t1, x, x
#define SETUP_MULB VPCMPEQW Y15, Y15, Y15; VPSRLW $8, Y15, Y15

// 32 bytes of a and b into Y0 and Y1, REG on them, Y0 to dst.
#define VEC(REG, off) \
	VMOVDQU off(SI)(AX*1), Y0; \
	VMOVDQU off(DX)(AX*1), Y1; \
	REG(Y0, Y1, Y2, Y3); \
	VMOVDQU Y0, off(DI)(AX*1)

// float16: 16 halves widened to float32 by F16C, reduced, rounded back to
// nearest even (imm 0) once.
#define HALF(REG, off) \
	VCVTPH2PS off(SI)(AX*1), Y0; \
	VCVTPH2PS off+16(SI)(AX*1), Y4; \
	VCVTPH2PS off(DX)(AX*1), Y1; \
	VCVTPH2PS off+16(DX)(AX*1), Y5; \
	REG(Y0, Y1, Y2, Y3); \
	REG(Y4, Y5, Y6, Y7); \
	VCVTPS2PH $0, Y0, off(DI)(AX*1); \
	VCVTPS2PH $0, Y4, off+16(DI)(AX*1)

// bfloat16 -> float32 is a 16-bit shift: unpacking with a zero register
// (Y15) puts each half in the top of a dword. The way back rounds to
// nearest even in integers, (b + 0x7fff + lsb) >> 16 as Float32ToBFloat16
// does, and VPACKUSDW undoes the unpack's lane order. No NaN case is
// needed: a sum, product or quotient that is NaN is an input NaN quieted
// or the default NaN, both with zero low halves, which the rounding
// leaves alone. Min and max return an input (exact in bfloat16) or the
// all-ones NaN, so they only shift. Constants: Y14 = 1, Y13 = 0x7fff in
// every dword.
#define BF16_RND(x, t1) \
	VPSRLD $16, x, t1; VPAND Y14, t1, t1; VPADDD t1, x, x; VPADDD Y13, x, x; VPSRLD $16, x, x
#define BF16_EXACT(x, t1) VPSRLD $16, x, x
#define BF16(REG, RND, off) \
	VMOVDQU off(SI)(AX*1), Y0; \
	VMOVDQU off(DX)(AX*1), Y1; \
	VPUNPCKHWD Y0, Y15, Y4; \
	VPUNPCKLWD Y0, Y15, Y0; \
	VPUNPCKHWD Y1, Y15, Y5; \
	VPUNPCKLWD Y1, Y15, Y1; \
	REG(Y0, Y1, Y2, Y3); \
	REG(Y4, Y5, Y6, Y7); \
	RND(Y0, Y2); \
	RND(Y4, Y6); \
	VPACKUSDW Y4, Y0, Y0; \
	VMOVDQU Y0, off(DI)(AX*1)
#define SETUP_BF16 \
	VPXOR Y15, Y15, Y15; \
	MOVL $1, R8; VMOVD R8, X14; VPBROADCASTD X14, Y14; \
	MOVL $0x7fff, R8; VMOVD R8, X13; VPBROADCASTD X13, Y13

#define F32SUM(off) SIMPLE(VADDPS, off)
#define F32PROD(off) SIMPLE(VMULPS, off)
#define F32MIN(off) VEC(MINPS_R, off)
#define F32MAX(off) VEC(MAXPS_R, off)
#define F64SUM(off) SIMPLE(VADDPD, off)
#define F64PROD(off) SIMPLE(VMULPD, off)
#define F64MIN(off) VEC(MINPD_R, off)
#define F64MAX(off) VEC(MAXPD_R, off)
#define I32SUM(off) SIMPLE(VPADDD, off)
#define I32PROD(off) SIMPLE(VPMULLD, off)
#define I32MIN(off) SIMPLE(VPMINSD, off)
#define I32MAX(off) SIMPLE(VPMAXSD, off)
#define I64SUM(off) SIMPLE(VPADDQ, off)
#define I64PROD(off) VEC(MULQ_R, off)
#define I64MIN(off) VEC(MINQ_R, off)
#define I64MAX(off) VEC(MAXQ_R, off)
#define I8SUM(off) SIMPLE(VPADDB, off)
#define I8PROD(off) VEC(MULB_R, off)
#define I8MIN(off) SIMPLE(VPMINSB, off)
#define I8MAX(off) SIMPLE(VPMAXSB, off)
#define U8MIN(off) SIMPLE(VPMINUB, off)
#define U8MAX(off) SIMPLE(VPMAXUB, off)
#define H16SUM(off) HALF(ADDPS_R, off)
#define H16PROD(off) HALF(MULPS_R, off)
#define H16MIN(off) HALF(MINPS_R, off)
#define H16MAX(off) HALF(MAXPS_R, off)
#define BF16SUM(off) BF16(ADDPS_R, BF16_RND, off)
#define BF16PROD(off) BF16(MULPS_R, BF16_RND, off)
#define BF16MIN(off) BF16(MINPS_R, BF16_EXACT, off)
#define BF16MAX(off) BF16(MAXPS_R, BF16_EXACT, off)

KERNEL(·f32SumAVX2, NOSETUP, F32SUM)
KERNEL(·f32ProdAVX2, NOSETUP, F32PROD)
KERNEL(·f32MinAVX2, NOSETUP, F32MIN)
KERNEL(·f32MaxAVX2, NOSETUP, F32MAX)
KERNEL(·f64SumAVX2, NOSETUP, F64SUM)
KERNEL(·f64ProdAVX2, NOSETUP, F64PROD)
KERNEL(·f64MinAVX2, NOSETUP, F64MIN)
KERNEL(·f64MaxAVX2, NOSETUP, F64MAX)
KERNEL(·i32SumAVX2, NOSETUP, I32SUM)
KERNEL(·i32ProdAVX2, NOSETUP, I32PROD)
KERNEL(·i32MinAVX2, NOSETUP, I32MIN)
KERNEL(·i32MaxAVX2, NOSETUP, I32MAX)
KERNEL(·i64SumAVX2, NOSETUP, I64SUM)
KERNEL(·i64ProdAVX2, NOSETUP, I64PROD)
KERNEL(·i64MinAVX2, NOSETUP, I64MIN)
KERNEL(·i64MaxAVX2, NOSETUP, I64MAX)
KERNEL(·i8SumAVX2, NOSETUP, I8SUM)
KERNEL(·i8ProdAVX2, SETUP_MULB, I8PROD)
KERNEL(·i8MinAVX2, NOSETUP, I8MIN)
KERNEL(·i8MaxAVX2, NOSETUP, I8MAX)
KERNEL(·u8MinAVX2, NOSETUP, U8MIN)
KERNEL(·u8MaxAVX2, NOSETUP, U8MAX)
KERNEL(·f16SumF16C, NOSETUP, H16SUM)
KERNEL(·f16ProdF16C, NOSETUP, H16PROD)
KERNEL(·f16MinF16C, NOSETUP, H16MIN)
KERNEL(·f16MaxF16C, NOSETUP, H16MAX)
KERNEL(·bf16SumAVX2, SETUP_BF16, BF16SUM)
KERNEL(·bf16ProdAVX2, SETUP_BF16, BF16PROD)
KERNEL(·bf16MinAVX2, SETUP_BF16, BF16MIN)
KERNEL(·bf16MaxAVX2, SETUP_BF16, BF16MAX)

// DIVKERNEL emits buf[i] /= d over n bytes (a multiple of 32) for
// Finish, with the same loop shape as KERNEL; SETUP broadcasts d into Y8.
// x/d in float32 then one rounding to the half type is what
// divideGeneric computes.
#define DIVKERNEL(name, ARGS, SETUP, BODY) \
TEXT name(SB), NOSPLIT, $0-ARGS; \
	MOVQ buf+0(FP), DI; \
	MOVQ n+8(FP), CX; \
	SETUP; \
	XORQ AX, AX; \
	SUBQ $64, CX; \
	JL   tail; \
loop: \
	BODY(0); \
	BODY(32); \
	ADDQ $64, AX; \
	CMPQ AX, CX; \
	JLE  loop; \
tail: \
	ADDQ $64, CX; \
	CMPQ AX, CX; \
	JGE  done; \
	BODY(0); \
done: \
	VZEROUPPER; \
	RET

#define SETUP_DIVS VBROADCASTSS d+16(FP), Y8
#define SETUP_DIVD VBROADCASTSD d+16(FP), Y8
#define SETUP_DIVBF16 SETUP_DIVS; SETUP_BF16
#define F32DIV(off) VMOVUPS off(DI)(AX*1), Y0; VDIVPS Y8, Y0, Y0; VMOVUPS Y0, off(DI)(AX*1)
#define F64DIV(off) VMOVUPD off(DI)(AX*1), Y0; VDIVPD Y8, Y0, Y0; VMOVUPD Y0, off(DI)(AX*1)
#define H16DIV(off) \
	VCVTPH2PS off(DI)(AX*1), Y0; \
	VCVTPH2PS off+16(DI)(AX*1), Y1; \
	VDIVPS Y8, Y0, Y0; \
	VDIVPS Y8, Y1, Y1; \
	VCVTPS2PH $0, Y0, off(DI)(AX*1); \
	VCVTPS2PH $0, Y1, off+16(DI)(AX*1)
#define BF16DIV(off) \
	VMOVDQU off(DI)(AX*1), Y0; \
	VPUNPCKHWD Y0, Y15, Y4; \
	VPUNPCKLWD Y0, Y15, Y0; \
	VDIVPS Y8, Y0, Y0; \
	VDIVPS Y8, Y4, Y4; \
	BF16_RND(Y0, Y2); \
	BF16_RND(Y4, Y6); \
	VPACKUSDW Y4, Y0, Y0; \
	VMOVDQU Y0, off(DI)(AX*1)

DIVKERNEL(·f32DivAVX2, 20, SETUP_DIVS, F32DIV)
DIVKERNEL(·f64DivAVX2, 24, SETUP_DIVD, F64DIV)
DIVKERNEL(·f16DivF16C, 20, SETUP_DIVS, H16DIV)
DIVKERNEL(·bf16DivAVX2, 20, SETUP_DIVBF16, BF16DIV)
