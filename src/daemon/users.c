/*
 * The user database, cached. Every roam run asks it twice: the home wants
 * the caller's name (SO_PEERCRED gives a uid), the executing host the uid,
 * gid and groups of that name. glibc reads /etc/passwd and /etc/group again
 * for each question (a dozen system calls and a parse: about 40 us of a
 * remote run here). An answer is kept while both files keep their
 * modification time and size, and USERS_TTL_MS at most, for users that come
 * from other NSS sources (LDAP), which have no file to watch. Unknown users
 * are never cached: the next question asks NSS again.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/roamd.h"
#include "sys/clock.h"

#define USERS_CACHED 16
#define USERS_TTL_MS 5000

struct cached_user {
	struct user_info u;
	bool valid;
	bool have_groups;
	uint64_t at_ms;
};

static struct cached_user cache[USERS_CACHED];
static unsigned next_slot;
static struct stat seen_passwd, seen_group;

static bool same_file(const char *path, struct stat *seen)
{
	struct stat st;

	if (stat(path, &st) < 0)
		memset(&st, 0, sizeof(st));
	if (st.st_mtim.tv_sec == seen->st_mtim.tv_sec && st.st_mtim.tv_nsec == seen->st_mtim.tv_nsec &&
	    st.st_size == seen->st_size && st.st_ino == seen->st_ino)
		return true;
	*seen = st;
	return false;
}

/* Forgets everything when a file changed; drops entries past their time. */
static void expire(uint64_t now)
{
	bool changed = !same_file("/etc/passwd", &seen_passwd);

	changed |= !same_file("/etc/group", &seen_group);
	for (unsigned i = 0; i < USERS_CACHED; i++)
		if (changed || now - cache[i].at_ms > USERS_TTL_MS)
			cache[i].valid = false;
}

static struct cached_user *store(const struct passwd *pw, uint64_t now)
{
	struct cached_user *e = &cache[next_slot++ % USERS_CACHED];

	memset(e, 0, sizeof(*e));
	e->u.uid = pw->pw_uid;
	e->u.gid = pw->pw_gid;
	snprintf(e->u.name, sizeof(e->u.name), "%s", pw->pw_name);
	e->valid = true;
	e->at_ms = now;
	return e;
}

int users_by_uid(uid_t uid, struct user_info *out)
{
	uint64_t now = mono_ms();
	struct passwd *pw;

	expire(now);
	for (unsigned i = 0; i < USERS_CACHED; i++)
		if (cache[i].valid && cache[i].u.uid == uid) {
			*out = cache[i].u;
			return 0;
		}
	errno = 0;
	if (!(pw = getpwuid(uid)))
		return errno ? -errno : -ENOENT;
	*out = store(pw, now)->u;
	return 0;
}

int users_by_name(const char *name, struct user_info *out)
{
	uint64_t now = mono_ms();
	struct cached_user *e = NULL;
	struct passwd *pw;

	expire(now);
	for (unsigned i = 0; i < USERS_CACHED && !e; i++)
		if (cache[i].valid && cache[i].have_groups && !strcmp(cache[i].u.name, name))
			e = &cache[i];
	if (!e) {
		errno = 0;
		if (!(pw = getpwnam(name)))
			return errno ? -errno : -ENOENT;
		e = store(pw, now);
		e->u.ngroups = USERS_MAX_GROUPS;
		if (getgrouplist(pw->pw_name, pw->pw_gid, e->u.groups, &e->u.ngroups) < 0)
			e->u.ngroups = 0;
		e->have_groups = true;
	}
	*out = e->u;
	return 0;
}
