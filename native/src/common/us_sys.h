/* Raw Linux x86-64 system calls. Used where libc may not be called: the restorer
 * (no libc at all) and the interceptor's checkpoint paths (app threads are frozen
 * and may hold libc locks). Returns -errno on failure, like the kernel. */
#ifndef US_SYS_H
#define US_SYS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/syscall.h>

static inline long us_sc6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define us_sc0(n)                 us_sc6((n), 0, 0, 0, 0, 0, 0)
#define us_sc1(n, a)              us_sc6((n), (long)(a), 0, 0, 0, 0, 0)
#define us_sc2(n, a, b)           us_sc6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define us_sc3(n, a, b, c)        us_sc6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define us_sc4(n, a, b, c, d)     us_sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define us_sc5(n, a, b, c, d, e)  us_sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* Callee-saved registers plus stack and instruction pointers: enough to resume a
 * thread inside the C function that saved them (System V ABI). */
struct us_jmp {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};

/* Returns 0 when saving, and 1 when resumed by us_jmp_resume. */
int us_jmp_save(struct us_jmp *j) __attribute__((returns_twice));
__attribute__((noreturn)) void us_jmp_resume(const struct us_jmp *j);

/* The kernel's struct sigaction on x86-64. */
struct us_kernel_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};
#define US_SA_RESTORER 0x04000000
/* Signal return trampoline for handlers installed with raw rt_sigaction. */
void us_sigreturn(void);

#endif
