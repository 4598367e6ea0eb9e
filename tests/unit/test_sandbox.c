/*
 * Unit tests for server/sandbox.c: a child enters the same sandbox as a
 * worker (sandbox_enter(CONF_SANDBOX_ON)) and then tries, each in a fresh
 * child, what a taken-over worker would: open a file, exec, make a
 * socket, ptrace, signal another process, make memory executable, write
 * a path.  Each must fail or kill the child with SIGSYS, as the policy
 * says; what a worker needs must still work.
 */
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "astleyd.h"
#include "tap.h"

#if defined(__SANITIZE_ADDRESS__) || defined(ASTLEYD_SANITIZE)
#define SANITIZER	1	/* the wider list of sandbox.c applies */
#endif

/* What a child reports by its exit status. */
#define DENIED		2	/* the call failed with EACCES or EPERM */
#define ALLOWED		3	/* the call succeeded */
#define OTHER		4	/* failed some other way */
#define NOSANDBOX	5	/* sandbox_enter failed */

static pid_t	parent;
static void	(*before)(void);	/* in the child, before the sandbox */
static int	pipefd[2];
static int	epfd;

static void __attribute__((noreturn))
verdict(long rv)
{
	if (rv != -1)
		_exit(ALLOWED);
	_exit(errno == EACCES || errno == EPERM ? DENIED : OTHER);
}

static void
try_open(void)
{
	/* The raw open(2): allowed by the sanitizer list, for Landlock. */
	verdict(syscall(SYS_open, "/etc/passwd", O_RDONLY));
}

static void
try_openat(void)
{
	verdict(open("/etc/passwd", O_RDONLY));
}

static void
try_write_path(void)
{
	verdict(syscall(SYS_open, "/tmp/astleyd-test-sandbox",
	    O_WRONLY | O_CREAT | O_TRUNC, 0600));
}

static void
try_exec(void)
{
	char	*argv[] = { (char *)"true", NULL };

	verdict(execve("/bin/true", argv, NULL));
}

static void
try_socket(void)
{
	struct sockaddr_in	sin;
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		verdict(-1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(9);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	verdict(connect(fd, (struct sockaddr *)&sin, sizeof(sin)));
}

static void
try_ptrace(void)
{
	verdict(ptrace(PTRACE_ATTACH, parent, NULL, NULL));
}

static void
try_kill(void)
{
	verdict(kill(parent, 0));
}

static void
try_mprotect_exec(void)
{
	void	*p;

	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(OTHER);
	verdict(mprotect(p, 4096, PROT_READ | PROT_EXEC));
}

static void
try_mmap_exec(void)
{
	verdict(mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
}

/* Everything a worker does between accepts, and its exit. */
static void
try_worker_calls(void)
{
	struct epoll_event	 ev;
	struct timespec		 ts;
	unsigned char		 rnd[64];
	char			 b[4] = "", *big, *small[1000];
	size_t			 i;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev) == -1)
		_exit(10);
	if (write(pipefd[1], "abc", 3) != 3)
		_exit(11);
	if (epoll_wait(epfd, &ev, 1, 1000) != 1)
		_exit(12);
	if (read(pipefd[0], b, 3) != 3 || memcmp(b, "abc", 3) != 0)
		_exit(13);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		_exit(14);
	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1 || time(NULL) == -1)
		_exit(15);
	/* Big blocks are mmap, grown by mremap; small ones brk. */
	if ((big = malloc(64 << 20)) == NULL)
		_exit(16);
	memset(big, 1, 64 << 20);
	if ((big = realloc(big, 128 << 20)) == NULL)
		_exit(17);
	big[(128 << 20) - 1] = 2;
	free(big);
	for (i = 0; i < sizeof(small) / sizeof(small[0]); i++)
		if ((small[i] = malloc(4000)) == NULL)
			_exit(18);
	for (i = 0; i < sizeof(small) / sizeof(small[0]); i++)
		free(small[i]);
	if (getpid() <= 0)
		_exit(19);
	/* exit(3): atexit handlers, and LeakSanitizer in sanitizer builds. */
	exit(0);
}

#ifdef SANITIZER
#include <sanitizer/common_interface_defs.h>

static void *volatile	leaked;
static char		sandir[] = "/tmp/astleyd-test-sanXXXXXX";
static char		sanpath[64];

/* As a daemon's tests set it: reports to files in a directory. */
static void
report_to_file(void)
{
	char	opt[128];

	snprintf(opt, sizeof(opt), "log_path=%s", sanpath);
	setenv("LSAN_OPTIONS", opt, 1);
	__sanitizer_set_report_path(sanpath);
}

static void
try_leak(void)
{
	leaked = malloc(1234);
	memset(leaked, 1, 1234);
	leaked = NULL;
	exit(0);
}
#endif

#ifdef SANITIZER
/* The report file the child wrote in sandir, read and removed. */
static void
read_report(char *buf, size_t len)
{
	struct dirent	*de;
	DIR		*dir;
	FILE		*f;
	char		 path[PATH_MAX + 300];

	buf[0] = '\0';
	if ((dir = opendir(sandir)) == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, "lsan.", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", sandir, de->d_name);
		if ((f = fopen(path, "r")) != NULL) {
			buf[fread(buf, 1, len - 1, f)] = '\0';
			fclose(f);
		}
		unlink(path);
	}
	closedir(dir);
}
#endif

/*
 * Runs FN in a child that entered the sandbox; its wait status, and what
 * it wrote to stderr in OUT.
 */
static int
run(void (*fn)(void), char *out, size_t outlen)
{
	struct rlimit	 nocore = { 0, 0 };
	int		 errp[2], st;
	ssize_t		 n;
	size_t		 got = 0;
	pid_t		 pid;

	if (pipe(errp) == -1)
		return -1;
	fflush(stdout);		/* or the child's exit prints it again */
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		close(errp[0]);
		dup2(errp[1], STDERR_FILENO);
		setrlimit(RLIMIT_CORE, &nocore);
		if (before != NULL)
			before();
		if (sandbox_enter(CONF_SANDBOX_ON) == -1)
			_exit(NOSANDBOX);
		fn();
		_exit(0);
	}
	close(errp[1]);
	while (got + 1 < outlen &&
	    (n = read(errp[0], out + got, outlen - 1 - got)) > 0)
		got += n;
	out[got] = '\0';
	close(errp[0]);
	if (waitpid(pid, &st, 0) == -1)
		return -1;
	return st;
}

static const char *
describe(int st, char *buf, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else if (WIFEXITED(st))
		snprintf(buf, len, "exit %d", WEXITSTATUS(st));
	else
		snprintf(buf, len, "status %#x", st);
	return buf;
}

/* A child must die of SIGSYS (sys) or see EACCES/EPERM (denied). */
static void
expect(const char *what, void (*fn)(void), int sys)
{
	char	out[4096], d[64];
	int	st = run(fn, out, sizeof(out));

	if (sys)
		ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		    "%s: killed by SIGSYS (%s)", what,
		    describe(st, d, sizeof(d)));
	else
		ok(WIFEXITED(st) && WEXITSTATUS(st) == DENIED,
		    "%s: denied with EACCES or EPERM (%s)", what,
		    describe(st, d, sizeof(d)));
}

int
main(void)
{
	char	desc[256], out[8192], d[64];
	int	st, sys_open;

	parent = getpid();
	if (pipe2(pipefd, O_NONBLOCK) == -1 ||
	    (epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		printf("Bail out! pipe or epoll\n");
		return 1;
	}
	if (sandbox_check(CONF_SANDBOX_ON, desc, sizeof(desc)) == -1) {
		printf("1..0 # SKIP %s\n", desc);
		return 0;
	}
	ok(strncmp(desc, "on (Landlock ABI ", 17) == 0 &&
	    strstr(desc, "seccomp filter of ") != NULL,
	    "sandbox_check describes the sandbox: %s", desc);
	ok(sandbox_check(CONF_SANDBOX_OFF, desc, sizeof(desc)) == 0 &&
	    strcmp(desc, "off") == 0, "sandbox_check off: %s", desc);

	st = run(try_worker_calls, out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "pipe, epoll, getrandom, clocks, big and small mallocs and exit "
	    "work in the sandbox (%s)", describe(st, d, sizeof(d)));
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		diag("stderr: %.300s", out);

	unlink("/tmp/astleyd-test-sandbox");
#ifdef SANITIZER
	/* The sanitizers' open(2), openat(2) are allowed: Landlock refuses. */
	sys_open = 0;
#else
	sys_open = 1;
#endif
	expect("open(2) of /etc/passwd", try_open, sys_open);
	expect("openat(2) of /etc/passwd", try_openat, sys_open);
	expect("creating /tmp/astleyd-test-sandbox", try_write_path, sys_open);
	ok(access("/tmp/astleyd-test-sandbox", F_OK) == -1,
	    "and no file was created");
	expect("execve /bin/true", try_exec, 1);
	expect("socket + connect", try_socket, 0);
#ifdef SANITIZER
	/* LSan ptraces; Landlock keeps it to our own domain. */
	expect("ptrace of the parent", try_ptrace, 0);
#else
	expect("ptrace of the parent", try_ptrace, 1);
#endif
	expect("kill of the parent", try_kill, 1);
	expect("mprotect to PROT_EXEC", try_mprotect_exec, 1);
	expect("mmap with PROT_EXEC", try_mmap_exec, 1);

#ifdef SANITIZER
	st = run(try_leak, out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
	    strstr(out, "detected memory leaks") != NULL,
	    "a leak is still reported (LSan) from inside the sandbox (%s)",
	    describe(st, d, sizeof(d)));
	if (mkdtemp(sandir) == NULL) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	snprintf(sanpath, sizeof(sanpath), "%s/lsan", sandir);
	before = report_to_file;
	st = run(try_leak, out, sizeof(out));
	before = NULL;
	read_report(out, sizeof(out));
	ok(strstr(out, "detected memory leaks") != NULL,
	    "a daemon's leak report reaches its log_path file (%s)",
	    describe(st, d, sizeof(d)));
	rmdir(sandir);
#endif
	return done_testing();
}
