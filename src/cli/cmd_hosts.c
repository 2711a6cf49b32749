/*
 * roam hosts [--json]: the members of the cluster as the local roamd sees
 * them: state, load, memory, architecture, tags and roam process count.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/control_client.h"

int cmd_hosts(int argc, char **argv)
{
	const char *path = cc_control_path(&argc, argv);
	Roamnet__Hosts req = ROAMNET__HOSTS__INIT;
	ProtobufCMessage *m;
	unsigned type;
	bool json = argc == 2 && !strcmp(argv[1], "--json");
	struct cc c;

	if (argc > 2 || (argc == 2 && !json)) {
		fprintf(stderr, "usage: roam hosts [--control PATH] [--json]\n");
		return CLI_EXIT_USAGE;
	}
	if (cc_open(&c, "hosts", path) < 0)
		return CLI_EXIT_FAILURE;
	if (cc_send(&c, MSG_HOSTS, &req.base) < 0 || cc_recv(&c, &type, &m) < 0) {
		cc_close(&c);
		return CLI_EXIT_FAILURE;
	}
	cc_close(&c);
	if (type != MSG_HOST_LIST) {
		cli_error("hosts", "unexpected answer from roamd");
		msg_free(m);
		return CLI_EXIT_FAILURE;
	}
	Roamnet__HostList *l = (Roamnet__HostList *)m;
	if (!json)
		printf("%-12s %-22s %-5s %6s %6s %9s %-8s %5s  %s\n", "HOST", "ADDRESS", "STATE", "LOAD",
		       "PSI", "MEMFREE", "ARCH", "PROCS", "TAGS");
	else
		printf("[");
	for (size_t i = 0; i < l->n_hosts; i++) {
		Roamnet__HostInfo *h = l->hosts[i];
		Roamnet__HostLoad *ld = h->load;
		char tags[256] = "";
		for (size_t t = 0; ld && t < ld->n_tags; t++) {
			size_t used = strlen(tags);
			snprintf(tags + used, sizeof(tags) - used, "%s%s", t ? "," : "", ld->tags[t]);
		}
		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			cc_json_str(stdout, h->name);
			printf(",\"addr\":"); cc_json_str(stdout, h->addr);
			printf(",\"state\":"); cc_json_str(stdout, h->state);
			printf(",\"load\":%.3f,\"psi_some\":%.2f,\"mem_free\":%llu,\"mem_total\":%llu,"
			       "\"ncpus\":%u,\"procs\":%u,\"max_procs\":%u,\"age_ms\":%u,\"arch\":",
			       ld ? ld->load : 0, ld ? ld->psi_some : -1,
			       (unsigned long long)(ld ? ld->mem_free : 0),
			       (unsigned long long)(ld ? ld->mem_total : 0), ld ? ld->ncpus : 0,
			       ld ? ld->nprocs : 0, ld ? ld->max_procs : 0, h->age_ms);
			cc_json_str(stdout, ld ? ld->arch : "");
			printf(",\"tags\":[");
			for (size_t t = 0; ld && t < ld->n_tags; t++) {
				printf("%s", t ? "," : "");
				cc_json_str(stdout, ld->tags[t]);
			}
			printf("],\"draining\":%s}", ld && ld->draining ? "true" : "false");
		} else {
			/* A draining host (roam drain) takes no new process. */
			const char *state = ld && ld->draining ? "drain" : h->state;
			printf("%-12s %-22s %-5s %6.2f %6.2f %8.1fG %-8s %5u  %s\n", h->name, h->addr, state,
			       ld ? ld->load : 0, ld ? ld->psi_some : -1,
			       ld ? (double)ld->mem_free / (1 << 30) : 0, ld && ld->arch ? ld->arch : "?",
			       ld ? ld->nprocs : 0, tags);
		}
	}
	if (json)
		printf("]\n");
	msg_free(m);
	return 0;
}
