/*
 * The network lock of a TCP connection carried across a checkpoint: while
 * the connection has no socket (from the checkpoint, which closes it in
 * repair mode, without a FIN or a reset, to the restore, which makes it
 * again), the host must not answer its peer's segments with a reset. An
 * nftables table of roam's own (`nft`, from Debian's nftables) drops every
 * packet of the connection both ways, in the network namespace of the
 * socket; the peer retransmits once it is gone. One table per checkpointed
 * process, named in its image, deleted by the restore.
 */
#ifndef ROAM_SYS_NETLOCK_H
#define ROAM_SYS_NETLOCK_H

#include <stddef.h>
#include <stdint.h>

/* One connection: family AF_INET or AF_INET6, addresses of 4 or 16 bytes. */
struct netlock_conn {
	int family;
	const uint8_t *local, *peer;
	uint32_t lport, pport;
};

/* The nft script that adds table name with rules dropping each of the
 * connections, into buf (pure: for the unit test). -ENOSPC if it does not fit. */
int netlock_script(const char *table, const struct netlock_conn *c, size_t n, char *buf, size_t cap);

/* Runs nft on script in the network namespace of pid (0: ours): 0, or
 * -errno with nft's own words in why. */
int netlock_run(int pid, const char *script, char *why, size_t cap);

/* The table's name for process pid (unique: it carries the time). */
void netlock_name(int pid, char *buf, size_t cap);

#endif
