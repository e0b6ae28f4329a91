/* us_jmp_save / us_jmp_resume: a setjmp pair without glibc's pointer mangling,
 * since the restored thread may resume before its thread pointer is trusted. */
	.text
	.globl us_jmp_save
	.hidden us_jmp_save
	.type us_jmp_save,@function
us_jmp_save:
	movq %rbx, 0(%rdi)
	movq %rbp, 8(%rdi)
	movq %r12, 16(%rdi)
	movq %r13, 24(%rdi)
	movq %r14, 32(%rdi)
	movq %r15, 40(%rdi)
	leaq 8(%rsp), %rdx        /* caller's rsp after our return */
	movq %rdx, 48(%rdi)
	movq (%rsp), %rdx         /* return address */
	movq %rdx, 56(%rdi)
	xorl %eax, %eax
	ret
	.size us_jmp_save, .-us_jmp_save

	.globl us_jmp_resume
	.hidden us_jmp_resume
	.type us_jmp_resume,@function
us_jmp_resume:
	movq 0(%rdi), %rbx
	movq 8(%rdi), %rbp
	movq 16(%rdi), %r12
	movq 24(%rdi), %r13
	movq 32(%rdi), %r14
	movq 40(%rdi), %r15
	movq 48(%rdi), %rsp
	movl $1, %eax
	jmpq *56(%rdi)
	.size us_jmp_resume, .-us_jmp_resume
	.globl us_sigreturn
	.hidden us_sigreturn
	.type us_sigreturn,@function
us_sigreturn:
	movq $15, %rax            /* rt_sigreturn */
	syscall
	.size us_sigreturn, .-us_sigreturn

	.section .note.GNU-stack,"",@progbits
