/*
 * roamd's configuration: flags, and a config file of "key value" lines whose
 * keys are the long flags' names (a flag given on the command line wins).
 *
 *   name NAME            this host's name (default: the UTS host name)
 *   listen ADDR:PORT     peer listen address (default 0.0.0.0:7070)
 *   peers ADDR:PORT,...  seed peers
 *   key FILE             cluster key (roam keygen FILE); required
 *   control PATH         control socket (default ROAM_CONTROL_DEFAULT)
 *   tags a,b             this host's tags
 *   policy SPEC          default placement policy (threshold:t=1,lp=2)
 *   max-procs N          refuse jobs beyond N running here (0: no limit)
 *   allow-root yes|no    run jobs for uid 0 (default no)
 *   env-deny A,B,P*      environment variables never passed to jobs
 *   cgroup auto|v2|v1|none  job cgroups: auto takes cgroup2 where mounted,
 *                        else the v1 hierarchies (pids, freezer, cpuacct)
 *   shared /a,/b         shared storage: files under these paths may stay open
 *                        for writing across a migration (same files everywhere)
 *   job-mem-max SIZE     each job's memory limit here (its cgroup's memory.max
 *                        on v2, memory.limit_in_bytes on v1; K, M, G suffixes);
 *                        a migration bigger than it is refused, or fails to
 *                        build here and stays at its source (0: none, default)
 *   doubt-timeout S      a migration destination holding a built process whose
 *                        source went silent before COMMIT gives up after S s (30)
 *   dirty-tracking auto|hash  pre-copy: userfaultfd where it works (auto), or
 *                        page hashing always
 *   image-encryption yes|no  migration images between this host and another
 *                        that also says no go in clear, every record still
 *                        authenticated (AES-256-GMAC): for a trusted network,
 *                        about twice as cheap per byte (default yes: encrypted)
 *   test-hide-cpu a,b    tests only: advertise these CPU flags as missing
 *   test-vdso-id STR     tests only: advertise this vDSO identity instead
 *   test-no-timer-ids yes|no  tests only: act as a kernel that cannot give
 *                        POSIX timers their ids back (before Linux 6.17)
 *   test-fault NAME      tests only: a migration fault (see migrate.c)
 *   test-proto N         tests only: speak peer protocol N alone (this
 *                        roamd's is ROAMD_PROTO)
 *   test-bulk-version N  tests only: say that this roamd's image channel
 *                        speaks version N (net/bulk.h's BULK_VERSION), so
 *                        that a migration between mismatched versions is
 *                        refused before the freeze, for real
 *   state-dir PATH       what outlives a roamd (the job-id sequence); created
 *                        0700 (default /var/lib/roam/NAME)
 *   ballast MiB          benchmarks only: keep MiB of touched memory resident,
 *                        to show that spawning does not cost more for it
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/roamd.h"
#include "net/bulk.h"
#include "net/key.h"

static void set(char *dst, size_t cap, const char *v)
{
	strfmt(dst, cap, "%s", v);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->name, sizeof(c->name)) < 0)
		set(c->name, sizeof(c->name), "localhost");
	c->name[sizeof(c->name) - 1] = 0;
	set(c->listen, sizeof(c->listen), "0.0.0.0:7070");
	set(c->control, sizeof(c->control), ROAM_CONTROL_DEFAULT);
	set(c->policy, sizeof(c->policy), "threshold:t=1,lp=2");
	set(c->cgroup_mode, sizeof(c->cgroup_mode), "auto");
	c->doubt_timeout_s = 30;
	c->proto_min = ROAMD_PROTO_MIN;
	c->proto = ROAMD_PROTO;
	c->bulk_version = BULK_VERSION;
	/* Variables that describe the caller's own session, not the job's. */
	const char *deny[] = {"ROAM_CONTROL", "SSH_AUTH_SOCK", "SSH_CONNECTION", "SSH_CLIENT",
			      "SSH_TTY", "DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS",
			      "XDG_RUNTIME_DIR", "XDG_SESSION_ID", "LD_PRELOAD", "LD_LIBRARY_PATH"};
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		set(c->env_deny[c->nenv_deny++], 64, deny[i]);
}

static int split_list(const char *v, char out[][CL_NAME_MAX], unsigned max, unsigned *n)
{
	char tmp[1024], *save, *tok;

	set(tmp, sizeof(tmp), v);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == max)
			return -1;
		set(out[(*n)++], CL_NAME_MAX, tok);
	}
	return 0;
}

/* A decimal number from lo to hi: 0, or -1. */
static int parse_uint(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (*end || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

/* Applies one key. Returns 0, or -1 for an unknown key or bad value. */
static int apply(struct config *c, const char *k, const char *v, const char *where)
{
	unsigned long num;

	if (!strcmp(k, "name"))
		set(c->name, sizeof(c->name), v);
	else if (!strcmp(k, "listen"))
		set(c->listen, sizeof(c->listen), v);
	else if (!strcmp(k, "peers"))
		set(c->peers, sizeof(c->peers), v);
	else if (!strcmp(k, "key"))
		set(c->key_file, sizeof(c->key_file), v);
	else if (!strcmp(k, "control"))
		set(c->control, sizeof(c->control), v);
	else if (!strcmp(k, "policy"))
		set(c->policy, sizeof(c->policy), v);
	else if (!strcmp(k, "state-dir"))
		set(c->state_dir, sizeof(c->state_dir), v);
	else if (!strcmp(k, "tags")) {
		c->ntags = 0;
		if (split_list(v, c->tags, CL_MAX_TAGS, &c->ntags))
			goto bad;
	} else if (!strcmp(k, "max-procs")) {
		if (parse_uint(v, 0, 1000000, &num))
			goto bad;
		c->max_procs = (unsigned)num;
	} else if (!strcmp(k, "cgroup")) {
		if (strcmp(v, "auto") && strcmp(v, "v2") && strcmp(v, "v1") && strcmp(v, "none"))
			goto bad;
		set(c->cgroup_mode, sizeof(c->cgroup_mode), v);
	} else if (!strcmp(k, "ballast")) {
		if (parse_uint(v, 0, 1u << 20, &num))
			goto bad;
		c->ballast_mb = (unsigned)num;
	} else if (!strcmp(k, "allow-root")) {
		if (!strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "true"))
			c->allow_root = true;
		else if (!strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "false"))
			c->allow_root = false;
		else
			goto bad;
	} else if (!strcmp(k, "shared")) {
		c->nshared = 0;
		if (split_list(v, c->shared, CL_MAX_TAGS, &c->nshared))
			goto bad;
		for (unsigned i = 0; i < c->nshared; i++)
			if (c->shared[i][0] != '/')
				goto bad;
	} else if (!strcmp(k, "job-mem-max")) {
		uint64_t n;
		if (need_parse_size(v, &n) < 0 || (n && n < (1u << 20)))
			goto bad;
		c->job_mem_max = n;
	} else if (!strcmp(k, "doubt-timeout")) {
		if (parse_uint(v, 1, 86400, &num))
			goto bad;
		c->doubt_timeout_s = (unsigned)num;
	} else if (!strcmp(k, "dirty-tracking")) {
		if (strcmp(v, "auto") && strcmp(v, "hash"))
			goto bad;
		c->dirty_hash = !strcmp(v, "hash");
	} else if (!strcmp(k, "image-encryption")) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			goto bad;
		c->image_clear = !strcmp(v, "no");
	} else if (!strcmp(k, "test-hide-cpu")) {
		c->nhide_cpu = 0;
		if (split_list(v, c->hide_cpu, CL_MAX_TAGS, &c->nhide_cpu))
			goto bad;
	} else if (!strcmp(k, "test-fault")) {
		set(c->test_fault, sizeof(c->test_fault), v);
	} else if (!strcmp(k, "test-proto")) {
		if (parse_uint(v, 1, 65535, &num))
			goto bad;
		c->proto_min = c->proto = (uint32_t)num;
	} else if (!strcmp(k, "test-bulk-version")) {
		if (parse_uint(v, 1, 65535, &num))
			goto bad;
		c->bulk_version = (uint32_t)num;
	} else if (!strcmp(k, "test-vdso-id")) {
		set(c->test_vdso_id, sizeof(c->test_vdso_id), v);
	} else if (!strcmp(k, "test-no-timer-ids")) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			goto bad;
		c->test_no_timer_ids = !strcmp(v, "yes");
	} else if (!strcmp(k, "env-deny")) {
		char tmp[CL_MAX_TAGS][CL_NAME_MAX];
		unsigned n = 0;
		if (split_list(v, tmp, CL_MAX_TAGS, &n))
			goto bad;
		for (unsigned i = 0; i < n && c->nenv_deny < ROAMD_MAX_DENY; i++)
			set(c->env_deny[c->nenv_deny++], 64, tmp[i]);
	} else {
		fprintf(stderr, "roamd: %s: unknown setting '%s'\n", where, k);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "roamd: %s: bad value for %s: '%s'\n", where, k, v);
	return -1;
}

static int load_file(struct config *c, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[1200], where[300];
	int lineno = 0, err = 0;

	if (!f) {
		fprintf(stderr, "roamd: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k = line, *v, *e;
		lineno++;
		k += strspn(k, " \t");
		if (*k == '#' || *k == '\n' || !*k)
			continue;
		e = k + strlen(k);
		while (e > k && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		v = k + strcspn(k, " \t=");
		if (*v)
			*v++ = 0;
		v += strspn(v, " \t=");
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (apply(c, k, v, where))
			err = -1;
	}
	fclose(f);
	return err;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: roamd [-n] [-v] [-f FILE] [--name NAME] [--listen ADDR:PORT]\n"
		"             [--peers ADDR:PORT,...] --key FILE [--control PATH] [--tags a,b]\n"
		"             [--policy SPEC] [--max-procs N] [--allow-root] [--env-deny A,B]\n"
		"             [--cgroup auto|v2|v1|none] [--job-mem-max SIZE] [--state-dir PATH]\n"
		"             [--image-encryption yes|no]\n");
}

int config_parse(struct config *c, int argc, char **argv)
{
	/* The file first, so that flags override it. */
	for (int i = 1; i < argc; i++)
		if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			if (load_file(c, argv[i + 1]))
				return -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-n")) {
			c->check_only = 1;
		} else if (!strcmp(a, "-v")) {
			c->verbose = 1;
		} else if (!strcmp(a, "--allow-root")) {
			c->allow_root = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			exit(0);
		} else if (!strcmp(a, "-f") || !strcmp(a, "--config")) {
			i++;
		} else if (!strncmp(a, "--", 2) && i + 1 < argc) {
			if (apply(c, a + 2, argv[++i], "command line"))
				return -1;
		} else {
			fprintf(stderr, "roamd: unexpected argument '%s'\n", a);
			usage();
			return -1;
		}
	}
	/* The default names the host, so that roamds sharing a file system
	 * (tests, containers) keep apart. */
	if (!c->state_dir[0])
		strfmt(c->state_dir, sizeof(c->state_dir), "/var/lib/roam/%s", c->name);
	return 0;
}

int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM}, *res;
	char host[CL_ADDR_MAX];
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (!colon || !colon[1])
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = 0;
	}
	/* Numeric only: roamd never asks a resolver (no traffic beyond its peers). */
	if (getaddrinfo(host, colon + 1, &hints, &res))
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int config_check(const struct config *c, uint8_t key[LINK_KEY_SIZE])
{
	struct sockaddr_storage ss;
	struct policy p;
	struct policy_parse_error pe;
	socklen_t len;
	char peers[1024], *save, *tok;
	int err, bad = 0;

	if (!msg_valid_name(c->name)) {
		fprintf(stderr, "roamd: host name '%s' must be 1-63 of [A-Za-z0-9_-]\n", c->name);
		bad = 1;
	}
	if (parse_hostport(c->listen, &ss, &len)) {
		fprintf(stderr, "roamd: --listen '%s' is not ADDR:PORT\n", c->listen);
		bad = 1;
	}
	set(peers, sizeof(peers), c->peers);
	for (tok = strtok_r(peers, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (parse_hostport(tok, &ss, &len)) {
			fprintf(stderr, "roamd: peer '%s' is not ADDR:PORT\n", tok);
			bad = 1;
		}
	if (!c->key_file[0]) {
		fprintf(stderr, "roamd: no cluster key: give --key FILE (make one with roam keygen FILE)\n");
		bad = 1;
	} else if ((err = key_load(c->key_file, key))) {
		fprintf(stderr, "roamd: key %s: %s\n", c->key_file, key_strerror(err));
		bad = 1;
	}
	if (strlen(c->control) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "roamd: control path too long\n");
		bad = 1;
	}
	if (c->state_dir[0] != '/') {
		fprintf(stderr, "roamd: --state-dir '%s' must be an absolute path\n", c->state_dir);
		bad = 1;
	}
	if ((err = policy_parse(&p, c->policy, &pe))) {
		fprintf(stderr, "roamd: policy '%s': %s\n", c->policy, policy_strerror(err));
		bad = 1;
	}
	for (unsigned i = 0; i < c->ntags; i++)
		if (!msg_valid_name(c->tags[i])) {
			fprintf(stderr, "roamd: tag '%s' must be 1-63 of [A-Za-z0-9_-]\n", c->tags[i]);
			bad = 1;
		}
	return bad ? -1 : 0;
}
