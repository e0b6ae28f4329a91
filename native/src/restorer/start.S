/* Entry point: move to our own stack inside the restorer's area at once, so the
 * kernel-provided stack can be unmapped. */
	.text
	.globl _start
	.type _start,@function
_start:
	movq %rsp, %rdi           /* argc, argv, envp, auxv */
	leaq restorer_stack_top(%rip), %rsp
	andq $-16, %rsp
	xorl %ebp, %ebp
	call restorer_main
	ud2
	.size _start, .-_start
	.section .note.GNU-stack,"",@progbits
