/*
 * ocirt-exec: the last program the runtime runs before the container's own.
 *
 * ocirt is a Python program, so every process it starts in a container begins as a fork of the
 * host's interpreter. If that process called execve(2) itself, /proc/self/exe would still name
 * the host's interpreter at that moment, and a container program that is a script starting with
 * "#!/proc/self/exe" (or the path /proc/self/exe itself) would make the kernel run the host's
 * interpreter inside the container, dumpable: its /proc/<pid>/exe opens the host's file, which
 * can be reopened for writing once it stops running (the CVE-2019-5736 class of attack).
 *
 * So the runtime copies this program into a sealed memfd (no write, grow, shrink or new seals)
 * and execs the memfd; this program then execs the container's program. Whatever the kernel
 * resolves /proc/self/exe to from here on is the sealed copy, which nobody can modify.
 *
 * It is freestanding (no libc) so that it makes no system call but execve(2), and on failure
 * write(2) and exit_group(2): a container's seccomp filter, already loaded, must allow little.
 *
 * Arguments: MAGIC PATH ARGV0 [ARGS...]; the environment is passed through unchanged.
 */

#define MAGIC "ocirt-exec"

#if defined(__x86_64__)
#define NR_write 1
#define NR_execve 59
#define NR_exit_group 231

static long syscall3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

/* The kernel starts us with the stack pointer at argc; pass it to main, aligned for calls. */
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call stub_main\n"
	"	hlt\n");

#elif defined(__aarch64__)
#define NR_write 64
#define NR_execve 221
#define NR_exit_group 94

static long syscall3(long nr, long a, long b, long c)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov x0, sp\n"
	"	bl stub_main\n");

#else
#error "ocirt-exec: unsupported architecture"
#endif

__attribute__((noreturn)) static void exit_group(int code)
{
	for (;;)
		syscall3(NR_exit_group, code, 0, 0);
}

static unsigned long length(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void put(const char *s)
{
	syscall3(NR_write, 2, (long)s, (long)length(s));
}

/* The errors execve(2) can give for a program that existed when the runtime checked it. */
static const char *describe(long err)
{
	switch (err) {
	case 1: return "operation not permitted";
	case 2: return "no such file or directory";
	case 7: return "argument list too long";
	case 8: return "exec format error";
	case 12: return "cannot allocate memory";
	case 13: return "permission denied";
	case 20: return "not a directory";
	case 21: return "is a directory";
	case 26: return "text file busy";
	case 36: return "file name too long";
	case 40: return "too many levels of symbolic links";
	case 80: return "cannot access a needed shared library";
	default: return "exec failed";
	}
}

__attribute__((noreturn, used)) void stub_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	const char *magic = MAGIC;
	long i;

	/* Only the runtime's own call has the marker: run any other way (say, as the interpreter
	 * of a "#!/proc/self/exe" script), refuse instead of exec'ing what we were given. */
	for (i = 0; argc >= 3 && magic[i] && argv[0][i] == magic[i]; i++)
		;
	if (argc < 3 || magic[i] || argv[0][i]) {
		put("ocirt-exec: not a program to run by hand\n");
		exit_group(127);
	}
	long err = -syscall3(NR_execve, (long)argv[1], (long)(argv + 2), (long)envp);
	put("ocirt: exec ");
	put(argv[1]);
	put(": ");
	put(describe(err));
	put("\n");
	exit_group(err == 2 ? 127 : 126);
}
