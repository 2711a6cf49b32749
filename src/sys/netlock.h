/*
 * The network lock of a TCP connection carried across a checkpoint: while
 * the connection has no socket (from the checkpoint, which closes it in
 * repair mode, without a FIN or a reset, to the restore, which makes it
 * again), the host must not answer its peer's segments with a reset.
 *
 * roam's nftables table `inet roam` (made on first use, through Debian's
 * `nft`, in the network namespace of the socket, and kept) drops every
 * packet whose addresses and ports are in its sets conn4 or conn6, before
 * connection tracking sees it; locking a connection adds its two
 * directions to the set, unlocking deletes them. A set's element costs a
 * few milliseconds to add, where a table of chains per checkpoint cost
 * twenty (each chain a hook the kernel registers and unregisters).
 */
#ifndef ROAM_SYS_NETLOCK_H
#define ROAM_SYS_NETLOCK_H

#include <stddef.h>
#include <stdint.h>

#define NETLOCK_TABLE "roam"

/* One connection: family AF_INET or AF_INET6, addresses of 4 or 16 bytes. */
struct netlock_conn {
	int family;
	uint8_t local[16], peer[16];
	uint32_t lport, pport;
};

/* "add" or "delete" (op) the connections' elements, both directions of
 * each, as an nft script into buf (pure: for the unit test). -ENOSPC if it
 * does not fit. */
int netlock_script(const char *op, const struct netlock_conn *c, size_t n, char *buf, size_t cap);
/* The script that makes the table, its sets and its chains. */
const char *netlock_setup_script(void);

/* Locks (adds; the table made if it is not there yet) or unlocks (deletes)
 * the connections in the network namespace of pid (0: ours): 0, or -errno
 * with nft's own words in why. */
int netlock_lock(int pid, const struct netlock_conn *c, size_t n, char *why, size_t cap);
int netlock_unlock(int pid, const struct netlock_conn *c, size_t n, char *why, size_t cap);

#endif
