/* long us_clone3_thread(struct clone3_args *a, size_t size, void (*fn)(void *), void *arg)
 * The child starts on the stack given in a and calls fn(arg), which never returns. */
	.text
	.globl us_clone3_thread
	.hidden us_clone3_thread
	.type us_clone3_thread,@function
us_clone3_thread:
	movq %rdx, %r8            /* syscall keeps r8/r9; the child inherits them */
	movq %rcx, %r9
	movl $435, %eax           /* clone3 */
	syscall
	testq %rax, %rax
	jnz 1f
	xorl %ebp, %ebp
	movq %r9, %rdi
	andq $-16, %rsp
	callq *%r8
	ud2
1:	ret
	.size us_clone3_thread, .-us_clone3_thread
	.section .note.GNU-stack,"",@progbits
