/*
 * The worker's sandbox, in one place: no_new_privs, a Landlock ruleset
 * that handles every filesystem right the kernel knows and grants none,
 * then a seccomp-bpf allow-list of the system calls a worker makes.
 * Everything a worker needs is an open descriptor by then (listeners,
 * logs, the syslog socket, its epoll and eventfd), so it may open no path
 * at all, make no socket, run nothing and touch no other process.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>

#include <linux/landlock.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

#include "astleyd.h"

#if defined(__SANITIZE_ADDRESS__) || defined(ASTLEYD_SANITIZE)
#define SANDBOX_SANITIZER	1
#include <stdlib.h>
#endif

/*
 * Landlock rights by ABI version (landlock(7)); Debian 12's headers stop
 * at ABI 2, so the later ones are spelled out here.
 */
#define SANDBOX_FS_V1	((1ULL << 13) - 1)	/* EXECUTE .. MAKE_SYM */
#define SANDBOX_FS_REFER	(1ULL << 13)	/* ABI 2 */
#define SANDBOX_FS_TRUNCATE	(1ULL << 14)	/* ABI 3 */
#define SANDBOX_FS_IOCTL_DEV	(1ULL << 15)	/* ABI 5 */
#define SANDBOX_NET_TCP		(3ULL)		/* ABI 4: bind, connect */
#define SANDBOX_SCOPE_ALL	(3ULL)		/* ABI 6: abstract unix, signal */
#define SANDBOX_ABI_KNOWN	7

/* struct landlock_ruleset_attr as of ABI 6; older kernels get zeros. */
struct sandbox_ruleset_attr {
	uint64_t	handled_access_fs;
	uint64_t	handled_access_net;
	uint64_t	scoped;
};

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION	(1U << 0)
#endif

/*
 * The allow-list.  An entry with arguments allows the call only when
 * they match (several entries for one call: any of them); a call that is
 * not here kills the worker (sandbox on) or is logged (sandbox log).
 */
struct sandbox_rule {
	int			 nr;
	unsigned int		 narg;
	struct scmp_arg_cmp	 arg[2];
};

#define ALLOW(name)		{ SCMP_SYS(name), 0, { { 0 }, { 0 } } }
#define ALLOW1(name, a)		{ SCMP_SYS(name), 1, { a, { 0 } } }
#define ALLOW2(name, a, b)	{ SCMP_SYS(name), 2, { a, b } }
#define ARG(n, op, x, y)	{ n, op, x, y }
#define ARG_EQ(n, x)		ARG(n, SCMP_CMP_EQ, x, 0)
#define ARG_LACKS(n, bits)	ARG(n, SCMP_CMP_MASKED_EQ, bits, 0)
#define ARG_HAS(n, bits)	ARG(n, SCMP_CMP_MASKED_EQ, bits, bits)

/*
 * What both sandboxed processes need: their sockets' bytes, memory for
 * the allocators and OpenSSL, and the few calls libc makes on its own.
 */
static const struct sandbox_rule sandbox_base_rules[] = {
	/* Requests and replies: recv and send are these. */
	ALLOW(recvfrom),
	ALLOW(sendto),
	/* The eventfd, the ready pipe, the log files. */
	ALLOW(write),
	ALLOW(close),
	/* The round trip between a worker and the key process (keyproc.c). */
	ALLOW(poll),
	ALLOW(ppoll),
	/*
	 * The allocators (glibc malloc for OpenSSL and the connections):
	 * anonymous memory only, never executable.
	 */
	ALLOW2(mmap, ARG_LACKS(2, PROT_EXEC), ARG_HAS(3, MAP_ANONYMOUS)),
	ALLOW1(mprotect, ARG_LACKS(2, PROT_EXEC)),
	ALLOW(munmap),
	ALLOW(mremap),
	ALLOW(madvise),
	ALLOW(brk),
	/* OpenSSL's locks and run-once initialisation. */
	ALLOW(futex),
	/* OpenSSL's DRBG: handshakes, ticket IVs, ECDSA nonces, blinding. */
	ALLOW(getrandom),
	/*
	 * OpenSSL's fork check, the log lines' pid; abort(3) signals
	 * itself (tgkill to our own pid only, in sandbox_seccomp).
	 */
	ALLOW(getpid),
	ALLOW(gettid),
	/* Normally the vDSO answers these; the system calls are the fallback. */
	ALLOW(clock_gettime),
	ALLOW(gettimeofday),
	ALLOW(time),
	/* Returning from signal handlers. */
	ALLOW(rt_sigreturn),
	/*
	 * A poll stopped (SIGSTOP, a debugger) and continued goes on
	 * through this: without it, kill -STOP then -CONT killed the key
	 * process.
	 */
	ALLOW(restart_syscall),
	/* abort(3) blocks signals around raising SIGABRT. */
	ALLOW(rt_sigprocmask),
	/* The end. */
	ALLOW(exit_group),
	ALLOW(exit),
};

/* A worker, besides the base. */
static const struct sandbox_rule sandbox_rules[] = {
	/* Client bytes over TLS (OpenSSL's socket BIO), the eventfd. */
	ALLOW(read),
	/* The only way in: new connections, non-blocking and close-on-exec. */
	ALLOW1(accept4, ARG_EQ(3, SOCK_CLOEXEC | SOCK_NONBLOCK)),
	/* Lingering close sends our FIN and drains the rest. */
	ALLOW(shutdown),
	/* The event loop. */
	ALLOW(epoll_wait),
	ALLOW(epoll_pwait),
	ALLOW(epoll_ctl),
};

/*
 * The key process (keyproc.c), besides the base: the sockets of new
 * workers, which the master passes it.
 */
static const struct sandbox_rule sandbox_keyproc_rules[] = {
	ALLOW(recvmsg),
};

#ifdef SANDBOX_SANITIZER
/*
 * Sanitizer builds only (make asan, what the tests run): ASan and LSan
 * need more than the server does.  At exit LeakSanitizer stops the world:
 * it clones a tracer sharing our memory (CLONE_VM, never a fork), which
 * reads /proc/PID/task and ptraces the worker; both read /proc/self/maps.
 * Landlock then grants read access beneath /proc/self, and creating
 * files in the directories of the sanitizers' log_path (a daemon's
 * reports), nothing else; it confines ptrace to our own domain.  A
 * release build has none of this.
 */
static const struct sandbox_rule sandbox_sanitizer_rules[] = {
	/* The tracer: a thread in all but name, so only with CLONE_VM. */
	ALLOW1(clone, ARG_HAS(0, CLONE_VM)),
	ALLOW(ptrace),
	ALLOW(wait4),
	/* Its set-up: die with us, an alternate stack, its own handlers. */
	ALLOW1(prctl, ARG_EQ(0, PR_SET_PDEATHSIG)),
	ALLOW1(prctl, ARG_EQ(0, PR_GET_DUMPABLE)),
	ALLOW1(prctl, ARG_EQ(0, PR_SET_DUMPABLE)),
	ALLOW1(prctl, ARG_EQ(0, PR_SET_PTRACER)),
	ALLOW(sigaltstack),
	ALLOW(rt_sigaction),
	ALLOW(getppid),
	ALLOW(sched_yield),
	/* /proc/PID/task and /proc/self/maps (the sanitizers' own open(2)). */
	ALLOW(open),
	/* Reading them: the key process's own list has no read(2). */
	ALLOW(read),
	ALLOW(getdents),
	ALLOW(lseek),
	/*
	 * A report symbolizes in process: it opens and maps the modules
	 * named in /proc/self/maps (Landlock refuses: frames print as
	 * module+offset), and asks whether stderr is a terminal.
	 */
	ALLOW(openat),
	ALLOW(fcntl),
	ALLOW(newfstatat),
	ALLOW(readlink),
	ALLOW1(mmap, ARG_LACKS(2, PROT_EXEC)),
	ALLOW1(ioctl, ARG_EQ(1, TCGETS)),
};
#endif

#define NRULES(t)	(sizeof(t) / sizeof((t)[0]))

/* Beside the base: a worker's table, or the key process's. */
static const struct sandbox_rule	*sandbox_table = sandbox_rules;
static size_t				 sandbox_ntable = NRULES(sandbox_rules);

/* Distinct system calls the filter allows. */
static int
sandbox_ncalls(void)
{
	int	nrs[NRULES(sandbox_base_rules) + NRULES(sandbox_rules) + 64];
	int	n = 0, i, j, k;
	struct {
		const struct sandbox_rule	*r;
		size_t				 n;
	} tabs[] = {
		{ sandbox_base_rules, NRULES(sandbox_base_rules) },
		{ sandbox_rules, NRULES(sandbox_rules) },
#ifdef SANDBOX_SANITIZER
		{ sandbox_sanitizer_rules, NRULES(sandbox_sanitizer_rules) },
#endif
	};

	for (k = 0; k < (int)NRULES(tabs); k++)
		for (i = 0; i < (int)tabs[k].n; i++) {
			for (j = 0; j < n; j++)
				if (nrs[j] == tabs[k].r[i].nr)
					break;
			if (j == n && n < (int)NRULES(nrs))
				nrs[n++] = tabs[k].r[i].nr;
		}
	return n + 1;	/* tgkill, added with our pid in sandbox_seccomp */
}

/* The kernel's Landlock ABI version, or -1 with errno. */
static int
sandbox_landlock_abi(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
}

/*
 * What this kernel can do for MODE: 0 with a description in BUF, e.g.
 * "on (Landlock ABI 7, seccomp filter of 28 calls)", or, for on only, -1
 * with what is missing.  log and off start on any kernel.
 */
int
sandbox_check(int mode, char *buf, size_t len)
{
	char	ll[96] = "", sc[96] = "";
	int	abi, api;

	if (mode == CONF_SANDBOX_OFF) {
		snprintf(buf, len, "off");
		return 0;
	}
	if ((abi = sandbox_landlock_abi()) < 1)
		snprintf(ll, sizeof(ll), "Landlock is not available on this "
		    "kernel (%s)", errno == EOPNOTSUPP ? "disabled at boot" :
		    "not built in");
	/* 3: SECCOMP_RET_KILL_PROCESS and SECCOMP_RET_LOG (Linux 4.14). */
	if ((api = seccomp_api_get()) < 3)
		snprintf(sc, sizeof(sc), "seccomp filters that kill or log "
		    "are not available on this kernel");
	if (mode == CONF_SANDBOX_ON && (abi < 1 || api < 3)) {
		snprintf(buf, len, "sandbox on: %s%s%s; \"sandbox log\" or "
		    "\"sandbox off\" runs without it", ll,
		    abi < 1 && api < 3 ? ", and " : "", sc);
		return -1;
	}
	if (mode == CONF_SANDBOX_ON)
		snprintf(buf, len, "on (Landlock ABI %d, seccomp filter of %d "
		    "calls)", abi, sandbox_ncalls());
	else if (api < 3)
		snprintf(buf, len, "log (%s: nothing to log)", sc);
	else
		snprintf(buf, len, "log (seccomp filter of %d calls, the "
		    "kernel logs any other; no Landlock)", sandbox_ncalls());
	return 0;
}

#ifdef SANDBOX_SANITIZER
static int
sandbox_landlock_allow(int rfd, const char *dir, uint64_t access)
{
	struct landlock_path_beneath_attr	pb;
	int					rv;

	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = access;
	if ((pb.parent_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rv = syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH,
	    &pb, 0);
	close(pb.parent_fd);
	return rv;
}

/*
 * LSan's reads of /proc/self/{maps,task} (see sandbox_sanitizer_rules),
 * and the directories of log_path= in the sanitizers' options, where a
 * daemon's reports go (opening them early would leave empty files).
 */
static int
sandbox_landlock_sanitizer(int rfd, uint64_t fs)
{
	const char	*vars[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS",
			    "LSAN_OPTIONS" }, *v, *p;
	char		 dir[PATH_MAX], *slash;
	size_t		 i, n;

	if (sandbox_landlock_allow(rfd, "/proc/self", fs &
	    (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)) == -1)
		return -1;
	for (i = 0; i < NRULES(vars); i++) {
		if ((v = getenv(vars[i])) == NULL ||
		    (p = strstr(v, "log_path=")) == NULL)
			continue;
		p += strlen("log_path=");
		n = strcspn(p, ": ,\t\n");
		if (n == 0 || n >= sizeof(dir))
			continue;
		memcpy(dir, p, n);
		dir[n] = '\0';
		if ((slash = strrchr(dir, '/')) == NULL)
			continue;	/* stderr, stdout, or relative */
		slash[slash == dir] = '\0';
		if (sandbox_landlock_allow(rfd, dir, fs &
		    (LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_WRITE_FILE |
		    SANDBOX_FS_TRUNCATE)) == -1)
			return -1;
	}
	return 0;
}
#endif

/* Every right this kernel's Landlock knows is handled; none is granted. */
static int
sandbox_landlock(void)
{
	struct sandbox_ruleset_attr	attr;
	int				abi, fd;

	if ((abi = sandbox_landlock_abi()) < 1)
		return -1;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = SANDBOX_FS_V1;
	if (abi >= 2)
		attr.handled_access_fs |= SANDBOX_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= SANDBOX_FS_TRUNCATE;
	if (abi >= 4)
		attr.handled_access_net = SANDBOX_NET_TCP;
	if (abi >= 5)
		attr.handled_access_fs |= SANDBOX_FS_IOCTL_DEV;
	if (abi >= 6)
		attr.scoped = SANDBOX_SCOPE_ALL;
	if ((fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr),
	    0)) == -1)
		return -1;
#ifdef SANDBOX_SANITIZER
	if (sandbox_landlock_sanitizer(fd, attr.handled_access_fs) == -1) {
		close(fd);
		return -1;
	}
#endif
	if (syscall(SYS_landlock_restrict_self, fd, 0) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
sandbox_add(scmp_filter_ctx ctx, const struct sandbox_rule *r, size_t n)
{
	size_t	i;
	int	rv;

	for (i = 0; i < n; i++)
		if ((rv = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r[i].nr,
		    r[i].narg, r[i].arg)) < 0) {
			errno = -rv;
			return -1;
		}
	return 0;
}

static int
sandbox_seccomp(int mode)
{
	/* abort(3) signals itself: our own pid only, only SIGABRT. */
	const struct sandbox_rule	tgkill_self = ALLOW2(tgkill,
	    ARG_EQ(0, getpid()), ARG_EQ(2, SIGABRT));
	scmp_filter_ctx			ctx;
	int				rv = -1, e;

	/* Anything else: the worker dies of SIGSYS, or the kernel logs it. */
	if ((ctx = seccomp_init(mode == CONF_SANDBOX_ON ?
	    SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* Only the native ABI: no i386 int 0x80, no x32 calls. */
	if ((e = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS)) < 0)
		goto fail;
	if (sandbox_add(ctx, sandbox_base_rules,
	    NRULES(sandbox_base_rules)) == -1 ||
	    sandbox_add(ctx, sandbox_table, sandbox_ntable) == -1)
		goto done;
	if (sandbox_add(ctx, &tgkill_self, 1) == -1)
		goto done;
#ifdef SANDBOX_SANITIZER
	if (sandbox_add(ctx, sandbox_sanitizer_rules,
	    NRULES(sandbox_sanitizer_rules)) == -1)
		goto done;
#endif
	/*
	 * glibc's syslog(3) makes a new socket when the daemon went away:
	 * let that fail (the line is lost) rather than kill the worker.
	 */
	if (mode == CONF_SANDBOX_ON && (e = seccomp_rule_add(ctx,
	    SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0)) < 0)
		goto fail;
	if ((e = seccomp_load(ctx)) < 0)
		goto fail;
	rv = 0;
	goto done;
 fail:
	errno = -e;
 done:
	seccomp_release(ctx);
	return rv;
}

/*
 * Enters the sandbox for MODE; the caller exits on -1 (logged here).
 * Must come after the worker's last open, socket and listen.
 */
int
sandbox_enter(int mode)
{
	if (mode == CONF_SANDBOX_OFF)
		return 0;
	/* The time zone, once, while /etc/localtime can still be read. */
	tzset();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_err("sandbox: PR_SET_NO_NEW_PRIVS");
		return -1;
	}
	/* log finds missing entries: nothing is denied then, only logged. */
	if (mode == CONF_SANDBOX_ON && sandbox_landlock() == -1) {
		log_err("sandbox: Landlock");
		return -1;
	}
	if (seccomp_api_get() < 3) {
		if (mode == CONF_SANDBOX_ON) {
			log_errx("sandbox: no seccomp filter on this kernel");
			return -1;
		}
		return 0;
	}
	if (sandbox_seccomp(mode) == -1) {
		log_err("sandbox: seccomp filter");
		return -1;
	}
	return 0;
}

/* The key process's sandbox: as a worker's, with its own shorter list. */
int
sandbox_enter_keyproc(int mode)
{
	sandbox_table = sandbox_keyproc_rules;
	sandbox_ntable = NRULES(sandbox_keyproc_rules);
	return sandbox_enter(mode);
}
