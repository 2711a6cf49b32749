/*
 * threads: every thread of a multithreaded process comes back with its
 * kernel-side thread state.
 *
 *   TLS variables and fs_base (ARCH_GET_FS equals pthread_self())
 *   a mutex shared by all workers (counts add up), a condvar ping-pong
 *     (the consumer sleeps in a futex wait most of the time)
 *   a raw FUTEX_WAIT that only the final stop wakes
 *   a robust mutex whose owner leaves with a raw exit(2) at the end: the
 *     next locker must get EOWNERDEAD, i.e. the kernel still knows the
 *     robust list (asserted when the pid, hence the tids, were kept)
 *   set_tid_address: pthread_join of threads that exit (normally or by raw
 *     exit(2)) returns, and new threads can still be created and joined
 *   rseq: after pinning itself to a CPU, each thread finds that CPU both in
 *     sched_getcpu() and in its registered rseq area
 *   gettid() unchanged when the pid was kept
 *   a churner creates and joins threads back to back, so that checkpoints
 *     race with clone() and thread exit
 *
 * -t N sets the number of mutex workers (default 0: the fixed helper
 * threads only).
 */
#include "subject.h"

#include <asm/prctl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/rseq.h>

static __thread uint64_t tls_val;
static volatile int stop_threads;

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t shared_count;

static pthread_mutex_t cv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t cv_seq;
static int cv_done;

static uint32_t fword;			/* raw futex: 0 until stop */
static uint32_t rword;			/* robust owner's release word */
static pthread_mutex_t robust;
static volatile int robust_locked;

static cpu_set_t allowed;
static int ncpus_allowed;

struct worker {
	pthread_t th;
	int idx;
	pid_t tid;
	unsigned long fs;
	uint64_t own_count;
	int sabotage;
};

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static unsigned long get_fs(void)
{
	unsigned long fs = 0;

	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) < 0)
		subj_fail("arch_prctl(ARCH_GET_FS): %s", strerror(errno));
	return fs;
}

/* The rseq area glibc registered for this thread, or NULL if none. */
static volatile struct rseq *rseq_area(void)
{
	if (__rseq_size == 0)
		return NULL;
	return (volatile struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/*
 * Pin the calling thread to one allowed CPU (rotating with ROUND) and check
 * that both sched_getcpu() and the rseq area say so; a lost rseq
 * registration leaves a stale cpu_id.  Restores the full mask afterwards.
 */
static void check_cpu(const char *who, unsigned round)
{
	volatile struct rseq *rs = rseq_area();
	cpu_set_t one;
	int want = -1, i, k = 0, tries;

	if (ncpus_allowed == 0)
		return;
	for (i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &allowed) && k++ == (int)(round % (unsigned)ncpus_allowed)) {
			want = i;
			break;
		}
	CPU_ZERO(&one);
	CPU_SET(want, &one);
	for (tries = 0; tries < 100; tries++) {
		int c, r;

		/* Pinned again each try: the affinity itself is not under test
		 * and a checkpoint may fall between pinning and checking. */
		if (sched_setaffinity(0, sizeof(one), &one) < 0)
			subj_fail("%s: sched_setaffinity(cpu %d): %s", who, want, strerror(errno));
		c = sched_getcpu();
		r = rs ? (int)rs->cpu_id : want;
		if (c == want && r == want)
			break;
		sched_yield();
	}
	if (tries == 100)
		subj_fail("%s: pinned to cpu %d, sched_getcpu() says %d, rseq cpu_id %d", who, want,
			  sched_getcpu(), rs ? (int)rs->cpu_id : -99);
	if (sched_setaffinity(0, sizeof(allowed), &allowed) < 0)
		subj_fail("%s: sched_setaffinity(all): %s", who, strerror(errno));
}

static void check_self(struct worker *w, const char *who, int final, int pid_kept)
{
	unsigned long fs = get_fs();

	SUBJ_CHECK(tls_val == 0x7e57000000ULL + (uint64_t)w->idx, "%s: TLS value %#llx", who,
		   (unsigned long long)tls_val);
	SUBJ_CHECK(fs == w->fs, "%s: fs_base %#lx, was %#lx", who, fs, w->fs);
	SUBJ_CHECK(fs == (unsigned long)pthread_self(), "%s: fs_base %#lx, pthread_self %#lx", who,
		   fs, (unsigned long)pthread_self());
	if (final && pid_kept)
		SUBJ_CHECK(subj_gettid() == w->tid, "%s: tid %d, was %d (pid kept)", who,
			   (int)subj_gettid(), (int)w->tid);
}

static void self_init(struct worker *w)
{
	tls_val = 0x7e57000000ULL + (uint64_t)w->idx;
	w->fs = get_fs();
	w->tid = subj_gettid();
}

static int final_pid_kept;

static void *mutex_worker(void *arg)
{
	struct worker *w = arg;
	char who[32];
	unsigned round = 0;

	snprintf(who, sizeof(who), "worker %d", w->idx);
	self_init(w);
	while (!stop_threads) {
		check_self(w, who, 0, 0);
		if (round % 8 == 0)
			check_cpu(who, round / 8 + (unsigned)w->idx);
		pthread_mutex_lock(&count_lock);
		shared_count++;
		w->own_count++;
		pthread_mutex_unlock(&count_lock);
		if (w->sabotage && ++round == 20)
			tls_val++;	/* this thread's TLS no longer matches */
		else if (!w->sabotage)
			round++;
		subj_sleep_ms(2);
	}
	check_self(w, who, 1, final_pid_kept);
	return NULL;
}

static void *cv_producer(void *arg)
{
	struct worker *w = arg;

	self_init(w);
	while (!stop_threads) {
		pthread_mutex_lock(&cv_lock);
		cv_seq++;
		pthread_cond_signal(&cv);
		pthread_mutex_unlock(&cv_lock);
		check_self(w, "producer", 0, 0);
		subj_sleep_ms(5);
	}
	pthread_mutex_lock(&cv_lock);
	cv_done = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&cv_lock);
	check_self(w, "producer", 1, final_pid_kept);
	return NULL;
}

static void *cv_consumer(void *arg)
{
	struct worker *w = arg;
	uint64_t last = 0;

	self_init(w);
	pthread_mutex_lock(&cv_lock);
	for (;;) {
		while (cv_seq == last && !cv_done)
			pthread_cond_wait(&cv, &cv_lock);
		if (cv_done)
			break;
		SUBJ_CHECK(cv_seq > last, "condvar sequence went from %llu to %llu",
			   (unsigned long long)last, (unsigned long long)cv_seq);
		last = cv_seq;
		check_self(w, "consumer", 0, 0);
	}
	pthread_mutex_unlock(&cv_lock);
	check_self(w, "consumer", 1, final_pid_kept);
	return NULL;
}

static void *futex_waiter(void *arg)
{
	struct worker *w = arg;

	self_init(w);
	while (__atomic_load_n(&fword, __ATOMIC_ACQUIRE) == 0) {
		if (futex(&fword, FUTEX_WAIT_PRIVATE, 0, NULL) < 0 && errno != EAGAIN)
			subj_fail("FUTEX_WAIT: %s", strerror(errno));
	}
	check_self(w, "futex waiter", 1, final_pid_kept);
	return NULL;
}

/* Holds the robust mutex, then leaves by raw exit(2): only the kernel's
 * robust-list walk and CLONE_CHILD_CLEARTID clean up after it. */
static void *robust_owner(void *arg)
{
	struct worker *w = arg;

	self_init(w);
	errno = pthread_mutex_lock(&robust);
	SUBJ_CHECK(errno == 0, "lock robust mutex: %s", strerror(errno));
	robust_locked = 1;
	while (__atomic_load_n(&rword, __ATOMIC_ACQUIRE) == 0) {
		if (futex(&rword, FUTEX_WAIT_PRIVATE, 0, NULL) < 0 && errno != EAGAIN)
			subj_fail("robust owner FUTEX_WAIT: %s", strerror(errno));
	}
	check_self(w, "robust owner", 1, final_pid_kept);
	syscall(SYS_exit, 0);
	return NULL;
}

static void timed_join(pthread_t th, const char *who)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	errno = pthread_timedjoin_np(th, NULL, &ts);
	SUBJ_CHECK(errno == 0, "join %s: %s", who, strerror(errno));
}

static void *short_lived(void *arg)
{
	struct worker *w = arg;

	self_init(w);
	check_self(w, "short-lived", 0, 0);
	check_cpu("short-lived", (unsigned)w->tid);
	return (void *)0x5eed;
}

/*
 * Creates and joins short-lived threads back to back, so that a checkpoint
 * races with clone() and thread exit: the freeze must catch every thread
 * that exists, and the restored process must go on creating them.
 */
static volatile uint64_t churned;

static void *churn_child(void *arg)
{
	return arg;
}

static void *churner(void *arg)
{
	struct worker *w = arg;
	pthread_t th;
	void *ret;

	self_init(w);
	while (!stop_threads) {
		errno = pthread_create(&th, NULL, churn_child, (void *)(uintptr_t)(churned + 1));
		SUBJ_CHECK(errno == 0, "churner: pthread_create: %s", strerror(errno));
		errno = pthread_join(th, &ret);
		SUBJ_CHECK(errno == 0 && ret == (void *)(uintptr_t)(churned + 1), "churner: join");
		churned++;
		check_self(w, "churner", 0, 0);
	}
	check_self(w, "churner", 1, final_pid_kept);
	return NULL;
}

static struct worker main_w;
static unsigned main_round;

static void verify(void)
{
	struct worker sw = { .idx = 99 };
	void *ret;

	check_self(&main_w, "main", 0, 0);
	if (main_round % 4 == 0)
		check_cpu("main", main_round / 4);
	if (main_round % 16 == 0) {
		errno = pthread_create(&sw.th, NULL, short_lived, &sw);
		SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
		errno = pthread_join(sw.th, &ret);
		SUBJ_CHECK(errno == 0 && ret == (void *)0x5eed, "join short-lived thread");
	}
	errno = pthread_mutex_trylock(&robust);
	SUBJ_CHECK(errno == EBUSY, "robust mutex not held by its owner (trylock: %s)",
		   strerror(errno));
	main_round++;
}

static void start(struct worker *w, int idx, void *(*fn)(void *))
{
	w->idx = idx;
	errno = pthread_create(&w->th, NULL, fn, w);
	SUBJ_CHECK(errno == 0, "pthread_create: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct worker helpers[5], *workers;
	pthread_mutexattr_t ma;
	struct timespec ts;
	uint64_t sum = 0;
	int i;

	subj_init(argc, argv, "threads");
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		ncpus_allowed = CPU_COUNT(&allowed);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&robust, &ma);

	main_w.idx = 1000;
	self_init(&main_w);
	workers = calloc((size_t)subj.threads + 1, sizeof(*workers));
	SUBJ_CHECK(workers != NULL, "out of memory");
	start(&helpers[0], 1001, cv_producer);
	start(&helpers[1], 1002, cv_consumer);
	start(&helpers[2], 1003, futex_waiter);
	start(&helpers[3], 1004, robust_owner);
	start(&helpers[4], 1005, churner);
	for (i = 0; i < subj.threads; i++) {
		workers[i].sabotage = subj.sabotage && i == 0;
		start(&workers[i], i, mutex_worker);
	}
	if (subj.sabotage && subj.threads == 0)
		main_w.idx++;	/* the main thread's TLS no longer matches */
	while (!robust_locked)
		subj_sleep_ms(1);
	subj_ready();
	subj_loop(verify, NULL);

	final_pid_kept = subj_pid_kept();
	stop_threads = 1;
	for (i = 0; i < subj.threads; i++)
		timed_join(workers[i].th, "mutex worker");
	timed_join(helpers[0].th, "producer");
	timed_join(helpers[1].th, "consumer");
	timed_join(helpers[4].th, "churner");
	SUBJ_CHECK(churned > 0, "the churner never created a thread");
	__atomic_store_n(&fword, 1, __ATOMIC_RELEASE);
	futex(&fword, FUTEX_WAKE_PRIVATE, 1, NULL);
	timed_join(helpers[2].th, "futex waiter");
	__atomic_store_n(&rword, 1, __ATOMIC_RELEASE);
	futex(&rword, FUTEX_WAKE_PRIVATE, 1, NULL);
	timed_join(helpers[3].th, "robust owner (raw exit)");

	/* The kernel marks the owner dead only if the lock word holds the
	 * dying thread's tid, so this holds only where the tids were kept. */
	if (final_pid_kept) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		errno = pthread_mutex_timedlock(&robust, &ts);
		SUBJ_CHECK(errno == EOWNERDEAD, "robust mutex after its owner died: %s, want EOWNERDEAD",
			   strerror(errno));
	} else {
		subj_log("pid not kept: robust mutex check skipped\n");
	}

	for (i = 0; i < subj.threads; i++)
		sum += workers[i].own_count;
	SUBJ_CHECK(sum == shared_count, "mutex-protected count %llu, workers counted %llu",
		   (unsigned long long)shared_count, (unsigned long long)sum);
	check_self(&main_w, "main", 1, final_pid_kept);
	subj_pass();
}
